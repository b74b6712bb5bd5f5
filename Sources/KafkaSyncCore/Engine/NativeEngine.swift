import AsyncSupport
import Crypto
import Foundation
import Logging
import SFTPClient
import Synchronization
import TransferStore

/// The built-in engine: one persistent ``SFTPConnectionPool`` per remote (`num_threads` connections), pipelined
/// reads, resumable files, directories mirrored with `num_threads` files at a time.
public final class NativeEngine: TransferEngine {
    private let pools = Mutex<[String: SFTPConnectionPool]>([:])
    private let poolSize: Int
    private let logger: Logger

    /// An engine whose pools hold up to `poolSize` connections per remote.
    public init(poolSize: Int, logger: Logger) {
        self.poolSize = poolSize
        self.logger = logger
    }

    public func transfer(_ request: TransferRequest, progress: @escaping @Sendable (TransferProgress) -> Void)
        async throws(TransferFailure) -> StagedTransfer
    {
        let pool = try pool(for: request.remote)
        let remotePath = request.job.remotePath
        let local = request.stagedPath
        let counter = ProgressCounter(progress)
        let plan = FetchPlan(pool: pool, parallelism: request.parallelism,
                             segmentThreshold: request.segmentThreshold, counter: counter, wantsSHA256: request.wantsSHA256)
        do {
            // A file fetched in one stream uses the session that looked it up and the handle opened with the
            // lookup: one lease and two round trips per small file.
            let (attributes, streamed) = try await pool.withSession { session throws(SFTPError) in
                let (attributes, file) = try await session.lookUp(remotePath, open: request.job.kind != .directory)
                guard let file else { return (attributes, nil as (end: Int64, sha256: String?)?) }
                if request.job.kind == .file, let announced = request.job.size, let size = attributes.size, size > announced {
                    session.close(file)
                    throw SFTPError(.sizeExceeded, "\(remotePath) has \(size) bytes, more than the \(announced) the job announces")
                }
                if isSegmented(attributes, local: local, segments: request.parallelism, plan: plan) {
                    session.close(file)
                    return (attributes, nil)
                }
                counter.addTotal(attributes.size ?? 0)
                return (attributes, try await fetchStream(file, to: local, session: session, counter: counter,
                                                          limit: request.job.size, digest: request.wantsSHA256))
            }
            switch (request.job.kind, attributes.isDirectory) {
            case (.file, true):
                throw TransferFailure(.wrongKind, "\(remotePath) is a directory, the job says file")
            case (.directory, false):
                throw TransferFailure(.wrongKind, "\(remotePath) is not a directory, the job says directory")
            default: break
            }
            if attributes.isDirectory {
                let files = try await mirror(remotePath, attributes: attributes, into: local, plan: plan,
                                             maxEntries: request.maxEntries)
                return StagedTransfer(kind: .directory, path: local, files: files.mapValues(\.size),
                                      bytesTransferred: counter.received, digests: files.compactMapValues(\.sha256))
            }
            guard attributes.isRegularFile else {
                throw TransferFailure(.notAFile, "\(remotePath) is neither a file nor a directory")
            }
            let fetched: (size: Int64, sha256: String?)
            if let streamed {
                fetched = (try finishFile(remotePath, attributes: attributes, at: local, streamedTo: streamed.end), streamed.sha256)
            } else {
                counter.addTotal(attributes.size ?? 0)
                fetched = try await fetchFile(remotePath, attributes: attributes, to: local, plan: plan,
                                              segments: request.parallelism, limit: request.job.size)
            }
            return StagedTransfer(kind: .file, path: local, files: ["": fetched.size], bytesTransferred: counter.received,
                                  digests: fetched.sha256.map { ["": $0] } ?? [:])
        } catch let error as SFTPError {
            throw TransferFailure(error)
        } catch let error as TransferFailure {
            throw error
        } catch {
            throw TransferFailure(.failure, "\(error)")
        }
    }

    /// The deepest folder a directory job may hold, counted from the job's folder.
    static let maximumDepth = 64
    /// Files of a tree this small are fetched ``smallFilesPerSlot`` at a time per unit of parallelism: a small file
    /// costs two round trips (OPEN, then READ with the CLOSE) and almost no bandwidth, so over a slow link the
    /// number in flight sets the rate; its memory is its size.
    static let smallFile: Int64 = 256 << 10
    static let smallFilesPerSlot = 4

