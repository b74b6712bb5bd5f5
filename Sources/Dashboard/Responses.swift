import Foundation
import Hummingbird
import KafkaSyncCore
import TransferStore

// The JSON bodies of the API, as docs/openapi.yaml describes them. Keys are snake case, spelled out.

/// `GET /healthz`.
public struct HealthResponse: ResponseCodable, Sendable, Equatable {
    /// Always `alive`.
    public var status: String

    /// A response (clients and tests build their expected values).
    public init(status: String) {
        self.status = status
    }
}

/// `GET /readyz`.
public struct ReadinessResponse: ResponseCodable, Sendable, Equatable {
    /// Whether the consumer holds partitions and the store answers.
    public var ready: Bool
    /// The partitions the consumer holds.
    public var partitions: Int
    /// `ok` or `unavailable`.
    public var store: String

    /// A response (clients and tests build their expected values).
    public init(ready: Bool, partitions: Int, store: String) {
        self.ready = ready
        self.partitions = partitions
        self.store = store
    }
}

/// `GET /api/status`.
public struct StatusResponse: ResponseCodable, Sendable, Equatable {
    /// Transfers per status (every status, zero included), over the whole history.
    public var counts: [String: Int]
    /// The running transfers, newest first (at most 200).
    public var running: [RunningTransfer]
    /// Uploads to object storage not finished yet (pending or uploading), oldest change first (at most 200).
    public var uploads: [RunningUpload]
}

/// An upload to object storage in progress, as `/api/status` lists it.
public struct RunningUpload: Codable, Sendable, Equatable {
    public var jobID: String
    /// The file's path in the job's result (empty for a job of one file).
    public var file: String
    /// The `[uploads.NAME]` used.
    public var upload: String
    /// `s3://bucket/key`.
    public var object: String
    /// `pending` or `uploading`.
    public var state: String
    public var size: Int64
    /// Bytes the object store has acknowledged (whole parts).
    public var bytesUploaded: Int64
    /// When the upload was recorded (after the download).
    public var startedAt: Date
    /// Bytes per second acknowledged since then.
    public var rate: Double?
    /// Seconds left at that rate.
    public var etaSeconds: Double?

    enum CodingKeys: String, CodingKey {
        case file, upload, object, state, size, rate
        case jobID = "job_id", bytesUploaded = "bytes_uploaded", startedAt = "started_at", etaSeconds = "eta_seconds"
    }

    init(_ record: UploadRecord, now: Date) {
        jobID = record.jobID
        file = record.file
        upload = record.uploadName
        object = "s3://\(record.bucket)/\(record.key)"
        state = record.state.rawValue
        size = record.size
        bytesUploaded = record.bytesUploaded
        startedAt = record.createdAt
        let elapsed = now.timeIntervalSince(record.createdAt)
        if elapsed > 0.5, record.bytesUploaded > 0 {
            let rate = Double(record.bytesUploaded) / elapsed
            self.rate = rate
            etaSeconds = max(0, Double(record.size - record.bytesUploaded) / rate)
        }
    }
}

/// A transfer in progress, as `/api/status` lists it.
public struct RunningTransfer: Codable, Sendable, Equatable {
    public var jobID: String
    public var name: String
    public var remote: String
    /// Bytes moved so far.
    public var bytes: Int64
    /// The size, when known.
    public var total: Int64?
    /// The consumer host doing it.
    public var workerHost: String?
    /// The attempt (1 for the first).
    public var attempt: Int
    /// When this attempt started.
    public var startedAt: Date?
    /// Bytes per second since the attempt started.
    public var rate: Double?
    /// Seconds left at that rate, when the size is known.
    public var etaSeconds: Double?

    enum CodingKeys: String, CodingKey {
        case name, remote, bytes, total, attempt, rate
        case jobID = "job_id", workerHost = "worker_host", startedAt = "started_at", etaSeconds = "eta_seconds"
    }

    init(_ record: TransferRecord, now: Date) {
        jobID = record.jobID
        name = record.name
        remote = record.remote
        bytes = record.bytesTransferred
        total = record.bytesExpected
        workerHost = record.workerHost
        attempt = record.attempts
        startedAt = record.startedAt
        if let startedAt = record.startedAt, now.timeIntervalSince(startedAt) > 0.5, record.bytesTransferred > 0 {
            let rate = Double(record.bytesTransferred) / now.timeIntervalSince(startedAt)
            self.rate = rate
            if let total = record.bytesExpected { etaSeconds = max(0, Double(total - record.bytesTransferred) / rate) }
        }
    }
}

