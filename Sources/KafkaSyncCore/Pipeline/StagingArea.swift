import Crypto
import Foundation
import AsyncSupport
import TransferStore

/// The folders a job passes through: its own staging folder under `incompletes`, then `completes` (or
/// `quarantine` when its checksum is wrong). Only whole, verified, fsynced files reach `completes`, by rename.
public struct StagingArea: Sendable {
    /// `[locations]`.
    public let locations: Locations
    private let folderSyncs = FolderSyncs()
    private let fileSync: FileSync

    /// A staging area over these folders.
    public init(locations: Locations) {
        self.init(locations: locations, fileSync: .system)
    }

    /// A staging area whose file flushes go through `fileSync` (tests inject fsync faults with it).
    init(locations: Locations, fileSync: FileSync) {
        self.locations = locations
        self.fileSync = fileSync
    }

    /// Where the job is downloaded, a file or a directory: `incompletes/job-<16 hex digits of SHA-256(job id,
    /// remote, remote path)>`, the same on every attempt and every consumer, so a redelivered job resumes what an
    /// earlier attempt left. The remote file is part of the key: jobs that share an id (the same `info_hash` for
    /// different names) never share a staging path. (No folder per job: creating and removing one per small file
    /// is most of the file system's work.)
    public func stagedPath(for job: TransferJob) -> String {
        let key = [job.id, job.remote ?? "", job.remotePath].joined(separator: "\u{0}")
        let digest = SHA256.hash(data: Data(key.utf8)).prefix(8).hexDigits
        return (locations.incompletes as NSString).appendingPathComponent("job-\(digest)")
    }

    /// Where the job's file or directory belongs: `completes[/destination]/name`.
    public func finalPath(for job: TransferJob) -> String {
        join(join(locations.completes, job.destination ?? ""), job.name)
    }

    /// Removes what the job staged. (An engine's own resume state beside it is the engine's: a download that
    /// completed has none left.)
    public func discard(_ job: TransferJob) {
        removeQuietly(stagedPath(for: job))
    }

    /// Verifies a staged result against the job and places it (``verify(_:job:)``, then
    /// ``complete(_:job:policy:)``). A result that fails verification is quarantined, except a checksum mismatch of a
    /// download that resumed an earlier attempt's part (`resumed`): that one is discarded and the failure thrown,
    /// for the caller to download once more from scratch.
    /// - Returns: the final path and what happened.
    /// - Throws: what ``verify(_:job:)`` and ``complete(_:job:policy:)`` throw.
    public func accept(_ staged: StagedTransfer, job: TransferJob, policy: ConsumerSettings.ConflictPolicy,
                       resumed: Bool) async throws(TransferFailure) -> (path: String, disposition: Disposition) {
        do {
            try await verify(staged, job: job)
        } catch where error.code == .checksumMismatch && resumed {
            discard(job)
            throw error
        } catch where error.code == .checksumMismatch || error.code == .sizeMismatch {
            let kept = quarantine(staged, job: job)
            throw TransferFailure(error.code, error.message + (kept.map { "; the file is kept in \($0)" } ?? ""))
        }
        return try await complete(staged, job: job, policy: policy)
    }

    /// Checks the staged result against the job: the size when given (the sum for a directory) and the checksum
    /// when given (files only).
    /// - Throws: `size_mismatch` or `checksum_mismatch` (permanent), `local_io` when the file cannot be read.
    public func verify(_ staged: StagedTransfer, job: TransferJob) async throws(TransferFailure) {
        if let expected = job.size, staged.totalBytes != expected {
            throw TransferFailure(.sizeMismatch, "\(job.name) has \(staged.totalBytes) bytes, the job says \(expected)")
        }
        guard let checksum = job.checksum, staged.kind == .file else { return }
        let actual = if checksum.algorithm == .sha256, let known = staged.sha256 {
            known
        } else {
            try await Self.digest(staged.path, algorithm: checksum.algorithm)
        }
        guard actual == checksum.hex else {
            throw TransferFailure(.checksumMismatch, "\(job.name) has \(checksum.algorithm.rawValue) \(actual), the job says \(checksum.hex)")
        }
    }