    public func shutdown() async {
        let all = pools.withLock { pools in
            defer { pools = [:] }
            return Array(pools.values)
        }
        for pool in all { await pool.close() }
    }

    private func pool(for remote: RemoteConfig) throws(TransferFailure) -> SFTPConnectionPool {
        if let pool = pools.withLock({ $0[remote.name] }) { return pool }
        let configuration: SSHConnectionConfiguration
        do {
            configuration = try remote.connectionConfiguration()
        } catch {
            throw TransferFailure(error)
        }
        let created = SFTPConnectionPool(configuration: configuration, size: poolSize, metricsLabel: remote.name,
                                          logger: logger)
        return pools.withLock { pools in
            if let existing = pools[remote.name] { return existing }
            pools[remote.name] = created
            return created
        }
    }

    /// What every file of one transfer shares.
    struct FetchPlan: Sendable {
        let pool: SFTPConnectionPool
        let parallelism: Int
        let segmentThreshold: Int64
        let counter: ProgressCounter
        /// Digest the files fetched in one stream (``TransferRequest/wantsSHA256``).
        let wantsSHA256: Bool
    }

    /// Downloads one file and gives it the remote modification time: in byte ranges at once when
    /// ``isSegmented(_:local:segments:plan:)``, else in one stream.
    /// - Parameters:
    ///   - segments: the ranges of a large file; `nil` for a file of a tree, always one stream.
    ///   - limit: the most bytes the file may have when its attributes give no size (the job's size).
    /// - Returns: the size of the local file, and its SHA-256 when the plan wants it.
    private func fetchFile(_ remote: String, attributes: SFTPFileAttributes, to local: String, plan: FetchPlan,
                           segments: Int?, limit: Int64? = nil) async throws -> (size: Int64, sha256: String?) {
        if isSegmented(attributes, local: local, segments: segments, plan: plan) {
            let sha256 = try await fetchSegments(remote, size: attributes.size ?? 0, to: local,
                                                 stateFile: SegmentState.path(beside: local),
                                                 segments: max(1, segments ?? 1), plan: plan)
            return (try finishFile(remote, attributes: attributes, at: local, streamedTo: nil), sha256)
        }
        let streamed = try await plan.pool.withSession { session throws(SFTPError) in
            try await fetchStream(try await session.open(remote, attributes: attributes), to: local, session: session,
                                  counter: plan.counter, limit: limit, digest: plan.wantsSHA256)
        }
        return (try finishFile(remote, attributes: attributes, at: local, streamedTo: streamed.end), streamed.sha256)
    }

    /// Whether a file is fetched in `segments` byte ranges at once: it is at least `segmentThreshold` large, or
    /// an earlier segmented download of it left its state file (which records what is done). Never for a file of
    /// a tree (`segments` nil): there `NAME.segments` may well be another file the server lists, not a state file.
    private func isSegmented(_ attributes: SFTPFileAttributes, local: String, segments: Int?, plan: FetchPlan) -> Bool {
        guard let segments else { return false }
        return segments > 1 && attributes.size ?? 0 >= plan.segmentThreshold || pathExists(SegmentState.path(beside: local))
    }

    /// Fetches an open file in one stream on `session` (and closes it), resuming from what `local` holds when
    /// that is not longer than the remote file (a download leaves only a contiguous prefix, so that is safe).
    /// - Parameters:
    ///   - limit: the most bytes the file may have when the server gives no size.
    ///   - digest: compute the file's SHA-256 as it arrives (after the part a resumed download had already).
    /// - Returns: where the local file ends, and its SHA-256 (hex) when `digest` is on and something was fetched.
    private func fetchStream(_ file: SFTPOpenFile, to local: String, session: SFTPSession,
                             counter: ProgressCounter, limit: Int64?, digest: Bool = false)
        async throws(SFTPError) -> (end: Int64, sha256: String?)
    {
        let size = file.attributes.size ?? 0
        var have = fileSize(local) ?? 0
        if have > size { have = 0 }  // the remote file shrank: start over
        counter.addPresent(have)
        guard have < size || file.attributes.size == nil || (have == 0 && size == 0) else {
            session.close(file)
            return (have, nil)
        }
        let reported = Atomic<Int64>(0)
        var hasher: SHA256?
        if digest && have == 0 {
            hasher = SHA256()
        } else if digest {
            // Resuming: what an earlier attempt left is hashed from the disk first, the rest as it arrives.
            let prefix = have
            hasher = try? await runBlocking { () throws(TransferFailure) -> SHA256? in
                var function = SHA256()
                return try StagingArea.update(&function, withFile: local, to: prefix) == prefix ? function : nil
            }
        }
        let end = try await session.download(file, to: local, offset: have, limit: limit, progress: { bytes in
            counter.addReceived(bytes - reported.exchange(bytes, ordering: .relaxed))
        }, received: { chunk in
            chunk.withUnsafeReadableBytes { hasher?.update(bufferPointer: $0) }
        })
        return (end, hasher.map { $0.finalize().hexDigits })
    }

