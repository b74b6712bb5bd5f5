import Crypto
import Foundation
import KafkaClient
import TransferStore

/// The folders a job passes through: its own staging folder under `incompletes`, then `completes` (or
/// `quarantine` when its checksum is wrong). Only whole, verified, fsynced files reach `completes`, by rename.
public struct StagingArea: Sendable {
    /// `[locations]`.
    public let locations: Locations
    private let folderSyncs = FolderSyncs()

    /// A staging area over these folders.
    public init(locations: Locations) {
        self.locations = locations
    }

    /// Where the job is downloaded, a file or a directory: `incompletes/job-<16 hex digits of SHA-256(job id)>`,
    /// the same on every attempt and every consumer, so a redelivered job resumes what an earlier attempt left.
    /// (No folder per job: creating and removing one per small file is most of the file system's work.)
    public func stagedPath(for job: TransferJob) -> String {
        let digest = SHA256.hash(data: Data(job.id.utf8)).prefix(8).hexDigits
        return (locations.incompletes as NSString).appendingPathComponent("job-\(digest)")
    }

    /// Where the job's file or directory belongs: `completes[/destination]/name`.
    public func finalPath(for job: TransferJob) -> String {
        join(join(locations.completes, job.destination ?? ""), job.name)
    }

    /// Removes what the job staged, and the state of a segmented download.
    public func discard(_ job: TransferJob) {
        let staged = stagedPath(for: job)
        removeQuietly(staged)
        removeQuietly(SegmentState.path(beside: staged))
    }

    /// Checks the staged result against the job: the size when given (the sum for a directory) and the checksum
    /// when given (files only).
    /// - Throws: `size_mismatch` or `checksum_mismatch` (permanent), `local_io` when the file cannot be read.
    public func verify(_ staged: StagedTransfer, job: TransferJob) async throws(TransferFailure) {
        if let expected = job.size, staged.totalBytes != expected {
            throw TransferFailure(.permanent, code: "size_mismatch",
                                  "\(job.name) has \(staged.totalBytes) bytes, the job says \(expected)")
        }
        guard let checksum = job.checksum, staged.kind == .file else { return }
        let actual = try await Self.digest(staged.path, algorithm: checksum.algorithm)
        guard actual == checksum.hex else {
            throw TransferFailure(.permanent, code: "checksum_mismatch",
                                  "\(job.name) has \(checksum.algorithm.rawValue) \(actual), the job says \(checksum.hex)")
        }
    }

    /// Moves a staged result that failed verification into `quarantine/<time>-<name>`, for people to inspect.
    /// - Returns: where it went, or `nil` when it could not be moved (it is then deleted).
    public func quarantine(_ staged: StagedTransfer, job: TransferJob) -> String? {
        let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
        let target = join(locations.quarantine, "\(stamp)-\((job.name as NSString).lastPathComponent)")
        guard (try? createFolder(locations.quarantine)) != nil,
              (try? Self.move(staged.path, to: target, replace: false)) != nil else {
            discard(job)
            return nil
        }
        discard(job)
        return target
    }

    /// How a staged result reached `completes`.
    public enum Disposition: String, Sendable, Equatable {
        /// Renamed into place.
        case moved
        /// The same content was already there; the staged copy was dropped.
        case identical
        /// A different file had the name; this one got a numbered suffix.
        case renamed
        /// A different file had the name and was replaced.
        case overwritten
    }

    /// Fsyncs the staged files and renames them into `completes[/destination]` (creating folders; across file
    /// systems copy, fsync, then rename), resolving name collisions with `policy`, removes the staging folder,
    /// and fsyncs the folder it went into (one fsync for the jobs that finish together). A directory whose target
    /// does not exist moves as a whole; into an existing one, file by file.
    /// - Returns: the final path and what happened.
    /// - Throws: `name_conflict` (permanent) under the `fail` policy; `local_io` (transient).
    public func complete(_ staged: StagedTransfer, job: TransferJob, policy: ConsumerSettings.ConflictPolicy)
        async throws(TransferFailure) -> (path: String, disposition: Disposition)
    {
        // Every step blocks (fsync most of all): all of them in one trip off the cooperative pool.
        let result = try await runBlocking { () throws(TransferFailure) in
            try completeNow(staged, job: job, policy: policy)
        }
        // The folder's new entries reach the disk in an fsync that concurrent jobs share.
        await folderSyncs.sync((finalPath(for: job) as NSString).deletingLastPathComponent)
        return result
    }

    private func completeNow(_ staged: StagedTransfer, job: TransferJob, policy: ConsumerSettings.ConflictPolicy)
        throws(TransferFailure) -> (path: String, disposition: Disposition)
    {
        let target = finalPath(for: job)
        try createFolder((target as NSString).deletingLastPathComponent)
        let result: (path: String, disposition: Disposition)
        switch staged.kind {
        case .file:
            try Self.sync(staged.path)
            result = try place(staged.path, at: target, policy: policy)
        case .directory:
            for relative in staged.files.keys { try Self.sync(join(staged.path, relative)) }
            if !pathExists(target) {
                try Self.move(staged.path, to: target, replace: false)
                result = (target, .moved)
            } else {
                var dispositions: Set<Disposition> = []
                for relative in staged.files.keys.sorted() {
                    let destination = join(target, relative)
                    try createFolder((destination as NSString).deletingLastPathComponent)
                    dispositions.insert(try place(join(staged.path, relative), at: destination, policy: policy).disposition)
                }
                result = (target, dispositions.subtracting([.identical]).first ?? .identical)
            }
        }
        discard(job)
        return result
    }

