import Foundation

/// Where a transfer is in its life.
public enum TransferStatus: String, Sendable, Hashable, Codable, CaseIterable {
    /// Received from Kafka, not started.
    case queued
    /// Downloading now.
    case running
    /// Failed transiently; waiting for another attempt.
    case retrying
    /// Whole, verified and in `completes`.
    case completed
    /// Failed for good (recorded before dead-lettering or when no DLQ applies).
    case failed
    /// Sent to the dead-letter topic.
    case deadLettered = "dead-lettered"
    /// Already completed earlier with the same content: nothing was downloaded.
    case skippedDuplicate = "skipped-duplicate"

    /// Whether nothing more will happen to the transfer.
    public var isFinal: Bool {
        switch self {
        case .completed, .failed, .deadLettered, .skippedDuplicate: true
        case .queued, .running, .retrying: false
        }
    }
}

/// What a transfer moves.
public enum TransferKind: String, Sendable, Hashable, Codable, CaseIterable {
    /// One file.
    case file
    /// A directory tree.
    case directory
}

/// Everything recorded about one transfer (one job id). One row of the `transfers` table.
public struct TransferRecord: Sendable, Equatable, Codable {
    /// The job id (primary key).
    public var jobID: String
    /// The original producer's info hash.
    public var infoHash: String?
    /// The remote file or directory name.
    public var name: String
    /// The remote's name (`remoteDetails` for the default).
    public var remote: String
    /// The full remote path.
    public var remotePath: String
    /// The folder under `completes`, if any.
    public var destination: String?
    /// File or directory, once known.
    public var kind: TransferKind?
    /// Where the transfer is.
    public var status: TransferStatus
    /// Attempts started so far.
    public var attempts: Int
    /// The expected size, when the job or the remote said.
    public var bytesExpected: Int64?
    /// Bytes moved so far (all of them once completed).
    public var bytesTransferred: Int64
    /// The checksum verified (`sha256:<hex>`), if any.
    public var checksum: String?
    /// A stable error code of the last failure (e.g. `no_such_file`).
    public var errorClass: String?
    /// A human message of the last failure (never containing secrets).
    public var errorMessage: String?
    /// The host name of the consumer that handled it last.
    public var workerHost: String?
    /// Where the job came from in Kafka.
    public var kafkaTopic: String?
    /// The partition of the job message.
    public var kafkaPartition: Int32?
    /// The offset of the job message.
    public var kafkaOffset: Int64?
    /// When the job was received.
    public var receivedAt: Date
    /// When the last attempt started.
    public var startedAt: Date?
    /// When it reached a final status.
    public var finishedAt: Date?
    /// When this record last changed.
    public var updatedAt: Date
    /// The engine that downloaded it (`native`, `lftp`), once known.
    public var engine: String?

    /// Creates a record; times are kept to the millisecond, as stored.
    public init(jobID: String, infoHash: String? = nil, name: String, remote: String, remotePath: String,
                destination: String? = nil, kind: TransferKind? = nil, status: TransferStatus, attempts: Int = 0,
                bytesExpected: Int64? = nil, bytesTransferred: Int64 = 0, checksum: String? = nil,
                errorClass: String? = nil, errorMessage: String? = nil, workerHost: String? = nil,
                kafkaTopic: String? = nil, kafkaPartition: Int32? = nil, kafkaOffset: Int64? = nil,
                receivedAt: Date, startedAt: Date? = nil, finishedAt: Date? = nil, updatedAt: Date? = nil,
                engine: String? = nil) {
        self.jobID = jobID
        self.infoHash = infoHash
        self.name = name
        self.remote = remote
        self.remotePath = remotePath
        self.destination = destination
        self.kind = kind
        self.status = status
        self.attempts = attempts
        self.bytesExpected = bytesExpected
        self.bytesTransferred = bytesTransferred
        self.checksum = checksum
        self.errorClass = errorClass
        self.errorMessage = errorMessage
        self.workerHost = workerHost
        self.kafkaTopic = kafkaTopic
        self.kafkaPartition = kafkaPartition
        self.kafkaOffset = kafkaOffset
        self.receivedAt = receivedAt.roundedToMilliseconds
        self.startedAt = startedAt?.roundedToMilliseconds
        self.finishedAt = finishedAt?.roundedToMilliseconds
        self.updatedAt = (updatedAt ?? receivedAt).roundedToMilliseconds
        self.engine = engine
    }

    /// From the start of the last attempt to the final status.
    public var duration: TimeInterval? {
        guard let startedAt, let finishedAt else { return nil }
        return finishedAt.timeIntervalSince(startedAt)
    }

    /// Bytes per second over ``duration``.
    public var averageRate: Double? {
        guard let duration, duration > 0 else { return nil }
        return Double(bytesTransferred) / duration
    }
}

extension Date {
    /// Milliseconds since 1970, the unit times are stored in.
    var milliseconds: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }

    init(milliseconds: Int64) { self.init(timeIntervalSince1970: Double(milliseconds) / 1000) }

    var roundedToMilliseconds: Date { Date(milliseconds: milliseconds) }
}