    /// Checks that a stream ended at the remote size and gives the file the remote modification time.
    /// - Returns: the size of the local file.
    private func finishFile(_ remote: String, attributes: SFTPFileAttributes, at local: String,
                            streamedTo end: Int64?) throws(TransferFailure) -> Int64 {
        if let end, let expected = attributes.size, end != expected {
            throw TransferFailure(.remoteChanged, "\(remote) ended at byte \(end), not \(expected): it changed while downloading")
        }
        if let modified = attributes.modificationTime { setModificationTime(local, modified) }
        return fileSize(local) ?? 0
    }

    /// Fetches the unfinished ranges of a segmented download in parallel, each on a pooled session. When the plan
    /// wants the file's SHA-256, it is computed meanwhile, following the contiguous prefix on disk (the ranges
    /// arrive side by side, the digest needs the bytes in order; they are read back while still in the page cache).
    /// - Returns: the file's SHA-256 (hex) when the plan wants it.
    private func fetchSegments(_ remote: String, size: Int64, to local: String, stateFile: String, segments: Int,
                               plan: FetchPlan) async throws -> String? {
        let state: SegmentState
        if let saved = SegmentState.load(stateFile), saved.size == size,
           FileManager.default.fileExists(atPath: local) {
            state = saved
        } else {
            state = SegmentState(size: size, segments: segments)
            try? FileManager.default.removeItem(atPath: local)
            guard FileManager.default.createFile(atPath: local, contents: nil), truncate(local, off_t(size)) == 0 else {
                throw TransferFailure.local("cannot create \(local)")
            }
        }
        plan.counter.addPresent(state.doneBytes)
        try state.save(stateFile)
        let shared = SharedSegmentState(state, file: stateFile)
        let sha256 = try await withThrowingTaskGroup(of: String?.self) { group in
            for (index, range) in state.ranges.enumerated() where range.done < range.end {
                group.addTask {
                    let reported = Atomic<Int64>(0)
                    let end = try await plan.pool.withSession { session throws(SFTPError) in
                        // The ranges share one read window's worth of memory between them.
                        try await session.download(remote, to: local, range: range.done..<range.end,
                                                   window: max(8, 32 / state.ranges.count)) { bytes in
                            plan.counter.addReceived(bytes - reported.exchange(bytes, ordering: .relaxed))
                            // `bytes` is the contiguous prefix of the range, all on disk but the chunk being
                            // written (writes are in order): the state never counts a hole as done.
                            shared.advance(index, to: range.done + max(0, bytes - Int64(session.maximumReadLength)))
                        }
                    }
                    guard end == range.end else {
                        throw TransferFailure(.remoteChanged, "\(remote) ended at byte \(end), before \(range.end): it changed while downloading")
                    }
                    shared.advance(index, to: range.end)
                    return nil
                }
            }
            if plan.wantsSHA256 {
                group.addTask { try await shared.followingSHA256(of: local) }
            }
            do {
                var sha256: String?
                while let result = try await group.next() { sha256 = sha256 ?? result }
                return sha256
            } catch {
                shared.abandon()
                shared.save()
                throw error
            }
        }
        try? FileManager.default.removeItem(atPath: stateFile)
        return sha256
    }