/// `GET /api/activity`: completed files and bytes per minute.
public struct ActivityResponse: ResponseCodable, Sendable, Equatable {
    public struct Bucket: Codable, Sendable, Equatable {
        public var start: Date
        public var files: Int
        public var bytes: Int64
    }

    public var bucketSeconds: Int
    /// Oldest first; every minute of the window, zero when nothing completed.
    public var buckets: [Bucket]

    enum CodingKeys: String, CodingKey {
        case buckets
        case bucketSeconds = "bucket_seconds"
    }
}

/// A transfer of the history (`GET /api/transfers`).
public struct TransferSummary: Codable, Sendable, Equatable {
    public var jobID: String
    public var name: String
    public var remote: String
    public var remotePath: String
    public var destination: String?
    public var kind: String?
    public var status: String
    public var attempts: Int
    public var bytes: Int64
    public var total: Int64?
    public var errorClass: String?
    public var errorMessage: String?
    public var receivedAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    public var durationSeconds: Double?

    enum CodingKeys: String, CodingKey {
        case name, remote, destination, kind, status, attempts, bytes, total
        case jobID = "job_id", remotePath = "remote_path", errorClass = "error_class", errorMessage = "error_message"
        case receivedAt = "received_at", startedAt = "started_at", finishedAt = "finished_at"
        case durationSeconds = "duration_seconds"
    }

    init(_ record: TransferRecord) {
        jobID = record.jobID
        name = record.name
        remote = record.remote
        remotePath = record.remotePath
        destination = record.destination
        kind = record.kind?.rawValue
        status = record.status.rawValue
        attempts = record.attempts
        bytes = record.bytesTransferred
        // A completed transfer's size is what landed, whether or not the job announced it.
        total = record.bytesExpected ?? (record.status == .completed ? record.bytesTransferred : nil)
        errorClass = record.errorClass
        errorMessage = record.errorMessage
        receivedAt = record.receivedAt
        startedAt = record.startedAt
        finishedAt = record.finishedAt
        durationSeconds = record.duration.map { max(0, $0) }
    }
}

/// `GET /api/transfers`: one page of the history.
public struct TransferPage: ResponseCodable, Sendable, Equatable {
    public var transfers: [TransferSummary]
    /// The cursor of the next page; absent on the last.
    public var nextCursor: String?

    enum CodingKeys: String, CodingKey {
        case transfers
        case nextCursor = "next_cursor"
    }
}

/// `GET /api/transfers/{jobID}`: a transfer's lineage.
public struct TransferDetail: ResponseCodable, Sendable, Equatable {
    public struct KafkaPosition: Codable, Sendable, Equatable {
        public var topic: String
        public var partition: Int32
        public var offset: Int64
    }

    public struct Attempt: Codable, Sendable, Equatable {
        public var attempt: Int
        public var outcome: String
        public var startedAt: Date?
        public var finishedAt: Date?
        public var workerHost: String?
        public var errorClass: String?
        public var errorMessage: String?

        enum CodingKeys: String, CodingKey {
            case attempt, outcome
            case startedAt = "started_at", finishedAt = "finished_at", workerHost = "worker_host"
            case errorClass = "error_class", errorMessage = "error_message"
        }
    }

    /// One file's upload to object storage (the job had an upload).
    public struct Upload: Codable, Sendable, Equatable {
        public var file: String
        public var upload: String
        public var object: String
        public var state: String
        public var size: Int64
        public var bytesUploaded: Int64
        public var parts: Int
        public var updatedAt: Date
        public var errorClass: String?
        public var errorMessage: String?

        enum CodingKeys: String, CodingKey {
            case file, upload, object, state, size, parts
            case bytesUploaded = "bytes_uploaded", updatedAt = "updated_at", errorClass = "error_class"
            case errorMessage = "error_message"
        }

        init(_ record: UploadRecord) {
            file = record.file
            upload = record.uploadName
            object = "s3://\(record.bucket)/\(record.key)"
            state = record.state.rawValue
            size = record.size
            bytesUploaded = record.bytesUploaded
            parts = record.parts.count
            updatedAt = record.updatedAt
            errorClass = record.errorClass
            errorMessage = record.errorMessage
        }
    }

    public var transfer: TransferSummary
    public var infoHash: String?
    public var checksum: String?
    public var finalPath: String?
    public var workerHost: String?
    /// The engine that downloaded it (`native`, `lftp`).
    public var engine: String?
    public var kafka: KafkaPosition?
    public var attempts: [Attempt]
    public var uploads: [Upload]?

    enum CodingKeys: String, CodingKey {
        case transfer, checksum, kafka, attempts, uploads, engine
        case infoHash = "info_hash", finalPath = "final_path", workerHost = "worker_host"
    }
}