    /// Moves a staged result that failed verification into `quarantine/<time>-<name>`, for people to inspect.
    /// - Returns: where it went, or `nil` when it could not be moved (it is then deleted).
    public func quarantine(_ staged: StagedTransfer, job: TransferJob) -> String? {
        let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
        let target = join(locations.quarantine, "\(stamp)-\((job.name as NSString).lastPathComponent)")
        guard (try? createFolder(locations.quarantine)) != nil,
              (try? move(staged.path, to: target, replace: false)) != nil else {
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
    /// systems copy, fsync every file, then rename), resolving name collisions with `policy`, removes the staging
    /// folder, and fsyncs the folder it went into (one fsync for the jobs that finish together). A directory whose
    /// target does not exist moves as a whole; into an existing one, file by file.
    /// - Returns: the final path and what happened.
    /// - Throws: `name_conflict` (permanent) under the `fail` policy; `unsafe_destination` (permanent) when the
    ///   path under `completes` passes through a symbolic link; `fsync_failed` (transient) when a staged file
    ///   cannot be flushed: the staged copy is then discarded, as the kernel may have dropped its pages, and the
    ///   next attempt downloads it again; `disk_full` or `local_io` (transient).
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

    /// Refuses a job whose place under `completes` (`destination/name`) would pass through a symbolic link that
    /// exists there: a link planted in `completes` must not send a download elsewhere on the host.
    /// - Throws: `unsafe_destination` (permanent).
    public func checkDestination(_ job: TransferJob) throws(TransferFailure) {
        try refuseLinks(join(job.destination ?? "", job.name))
    }

    /// Checks every existing component of `completes/relative` with `lstat`: none may be a symbolic link.
    private func refuseLinks(_ relative: String) throws(TransferFailure) {
        var path = locations.completes
        for component in relative.split(separator: "/") {
            path = join(path, String(component))
            var info = stat()
            guard lstat(path, &info) == 0 else { return }  // nothing below a missing folder exists either
            if info.st_mode & S_IFMT == S_IFLNK {
                throw TransferFailure(.unsafeDestination, "\(path) is a symbolic link; nothing is placed through one")
            }
        }
    }

    private func completeNow(_ staged: StagedTransfer, job: TransferJob, policy: ConsumerSettings.ConflictPolicy)
        throws(TransferFailure) -> (path: String, disposition: Disposition)
    {
        let target = finalPath(for: job)
        try checkDestination(job)
        try createFolder((target as NSString).deletingLastPathComponent)
        do {
            for relative in staged.files.keys { try sync(join(staged.path, relative)) }
        } catch where error.code == .fsyncFailed {
            // Never fsync again and trust it: the pages that failed may be gone while the file looks whole.
            discard(job)
            throw error
        }
        let result: (path: String, disposition: Disposition)
        switch staged.kind {
        case .file:
            result = try place(staged.path, at: target, policy: policy)
        case .directory:
            // A merge into an existing folder is file by file (checked first: a move across file systems copies).
            if !pathExists(target), try move(staged.path, to: target, replace: false) {
                result = (target, .moved)
            } else {
                var dispositions: Set<Disposition> = []
                for relative in staged.files.keys.sorted() {
                    let destination = join(target, relative)
                    try refuseLinks(join(join(job.destination ?? "", job.name), relative))
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
        if try move(source, to: target, replace: false) { return (target, .moved) }
        if try Self.sameContent(source, target) {
            try? FileManager.default.removeItem(atPath: source)
            return (target, .identical)
        }
        switch policy {
        case .overwrite:
            _ = try move(source, to: target, replace: true)
            return (target, .overwritten)
        case .fail:
            throw TransferFailure(.nameConflict, "\(target) already exists with different content (on_conflict = \"fail\")")
        case .rename:
            let folder = (target as NSString).deletingLastPathComponent
            let name = (target as NSString).lastPathComponent
            let ext = (name as NSString).pathExtension
            let stem = ext.isEmpty ? name : (name as NSString).deletingPathExtension
            for number in 1...10_000 {
                let candidate = join(folder, ext.isEmpty ? "\(stem).\(number)" : "\(stem).\(number).\(ext)")
                if try move(source, to: candidate, replace: false) { return (candidate, .renamed) }
                if try Self.sameContent(source, candidate) {
                    try? FileManager.default.removeItem(atPath: source)
                    return (candidate, .identical)
                }
            }
            throw TransferFailure(.nameConflict, "\(target) and 10,000 numbered variants exist")
        }
    }

    // MARK: File system steps

    /// Renames `source` (a file or a folder) to `target`. Without `replace`, an existing target is never replaced,
    /// so two consumers cannot both win (see ``renameNoReplace(_:_:)``). Across file systems: copy beside the
    /// target, fsync every file of the copy, then rename it into place.
    /// - Returns: `false` when the target exists and `replace` is off.
    @discardableResult
    func move(_ source: String, to target: String, replace: Bool) throws(TransferFailure) -> Bool {
        if replace {
            if rename(source, target) == 0 { return true }
            guard errno == EXDEV else { throw TransferFailure.local("cannot move \(source) to \(target)") }
        } else {
            switch try Self.renameNoReplace(source, target) {
            case .moved: return true
            case .exists: return false
            case .otherFileSystem: break
            }
        }
        // Another file system: copy beside the target, fsync, then rename into place.
        let temporary = join((target as NSString).deletingLastPathComponent,
                             ".\((target as NSString).lastPathComponent).kafkasync-\(getpid())")
        do {
            removeQuietly(temporary)
            try FileManager.default.copyItem(atPath: source, toPath: temporary)
            try syncTree(temporary)
        } catch {
            removeQuietly(temporary)
            throw (error as? TransferFailure) ?? TransferFailure.local("cannot copy \(source) to \(temporary)", error: error)
        }
        if replace {
            guard rename(temporary, target) == 0 else {
                let failure = TransferFailure.local("cannot move \(temporary) to \(target)")
                removeQuietly(temporary)
                throw failure
            }
        } else {
            let outcome: RenameOutcome
            do {
                outcome = try Self.renameNoReplace(temporary, target)
            } catch {
                removeQuietly(temporary)
                throw error
            }
            guard outcome == .moved else {
                removeQuietly(temporary)
                if outcome == .exists { return false }
                throw TransferFailure.local("cannot move \(temporary) to \(target)", errno: EXDEV)
            }
        }
        removeQuietly(source)
        return true
    }

    /// What ``renameNoReplace(_:_:)`` did.
    enum RenameOutcome: Equatable {
        case moved, exists, otherFileSystem
    }

    /// Renames `source` to `target` unless `target` exists, atomically where the file system allows: a hard link
    /// then unlink (files); else `renameat2(RENAME_NOREPLACE)`; on file systems with neither (vfat, exFAT, some
    /// NFS: `link` gives `EPERM`, `renameat2` knows no flags), the name is reserved with an exclusive create (an
    /// empty file, or a folder) and the rename replaces only that reservation. (A crash between the two steps
    /// leaves the empty reservation; the next attempt then sees a different file there and follows `on_conflict`.)
    static func renameNoReplace(_ source: String, _ target: String) throws(TransferFailure) -> RenameOutcome {
        var info = stat()
        let isFile = lstat(source, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
        if isFile {
            if link(source, target) == 0 {
                unlink(source)
                return .moved
            }
            switch errno {
            case EEXIST: return .exists
            case EXDEV: return .otherFileSystem
            case EPERM, EMLINK, ENOSYS, EOPNOTSUPP: break  // no hard links on this file system
            default: throw TransferFailure.local("cannot move \(source) to \(target)")
            }
        }
        if let renameat2 = systemRenameat2 {
            if renameat2(AT_FDCWD, source, AT_FDCWD, target, renameNoReplaceFlag) == 0 { return .moved }
            switch errno {
            case EEXIST, ENOTEMPTY: return .exists
            case EXDEV: return .otherFileSystem
            case EINVAL, ENOSYS, EOPNOTSUPP: break  // the file system takes no flags
            default: throw TransferFailure.local("cannot move \(source) to \(target)")
            }
        }
        let reserved = isFile ? open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600) : mkdir(target, 0o755)
        if reserved < 0 {
            if errno == EEXIST { return .exists }
            throw TransferFailure.local("cannot create \(target)")
        }
        if isFile { close(reserved) }
        guard rename(source, target) == 0 else {
            let code = errno
            if isFile { unlink(target) } else { rmdir(target) }
            if code == EXDEV { return .otherFileSystem }
            throw TransferFailure.local("cannot move \(source) to \(target)", errno: code)
        }
        return .moved
    }

    /// Flushes a file's (or a folder's) content to disk.
    /// - Throws: `fsync_failed` when the flush fails (the data cannot be trusted any more), `local_io` when the
    ///   file cannot be opened.
    func sync(_ path: String) throws(TransferFailure) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw TransferFailure.local("cannot open \(path)") }
        defer { close(descriptor) }
        guard fileSync.flush(path, descriptor) == 0 else {
            let code = errno
            throw TransferFailure(.fsyncFailed,
                                  "cannot flush \(path) to disk: \(String(cString: strerror(code)))")
        }
    }

    /// Flushes every file and folder of a tree (or one file) to disk.
    private func syncTree(_ root: String) throws(TransferFailure) {
        try sync(root)
        guard let enumerator = FileManager.default.enumerator(atPath: root) else { return }
        while let relative = enumerator.nextObject() as? String {
            let path = join(root, relative)
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            let type = info.st_mode & S_IFMT
            if type == S_IFREG || type == S_IFDIR { try sync(path) }
        }
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
        _ = try update(&function, withFile: path)
        return function.finalize().hexDigits
    }

    /// Feeds `function` the bytes of the file at `path` from `start` to `end` (its end when `nil`), read 1 MiB
    /// at a time.
    /// - Returns: where the bytes fed end (before `end` only when the file does).
    static func update<H: HashFunction>(_ function: inout H, withFile path: String, from start: Int64 = 0,
                                        to end: Int64? = nil) throws(TransferFailure) -> Int64 {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw TransferFailure.local("cannot read \(path)") }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var position = start
        while end.map({ position < $0 }) ?? true {
            let wanted = min(buffer.count, Int(clamping: (end ?? .max) - position))
            let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, wanted, off_t(position)) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw TransferFailure.local("cannot read \(path)") }
            if count == 0 { break }
            buffer.withUnsafeBytes { function.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[..<count])) }
            position += Int64(count)
        }
        return position
    }
}

/// How staged files are flushed to disk: `fsync(2)`, or in tests a named fault (an fsync that fails cannot be
/// produced for real on a healthy disk, so the tests that need one inject it here).
struct FileSync: Sendable {
    /// Flushes the open file `descriptor` of `path`; 0 on success, else -1 with `errno` set.
    let flush: @Sendable (_ path: String, _ descriptor: Int32) -> Int32

    /// The real `fsync`.
    static let system = FileSync { _, descriptor in fsync(descriptor) }
}

/// `renameat2(2)` with `RENAME_NOREPLACE`, looked up at run time: glibc has it since 2.28, but Swift's Glibc module
/// does not import it. `nil` where the C library lacks it (the checked fallback is used then).
private let systemRenameat2:
    (@convention(c) (Int32, UnsafePointer<CChar>?, Int32, UnsafePointer<CChar>?, UInt32) -> Int32)? = {
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "renameat2") else { return nil }
        return unsafeBitCast(symbol,
                             to: (@convention(c) (Int32, UnsafePointer<CChar>?, Int32, UnsafePointer<CChar>?, UInt32) -> Int32).self)
    }()

/// `RENAME_NOREPLACE` of `<linux/fs.h>`.
private let renameNoReplaceFlag: UInt32 = 1