    /// Mirrors a remote directory tree: folders first, then up to `parallelism` files at a time (more while they
    /// are small: ``smallFile``); regular files and folders only (links and devices are skipped: a symbolic link is
    /// never created, the listing's attributes are `lstat`'s). Modification times are kept.
    ///
    /// What the server lists is bounded and never a path: names are checked by the SFTP client
    /// (`unsafe_remote_name`) and every local path is checked to stay inside `local` (``path(inside:_:)``); more
    /// than `maxEntries` files and folders fail the job as `too_many_entries`, folders deeper than
    /// ``maximumDepth`` as `too_deep` (both permanent: the same tree fails the same way on every attempt).
    /// - Returns: every file's size (and SHA-256, when the plan wants it) by path relative to `local`.
    private func mirror(_ remote: String, attributes: SFTPFileAttributes, into local: String,
                        plan: FetchPlan, maxEntries: Int) async throws -> [String: (size: Int64, sha256: String?)] {
        var folders: [(relative: String, attributes: SFTPFileAttributes, depth: Int)] = [("", attributes, 0)]
        var files: [(relative: String, attributes: SFTPFileAttributes)] = []
        var index = 0
        var listed = 0
        while index < folders.count {
            let (relative, _, depth) = folders[index]
            index += 1
            let budget = maxEntries - listed
            let entries = try await plan.pool.withSession { session throws(SFTPError) in
                try await session.listDirectory(join(remote, relative), limit: budget)
            }
            listed += entries.count
            guard listed <= maxEntries else {
                throw TransferFailure(.tooManyEntries, "\(remote) lists more than \(maxEntries) files and folders (max_entries)")
            }
            for entry in entries {
                let path = join(relative, entry.name)
                if entry.attributes.isDirectory {
                    guard depth < Self.maximumDepth else {
                        throw TransferFailure(.tooDeep, "\(join(remote, path)) is more than \(Self.maximumDepth) folders deep")
                    }
                    folders.append((path, entry.attributes, depth + 1))
                } else if entry.attributes.isRegularFile {
                    files.append((path, entry.attributes))
                    plan.counter.addTotal(entry.attributes.size ?? 0)
                } else {
                    logger.debug("skipping what is neither a file nor a folder", metadata: ["sftp.path": "\(join(remote, path))"])
                }
            }
        }
        for folder in folders { try createFolder(try path(inside: local, folder.relative)) }
        var sizes: [String: (size: Int64, sha256: String?)] = [:]
        try await withThrowingTaskGroup(of: (String, Bool, (size: Int64, sha256: String?)).self) { group in
            // Up to `parallelism` files at once, and more while they are small (several files' requests in flight
            // on each pooled connection): `parallelism` × smallFilesPerSlot in all, in listing order.
            let slots = max(1, plan.parallelism)
            var pending = files[...]
            var (running, runningLarge) = (0, 0)
            func startNext() -> Bool {
                guard let (relative, attributes) = pending.first else { return false }
                let large = attributes.size.map { $0 > Self.smallFile } ?? true
                guard running < slots * Self.smallFilesPerSlot, !large || runningLarge < slots else { return false }
                pending.removeFirst()
                running += 1
                if large { runningLarge += 1 }
                let target: String
                do {
                    target = try path(inside: local, relative)
                } catch {
                    group.addTask { throw error }
                    return true
                }
                group.addTask {
                    // Files of a tree run side by side already: each is one stream.
                    (relative, large, try await self.fetchFile(join(remote, relative), attributes: attributes,
                                                               to: target, plan: plan, segments: nil))
                }
                return true
            }
            while startNext() {}
            while let (relative, large, size) = try await group.next() {
                sizes[relative] = size
                running -= 1
                if large { runningLarge -= 1 }
                while startNext() {}
            }
        }
        for folder in folders.reversed() {
            if let modified = folder.attributes.modificationTime { setModificationTime(join(local, folder.relative), modified) }
        }
        return sizes
    }
}

/// A segmented download's state, advanced by its parallel ranges and saved at most once a second.
final class SharedSegmentState: Sendable {
    private let state: Mutex<(value: SegmentState, saved: ContinuousClock.Instant)>
    private let abandoned = Atomic<Bool>(false)
    private let file: String

    init(_ state: SegmentState, file: String) {
        self.state = Mutex((state, .now))
        self.file = file
    }

