import Foundation

/// Where one file's upload to object storage is.
public enum UploadState: String, Sendable, Hashable, Codable, CaseIterable {
    /// Recorded, nothing sent yet.
    case pending
    /// A multipart upload is open (its id and finished parts are recorded), or a single request is on its way.
    case uploading
    /// The object is complete and verified.
    case completed
    /// An identical object was already at the key: nothing was sent.
    case skipped
    /// Failed for good (the job was dead-lettered).
    case failed
    /// The multipart upload was aborted (by the janitor or `kafkasync uploads abort`).
    case aborted

    /// Whether nothing more will happen to the upload.
    public var isFinal: Bool {
        switch self {
        case .completed, .skipped, .failed, .aborted: true
        case .pending, .uploading: false
        }
    }
}

/// One file's upload: a row of the `uploads` table, keyed by job id and the file's path in the job's result. It
/// holds what a restarted consumer needs to resume: the multipart upload id and the parts already sent.
public struct UploadRecord: Sendable, Equatable, Codable {
    /// A part sent to the object store.
    public struct Part: Sendable, Equatable, Codable {
        /// 1...10,000.
        public var number: Int
        /// The ETag the store gave it (an opaque token, never an MD5).
        public var etag: String
        /// Its checksum as sent (base64), when one was.
        public var checksum: String?
        /// Its length in bytes.
        public var size: Int64

        /// A part.
        public init(number: Int, etag: String, checksum: String?, size: Int64) {
            self.number = number
            self.etag = etag
            self.checksum = checksum
            self.size = size
        }
    }

    /// The job id.
    public var jobID: String
    /// The file's path in the job's result: `""` for a single file, `sub/file` in a directory.
    public var file: String
    /// Where the file is on this host (in `completes`).
    public var localPath: String
    /// The `[uploads.NAME]` it goes to.
    public var uploadName: String
    /// The bucket.
    public var bucket: String
    /// The object key.
    public var key: String
    /// The multipart upload id; `nil` for a single request.
    public var uploadID: String?
    /// Where it is.
    public var state: UploadState
    /// The file's size.
    public var size: Int64
    /// Bytes the store has acknowledged.
    public var bytesUploaded: Int64
    /// The part size of a multipart upload.
    public var partSize: Int64?
    /// The parts the store has acknowledged, by number.
    public var parts: [Part]
    /// The whole file's SHA-256 (hex), stored as the object's `sha256` metadata.
    public var sha256: String?
    /// Why it failed, when it did.
    public var errorClass: String?
    /// What went wrong, for people.
    public var errorMessage: String?
    /// When it was recorded.
    public var createdAt: Date
    /// When it last changed.
    public var updatedAt: Date

    /// A record.
    public init(jobID: String, file: String, localPath: String, uploadName: String, bucket: String, key: String, uploadID: String? = nil,
                state: UploadState, size: Int64, bytesUploaded: Int64 = 0, partSize: Int64? = nil, parts: [Part] = [],
                sha256: String? = nil, errorClass: String? = nil, errorMessage: String? = nil, createdAt: Date,
                updatedAt: Date) {
        self.jobID = jobID
        self.file = file
        self.localPath = localPath
        self.uploadName = uploadName
        self.bucket = bucket
        self.key = key
        self.uploadID = uploadID
        self.state = state
        self.size = size
        self.bytesUploaded = bytesUploaded
        self.partSize = partSize
        self.parts = parts
        self.sha256 = sha256
        self.errorClass = errorClass
        self.errorMessage = errorMessage
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// Which uploads to list.
public struct UploadQuery: Sendable, Equatable {
    /// Only these states (all when empty).
    public var states: Set<UploadState> = []
    /// Only those last changed before this.
    public var updatedBefore: Date?
    /// At most this many, oldest change first.
    public var limit = 1000

    /// A query.
    public init(states: Set<UploadState> = [], updatedBefore: Date? = nil, limit: Int = 1000) {
        self.states = states
        self.updatedBefore = updatedBefore
        self.limit = limit
    }
}

/// The SQL of the `uploads` table, identical for SQLite and PostgreSQL.
enum UploadSQL {
    static let columns = [
        "job_id", "file", "upload_name", "bucket", "object_key", "upload_id", "state", "size", "bytes_uploaded",
        "part_size", "parts", "sha256", "error_class", "error_message", "created_at", "updated_at", "local_path",
    ]

    /// Inserts the records or replaces the rows with the same job id and file; of records with the same job id and
    /// file, the last wins (as if each were written in turn).
    static func upsert(_ records: [UploadRecord]) -> SQLStatement {
        .upsert(into: "uploads", columns: columns, keyColumns: 2, rows: records, key: { $0.jobID + "\u{0}" + $0.file },
                values: values)
    }

    static func forJob(_ jobID: String) -> SQLStatement {
        SQLStatement(sql: "SELECT \(columns.joined(separator: ", ")) FROM uploads WHERE job_id = ? ORDER BY file",
                     arguments: [.text(jobID)])
    }

    static func list(_ query: UploadQuery) -> SQLStatement {
        var conditions: [String] = []
        var arguments: [SQLValue] = []
        if !query.states.isEmpty {
            let states = query.states.map(\.rawValue).sorted()
            conditions.append("state IN (\(Array(repeating: "?", count: states.count).joined(separator: ", ")))")
            arguments += states.map(SQLValue.text)
        }
        if let before = query.updatedBefore {
            conditions.append("updated_at < ?")
            arguments.append(.init(before))
        }
        let filter = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        return SQLStatement(sql: """
            SELECT \(columns.joined(separator: ", ")) FROM uploads\(filter) ORDER BY updated_at, job_id, file LIMIT ?
            """, arguments: arguments + [.integer(Int64(max(0, query.limit)))])
    }

    private static func values(_ r: UploadRecord) -> [SQLValue] {
        let parts = (try? JSONEncoder().encode(r.parts)).flatMap { String(data: $0, encoding: .utf8) } ?? "[]"
        return [
            .text(r.jobID), .text(r.file), .text(r.uploadName), .text(r.bucket), .text(r.key), .init(r.uploadID),
            .text(r.state.rawValue), .integer(r.size), .integer(r.bytesUploaded), .init(r.partSize), .text(parts),
            .init(r.sha256), .init(r.errorClass), .init(r.errorMessage), .init(r.createdAt), .init(r.updatedAt), .text(r.localPath),
        ]
    }

    /// Decodes a row of ``columns``.
    static func record(_ row: [SQLValue]) throws(StoreError) -> UploadRecord {
        guard row.count == columns.count, let jobID = row[0].text, let file = row[1].text, let name = row[2].text,
              let bucket = row[3].text, let key = row[4].text, let state = row[6].text.flatMap(UploadState.init(rawValue:)),
              let size = row[7].integer, let uploaded = row[8].integer, let created = row[14].date,
              let updated = row[15].date, let localPath = row[16].text,
              let parts = try? JSONDecoder().decode([UploadRecord.Part].self, from: Data((row[10].text ?? "[]").utf8))
        else {
            throw StoreError(.corruptRecord, "an uploads row has missing or unknown values")
        }
        return UploadRecord(jobID: jobID, file: file, localPath: localPath, uploadName: name, bucket: bucket, key: key, uploadID: row[5].text,
                            state: state, size: size, bytesUploaded: uploaded, partSize: row[9].integer, parts: parts,
                            sha256: row[11].text, errorClass: row[12].text, errorMessage: row[13].text,
                            createdAt: created, updatedAt: updated)
    }
}
