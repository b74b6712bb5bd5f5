import Foundation
import SFTPClient

/// One transfer for an engine: the job, its remote, and the staging path that belongs to the job.
public struct TransferRequest: Sendable {
    /// The job.
    public var job: TransferJob
    /// The remote the job names.
    public var remote: RemoteConfig
    /// Where the download lands, a file or a directory tree at this path (under `incompletes`, used only by
    /// this job; its folder exists). What is already there is resumed.
    public var stagedPath: String
    /// Parallel segments of one large file, parallel files of one directory (`num_threads`).
    public var parallelism: Int
    /// Files at least this large are downloaded in segments.
    public var segmentThreshold: Int64
    /// The most files and folders a directory job may list (`max_entries`); more fail it as `too_many_entries`.
    public var maxEntries: Int
    /// Whether the SHA-256 of a single file is wanted (to verify or upload it): an engine that can computes it while
    /// downloading (``StagedTransfer/sha256``).
    public var wantsSHA256 = false

    /// Creates a request.
    public init(job: TransferJob, remote: RemoteConfig, stagedPath: String, parallelism: Int,
                segmentThreshold: Int64, maxEntries: Int = 1_000_000) {
        self.job = job
        self.remote = remote
        self.stagedPath = stagedPath
        self.parallelism = parallelism
        self.segmentThreshold = segmentThreshold
        self.maxEntries = maxEntries
    }
}

/// What an engine left in the staging folder.
public struct StagedTransfer: Sendable, Equatable {
    /// What an engine downloaded.
    public enum Kind: String, Sendable, Equatable {
        /// One file.
        case file
        /// A directory tree.
        case directory
    }

    /// A file or a directory tree.
    public var kind: Kind
    /// ``TransferRequest/stagedPath``.
    public var path: String
    /// Every regular file with its size, relative to ``path`` (`""` for a single file).
    public var files: [String: Int64]
    /// Bytes received in this attempt (less than the total when resumed).
    public var bytesTransferred: Int64
    /// The engine that downloaded it: `native` or `lftp`.
    public var engine: TransferEngineKind = .native
    /// The SHA-256 (hex) of files the engine digested while downloading them, by path as in ``files`` (then
    /// nothing reads them again to verify or upload them).
    public var digests: [String: String] = [:]

    /// The SHA-256 of a single file, when the engine computed it.
    public var sha256: String? { kind == .file ? digests[""] : nil }

    /// The size of all files.
    public var totalBytes: Int64 { files.values.reduce(0, +) }
}

/// How far a transfer is.
public struct TransferProgress: Sendable, Equatable {
    /// Bytes in the staging folder so far (including what an earlier attempt left).
    public var bytes: Int64
    /// The size of the whole file or tree, once known.
    public var totalBytes: Int64?

    /// Creates a progress report.
    public init(bytes: Int64, totalBytes: Int64?) {
        self.bytes = bytes
        self.totalBytes = totalBytes
    }
}

/// Downloads a job's remote file or directory into its staging folder.
public protocol TransferEngine: Sendable {
    /// Downloads, resuming what the staging folder holds.
    /// - Parameter progress: called as bytes arrive (often: throttle before doing anything costly).
    func transfer(_ request: TransferRequest, progress: @escaping @Sendable (TransferProgress) -> Void)
        async throws(TransferFailure) -> StagedTransfer
    /// Closes connections.
    func shutdown() async
}
