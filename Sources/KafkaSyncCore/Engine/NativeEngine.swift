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

    public func transfer(_ request: TransferRequest, progress: @escaping @Sendable (Int64) -> Void)
        async throws(TransferFailure) -> StagedTransfer
    {
        let pool = try pool(for: request.remote)
        let remotePath = request.job.remotePath
        do {
            let attributes = try await pool.withSession { session throws(SFTPError) in
                try await session.attributes(remotePath)
            }
            switch (request.job.kind, attributes.isDirectory) {
            case (.file, true):
                throw TransferFailure(.permanent, code: "wrong_kind", "\(remotePath) is a directory, the job says file")
            case (.directory, false):
                throw TransferFailure(.permanent, code: "wrong_kind", "\(remotePath) is not a directory, the job says directory")
            default: break
            }
            let received = Atomic<Int64>(0)
            let report: @Sendable (Int64) -> Void = { delta in
                progress(received.add(delta, ordering: .relaxed).newValue)
            }
            if attributes.isDirectory {
                let files = try await mirror(remotePath, attributes: attributes, into: request.stagedPath, pool: pool,
                                             parallelism: request.parallelism, report: report)
                return StagedTransfer(kind: .directory, path: request.stagedPath, files: files,
                                      bytesTransferred: received.load(ordering: .relaxed))
            }
            guard attributes.isRegularFile else {
                throw TransferFailure(.permanent, code: "not_a_file", "\(remotePath) is neither a file nor a directory")
            }
            try createFolder(request.stagingFolder)
            let size = try await fetchFile(remotePath, attributes: attributes, to: request.stagedPath, pool: pool,
                                           report: report)
            return StagedTransfer(kind: .file, path: request.stagedPath, files: ["": size],
                                  bytesTransferred: received.load(ordering: .relaxed))
        } catch let error as SFTPError {
            throw TransferFailure(error)
        } catch let error as TransferFailure {
            throw error
        } catch {
            throw TransferFailure(.transient, code: "failure", "\(error)")
        }
    }

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
        let created = SFTPConnectionPool(configuration: configuration, size: poolSize, logger: logger)
        return pools.withLock { pools in
            if let existing = pools[remote.name] { return existing }
            pools[remote.name] = created
            return created
        }
    }

    /// Downloads one file, resuming from what `local` holds when that is not longer than the remote file,
    /// and gives it the remote modification time.
    /// - Returns: the size of the local file.
    private func fetchFile(_ remote: String, attributes: SFTPFileAttributes, to local: String,
                           pool: SFTPConnectionPool, report: @escaping @Sendable (Int64) -> Void) async throws -> Int64 {
        var have = (try? FileManager.default.attributesOfItem(atPath: local)[.size] as? Int64) ?? 0
        if let size = attributes.size, have > size { have = 0 }  // the remote file shrank: start over
        if have > 0 && have == attributes.size {
            report(0)
        } else {
            let reported = Atomic<Int64>(0)
            _ = try await pool.withSession { session throws(SFTPError) in
                try await session.download(remote, to: local, offset: have) { bytes in
                    report(bytes - reported.exchange(bytes, ordering: .relaxed))
                }
            }
        }
        if let modified = attributes.modificationTime { setModificationTime(local, modified) }
        return (try? FileManager.default.attributesOfItem(atPath: local)[.size] as? Int64) ?? 0
    }

    /// Mirrors a remote directory tree: folders first, then up to `parallelism` files at a time; regular files
    /// and folders only (links and devices are skipped). Modification times are kept.
    /// - Returns: every file's size by path relative to `local`.
    private func mirror(_ remote: String, attributes: SFTPFileAttributes, into local: String, pool: SFTPConnectionPool,
                        parallelism: Int, report: @escaping @Sendable (Int64) -> Void) async throws -> [String: Int64] {
        var folders: [(relative: String, attributes: SFTPFileAttributes)] = [("", attributes)]
        var files: [(relative: String, attributes: SFTPFileAttributes)] = []
        var index = 0
        while index < folders.count {
            let relative = folders[index].relative
            index += 1
            let entries = try await pool.withSession { session throws(SFTPError) in
                try await session.listDirectory(join(remote, relative))
            }
            for entry in entries {
                let path = join(relative, entry.name)
                if entry.attributes.isDirectory {
                    folders.append((path, entry.attributes))
                } else if entry.attributes.isRegularFile {
                    files.append((path, entry.attributes))
                } else {
                    logger.debug("skipping what is neither a file nor a folder", metadata: ["sftp.path": "\(join(remote, path))"])
                }
            }
        }
        for folder in folders { try createFolder(join(local, folder.relative)) }
        var sizes: [String: Int64] = [:]
        try await withThrowingTaskGroup(of: (String, Int64).self) { group in
            var pending = files[...]
            func startNext() {
                guard let (relative, attributes) = pending.popFirst() else { return }
                group.addTask {
                    (relative, try await self.fetchFile(join(remote, relative), attributes: attributes,
                                                        to: join(local, relative), pool: pool, report: report))
                }
            }
            for _ in 0..<max(1, parallelism) { startNext() }
            while let (relative, size) = try await group.next() {
                sizes[relative] = size
                startNext()
            }
        }
        for folder in folders.reversed() {
            if let modified = folder.attributes.modificationTime { setModificationTime(join(local, folder.relative), modified) }
        }
        return sizes
    }
}

/// `base/relative`, or `base` when `relative` is empty.
func join(_ base: String, _ relative: String) -> String {
    relative.isEmpty ? base : (base as NSString).appendingPathComponent(relative)
}

/// Creates a folder and its parents.
func createFolder(_ path: String) throws(TransferFailure) {
    do {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    } catch {
        throw TransferFailure(.transient, code: "local_io", "cannot create \(path): \(error.localizedDescription)")
    }
}

/// Sets a file's or folder's modification (and access) time; failures are ignored (a cosmetic loss).
func setModificationTime(_ path: String, _ date: Date) {
    let seconds = date.timeIntervalSince1970
    var times = [timespec(tv_sec: Int(seconds), tv_nsec: 0), timespec(tv_sec: Int(seconds), tv_nsec: 0)]
    _ = utimensat(AT_FDCWD, path, &times, 0)
}