    func advance(_ index: Int, to done: Int64) {
        let due: SegmentState? = state.withLock { state in
            state.value.ranges[index].done = max(state.value.ranges[index].done, done)
            guard ContinuousClock.now - state.saved > .seconds(1) else { return nil }
            state.saved = .now
            return state.value
        }
        try? due?.save(file)
    }

    func save() { try? state.withLock { $0.value }.save(file) }

    /// Where the bytes on disk stop following each other from the start of the file.
    var contiguousEnd: Int64 {
        state.withLock { state in
            state.value.ranges.first { $0.done < $0.end }?.done ?? state.value.size
        }
    }

    /// Stops ``followingSHA256(of:)``: the download failed.
    func abandon() { abandoned.store(true, ordering: .relaxed) }

    /// The SHA-256 of the file at `path`, read in order as its contiguous prefix grows, until the whole file is
    /// hashed (`nil` once ``abandon()`` was called or the task is cancelled).
    func followingSHA256(of path: String) async throws -> String? {
        try await withTaskCancellationHandler {
            try await runBlocking { [self] () throws(TransferFailure) -> String? in
                var function = SHA256()
                var position: Int64 = 0
                let size = state.withLock { $0.value.size }
                while position < size {
                    if abandoned.load(ordering: .relaxed) { return nil }
                    let end = contiguousEnd
                    if end > position {
                        position = try StagingArea.update(&function, withFile: path, from: position, to: end)
                    } else {
                        usleep(5_000)
                    }
                }
                return function.finalize().hexDigits
            }
        } onCancel: {
            abandon()
        }
    }
}

/// Counts the bytes of one transfer from many concurrent streams and reports them.
final class ProgressCounter: Sendable {
    private let present = Atomic<Int64>(0)
    private let receivedBytes = Atomic<Int64>(0)
    private let total = Atomic<Int64>(0)
    private let report: @Sendable (TransferProgress) -> Void

    init(_ report: @escaping @Sendable (TransferProgress) -> Void) { self.report = report }

    /// New bytes received in this attempt.
    var received: Int64 { receivedBytes.load(ordering: .relaxed) }

    func addTotal(_ bytes: Int64) { total.add(bytes, ordering: .relaxed) }

    /// Bytes an earlier attempt left.
    func addPresent(_ bytes: Int64) {
        let now = present.add(bytes, ordering: .relaxed).newValue
        report(TransferProgress(bytes: now, totalBytes: total.load(ordering: .relaxed)))
    }

    func addReceived(_ bytes: Int64) {
        receivedBytes.add(bytes, ordering: .relaxed)
        let now = present.add(bytes, ordering: .relaxed).newValue
        report(TransferProgress(bytes: now, totalBytes: total.load(ordering: .relaxed)))
    }
}

/// The state of a segmented download, kept as JSON beside the partial file (`PARTIAL.segments`): each range and
/// how much of it is on disk, so a restarted download fetches only the rest.
struct SegmentState: Codable, Sendable, Equatable {
    struct Range: Codable, Sendable, Equatable {
        var start: Int64
        var end: Int64
        var done: Int64
    }

    var size: Int64
    var ranges: [Range]

    /// `segments` nearly equal ranges of a file of `size` bytes.
    init(size: Int64, segments: Int) {
        self.size = size
        let count = Int64(max(1, segments))
        let step = (size + count - 1) / count
        ranges = stride(from: Int64(0), to: max(size, 1), by: Int(max(step, 1))).map {
            Range(start: $0, end: min($0 + step, size), done: $0)
        }
    }

    var doneBytes: Int64 { ranges.reduce(0) { $0 + ($1.done - $1.start) } }

    static func path(beside local: String) -> String { local + ".segments" }

    static func load(_ path: String) -> SegmentState? {
        FileManager.default.contents(atPath: path).flatMap { try? JSONDecoder().decode(SegmentState.self, from: $0) }
    }

    /// Writes the state by rename, so a crash leaves the old or the new state, never half of one.
    func save(_ path: String) throws(TransferFailure) {
        guard let data = try? JSONEncoder().encode(self) else { return }
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data), rename(temporary, path) == 0 else {
            throw TransferFailure.local("cannot record the download state in \(path)")
        }
    }
}

extension TransferFailure {
    /// The failure of an SFTP operation, with its code.
    init(_ error: SFTPError) {
        self.init(Code(error.code), error.message)
    }
}