/// A record of the dead-letter topic (`GET /api/dlq`).
public struct DeadLetterSummary: Codable, Sendable, Equatable {
    public var position: String
    public var jobID: String?
    public var name: String?
    public var reason: String
    public var errorClass: String
    public var error: String
    public var attempts: Int
    public var origin: String
    public var firstFailure: String?
    public var lastFailure: String?

    enum CodingKeys: String, CodingKey {
        case position, name, reason, error, attempts, origin
        case jobID = "job_id", errorClass = "error_class", firstFailure = "first_failure", lastFailure = "last_failure"
    }

    init(_ letter: DeadLetter) {
        position = letter.position
        jobID = letter.jobID
        name = letter.name
        reason = letter.reason
        errorClass = letter.errorClass
        error = letter.error
        attempts = letter.attempts
        origin = letter.origin
        firstFailure = letter.firstFailure.isEmpty ? nil : letter.firstFailure
        lastFailure = letter.lastFailure.isEmpty ? nil : letter.lastFailure
    }
}

/// `GET /api/dlq`.
public struct DeadLettersResponse: ResponseCodable, Sendable, Equatable {
    public var topic: String
    public var deadLetters: [DeadLetterSummary]
    /// Dead letters per reason.
    public var reasons: [String: Int]

    enum CodingKeys: String, CodingKey {
        case topic, reasons
        case deadLetters = "dead_letters"
    }
}

/// `POST /api/dlq/replay`'s body: some dead letters by position or job id, or all (of one reason).
public struct ReplayRequest: Codable, Sendable, Equatable {
    public var ids: [String]?
    public var all: Bool?
    public var reason: String?

    public init(ids: [String]? = nil, all: Bool? = nil, reason: String? = nil) {
        self.ids = ids
        self.all = all
        self.reason = reason
    }
}

/// `POST /api/dlq/replay`'s answer.
public struct ReplayResponse: ResponseCodable, Sendable, Equatable {
    public struct Replayed: Codable, Sendable, Equatable {
        public var position: String
        public var jobID: String?
        public var partition: Int32
        public var offset: Int64

        enum CodingKeys: String, CodingKey {
            case position, partition, offset
            case jobID = "job_id"
        }
    }

    public var replayed: [Replayed]
    /// Asked ids that no dead letter has.
    public var unknown: [String]
}

/// `POST /api/jobs`'s answer: where the job was published.
public struct PublishedResponse: ResponseCodable, Sendable, Equatable {
    public var jobID: String
    public var topic: String
    public var partition: Int32
    public var offset: Int64

    enum CodingKeys: String, CodingKey {
        case topic, partition, offset
        case jobID = "job_id"
    }
}

/// `GET /api/queue`: what is waiting.
public struct QueueResponse: ResponseCodable, Sendable, Equatable {
    public struct Partition: Codable, Sendable, Equatable {
        public var topic: String
        public var partition: Int32
        public var committed: Int64
        public var end: Int64
        public var pending: Int64
    }

    public struct Pending: Codable, Sendable, Equatable {
        public var topic: String
        public var partition: Int32
        public var offset: Int64
        public var jobID: String?
        public var name: String?
        public var publishedAt: Date?
        public var ageSeconds: Double?

        enum CodingKeys: String, CodingKey {
            case topic, partition, offset, name
            case jobID = "job_id", publishedAt = "published_at", ageSeconds = "age_seconds"
        }
    }

    public struct Retry: Codable, Sendable, Equatable {
        public var jobID: String
        public var name: String
        public var attempt: Int
        public var notBefore: Date

        enum CodingKeys: String, CodingKey {
            case name, attempt
            case jobID = "job_id", notBefore = "not_before"
        }
    }

    /// Jobs published and not consumed yet, over every partition of the jobs topic.
    public var pending: Int64
    public var partitions: [Partition]
    /// The next pending jobs, oldest first (at most 50).
    public var next: [Pending]
    /// Retries waiting for their time in this consumer.
    public var retries: [Retry]
}

/// An error body: `{"error": {"reason": "...", "message": "..."}}`.
struct ErrorResponse: Codable, Sendable {
    struct Detail: Codable, Sendable {
        var reason: String?
        var message: String
    }

    var error: Detail
}

/// A 400 with a machine-readable reason (``ErrorResponse``).
struct BadRequest: HTTPResponseError {
    let reason: String
    let message: String

    var status: HTTPResponse.Status { .badRequest }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var buffer = ByteBuffer()
        buffer.writeBytes(try JSONEncoder().encode(ErrorResponse(error: .init(reason: reason, message: message))))
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: buffer))
    }
}