    /// Puts one file at `target` under `policy`.
    private func place(_ source: String, at target: String, policy: ConsumerSettings.ConflictPolicy)
        throws(TransferFailure) -> (path: String, disposition: Disposition)
    {
        if try Self.move(source, to: target, replace: false) { return (target, .moved) }
        if try Self.sameContent(source, target) {
            try? FileManager.default.removeItem(atPath: source)
            return (target, .identical)
        }
        switch policy {
        case .overwrite:
            _ = try Self.move(source, to: target, replace: true)
            return (target, .overwritten)
        case .fail:
            throw TransferFailure(.permanent, code: "name_conflict",
                                  "\(target) already exists with different content (on_conflict = \"fail\")")
        case .rename:
            let folder = (target as NSString).deletingLastPathComponent
            let name = (target as NSString).lastPathComponent
            let ext = (name as NSString).pathExtension
            let stem = ext.isEmpty ? name : (name as NSString).deletingPathExtension
            for number in 1...10_000 {
                let candidate = join(folder, ext.isEmpty ? "\(stem).\(number)" : "\(stem).\(number).\(ext)")
                if try Self.move(source, to: candidate, replace: false) { return (candidate, .renamed) }
                if try Self.sameContent(source, candidate) {
                    try? FileManager.default.removeItem(atPath: source)
                    return (candidate, .identical)
                }
            }
            throw TransferFailure(.permanent, code: "name_conflict", "\(target) and 10,000 numbered variants exist")
        }
    }

    // MARK: File system steps

    /// Renames `source` to `target`. Without `replace`, an existing file target is never replaced (a hard link
    /// then unlink, so two consumers cannot both win). Across file systems: copy, fsync, rename.
    /// - Returns: `false` when the target exists and `replace` is off.
    @discardableResult
    static func move(_ source: String, to target: String, replace: Bool) throws(TransferFailure) -> Bool {
        var info = stat()
        let isFile = lstat(source, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
        if !replace {
            if isFile {
                if link(source, target) == 0 {
                    unlink(source)
                    return true
                }
                if errno == EEXIST { return false }
                if errno != EXDEV && errno != EPERM && errno != EMLINK {
                    throw TransferFailure.local("cannot move \(source) to \(target)")
                }
            } else if FileManager.default.fileExists(atPath: target) {
                return false
            }
        }
        if rename(source, target) == 0 { return true }
        guard errno == EXDEV else { throw TransferFailure.local("cannot move \(source) to \(target)") }
        // Another file system: copy beside the target, fsync, then rename into place.
        let temporary = join((target as NSString).deletingLastPathComponent,
                             ".\((target as NSString).lastPathComponent).kafkasync-\(getpid())")
        do {
            try? FileManager.default.removeItem(atPath: temporary)
            try FileManager.default.copyItem(atPath: source, toPath: temporary)
        } catch {
            throw TransferFailure(.transient, code: "local_io", "cannot copy \(source) to \(temporary): \(error.localizedDescription)")
        }
        if isFile { try sync(temporary) }
        if !replace && FileManager.default.fileExists(atPath: target) {
            try? FileManager.default.removeItem(atPath: temporary)
            return false
        }
        guard rename(temporary, target) == 0 else { throw TransferFailure.local("cannot move \(temporary) to \(target)") }
        try? FileManager.default.removeItem(atPath: source)
        return true
    }

    /// Flushes a file's content to disk.
    static func sync(_ path: String) throws(TransferFailure) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw TransferFailure.local("cannot open \(path)") }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw TransferFailure.local("cannot flush \(path) to disk") }
    }

    /// Whether two files have the same size and SHA-256.
    static func sameContent(_ a: String, _ b: String) throws(TransferFailure) -> Bool {
        guard let size = fileSize(a), size == fileSize(b) else { return false }
        return try hash(a, into: SHA256()) == hash(b, into: SHA256())
    }

    /// The hex digest of a file, read in 1 MiB blocks off the cooperative pool.
    static func digest(_ path: String, algorithm: Checksum.Algorithm) async throws(TransferFailure) -> String {
        try await runBlocking { () throws(TransferFailure) in
            switch algorithm {
            case .sha256: try hash(path, into: SHA256())
            case .sha1: try hash(path, into: Insecure.SHA1())
            case .md5: try hash(path, into: Insecure.MD5())
            }
        }
    }

    private static func hash<H: HashFunction>(_ path: String, into function: H) throws(TransferFailure) -> String {
        var function = function
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw TransferFailure.local("cannot read \(path)") }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw TransferFailure.local("cannot read \(path)") }
            if count == 0 { break }
            buffer.withUnsafeBytes { function.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[..<count])) }
        }
        return function.finalize().hexDigits
    }
}
