import Foundation

/// A value bound into, or read out of, SQL: the only types the `transfers` table uses.
enum SQLValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case text(String)

    init(_ text: String?) { self = text.map(SQLValue.text) ?? .null }
    init(_ number: Int64?) { self = number.map(SQLValue.integer) ?? .null }
    init(_ date: Date?) { self = date.map { .integer($0.milliseconds) } ?? .null }

    var text: String? { if case .text(let value) = self { value } else { nil } }
    var integer: Int64? { if case .integer(let value) = self { value } else { nil } }
    var date: Date? { integer.map(Date.init(milliseconds:)) }
}

/// One statement with `?` placeholders; each backend renders the placeholders its own way.
struct SQLStatement: Sendable {
    let sql: String
    let arguments: [SQLValue]

    /// Inserts `rows` into `table`, or replaces every other column of an existing row with the same key (the
    /// first `keyColumns` of `columns`); of rows with the same `key`, the last wins (as if each were written in
    /// turn; a statement may not touch one row twice).
    static func upsert<Row>(into table: String, columns: [String], keyColumns: Int, rows: [Row],
                            key: (Row) -> String, values: (Row) -> [SQLValue]) -> SQLStatement {
        var seen = Set<String>()
        let latest = rows.reversed().filter { seen.insert(key($0)).inserted }.reversed()
        let row = "(\(Array(repeating: "?", count: columns.count).joined(separator: ", ")))"
        let keys = columns.prefix(keyColumns).joined(separator: ", ")
        let updates = columns.dropFirst(keyColumns).map { "\($0) = excluded.\($0)" }.joined(separator: ", ")
        return SQLStatement(sql: """
            INSERT INTO \(table) (\(columns.joined(separator: ", "))) \
            VALUES \(Array(repeating: row, count: latest.count).joined(separator: ", ")) \
            ON CONFLICT (\(keys)) DO UPDATE SET \(updates)
            """, arguments: latest.flatMap(values))
    }
}

/// What a database must offer for the shared SQL: statements in, rows of ``SQLValue`` out.
protocol SQLBackend: Sendable {
    /// Applies ``TransferSQL/migrations`` not applied yet, safely when several processes start at once.
    func migrate() async throws
    /// Runs statements that return no rows, in one transaction.
    func execute(_ statements: [SQLStatement]) async throws
    /// Runs a query and returns its rows, columns in select order.
    func fetch(_ statement: SQLStatement) async throws -> [[SQLValue]]
    /// Keeps connections alive until cancelled (PostgreSQL's pool); returns at once where nothing runs.
    func run() async
    /// Releases connections and files.
    func close() async
}

/// The SQL of the transfer store, identical for SQLite and PostgreSQL.
enum TransferSQL {
    /// Versioned schema migrations. Never edit one that has shipped: add the next version.
    static let migrations: [(version: Int, statements: [String])] = [
        (1, [
            """
            CREATE TABLE transfers (
                job_id TEXT PRIMARY KEY,
                info_hash TEXT,
                name TEXT NOT NULL,
                remote TEXT NOT NULL,
                remote_path TEXT NOT NULL,
                destination TEXT,
                kind TEXT,
                status TEXT NOT NULL,
                attempts BIGINT NOT NULL DEFAULT 0,
                bytes_expected BIGINT,
                bytes_transferred BIGINT NOT NULL DEFAULT 0,
                checksum TEXT,
                error_class TEXT,
                error_message TEXT,
                worker_host TEXT,
                kafka_topic TEXT,
                kafka_partition BIGINT,
                kafka_offset BIGINT,
                received_at BIGINT NOT NULL,
                started_at BIGINT,
                finished_at BIGINT,
                updated_at BIGINT NOT NULL
            )
            """,
            "CREATE INDEX transfers_received_at ON transfers (received_at)",
            "CREATE INDEX transfers_status_updated_at ON transfers (status, updated_at)",
            "CREATE INDEX transfers_finished_at ON transfers (finished_at)",
        ]),
        // One row per attempt of a job, for its lineage: written with the transfer's own row.
        (2, [
            """
            CREATE TABLE transfer_attempts (
                job_id TEXT NOT NULL,
                attempt BIGINT NOT NULL,
                outcome TEXT NOT NULL,
                started_at BIGINT,
                finished_at BIGINT,
                worker_host TEXT,
                error_class TEXT,
                error_message TEXT,
                PRIMARY KEY (job_id, attempt)
            )
            """,
        ]),
        // One row per file uploaded to object storage: the state a restarted consumer resumes from.
        (3, [
            """
            CREATE TABLE uploads (
                job_id TEXT NOT NULL,
                file TEXT NOT NULL,
                upload_name TEXT NOT NULL,
                bucket TEXT NOT NULL,
                object_key TEXT NOT NULL,
                upload_id TEXT,
                state TEXT NOT NULL,
                size BIGINT NOT NULL,
                bytes_uploaded BIGINT NOT NULL DEFAULT 0,
                part_size BIGINT,
                parts TEXT NOT NULL,
                sha256 TEXT,
                error_class TEXT,
                error_message TEXT,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                local_path TEXT NOT NULL,
                PRIMARY KEY (job_id, file)
            )
            """,
            "CREATE INDEX uploads_state_updated_at ON uploads (state, updated_at)",
            // Which engine downloaded a transfer (engine "auto" picks one per remote).
            "ALTER TABLE transfers ADD COLUMN engine TEXT",
        ]),
    ]

    static let columns = [
        "job_id", "info_hash", "name", "remote", "remote_path", "destination", "kind", "status", "attempts",
        "bytes_expected", "bytes_transferred", "checksum", "error_class", "error_message", "worker_host",
        "kafka_topic", "kafka_partition", "kafka_offset", "received_at", "started_at", "finished_at", "updated_at",
        "engine",
    ]

    private static let selectRecords = "SELECT \(columns.joined(separator: ", ")) FROM transfers"

    /// Inserts the records, or replaces every column of an existing record with the same job id; of records with
    /// the same job id, the last wins (as if each were written in turn).
    static func upsert(_ records: [TransferRecord]) -> SQLStatement {
        .upsert(into: "transfers", columns: columns, keyColumns: 1, rows: records, key: \.jobID, values: values)
    }

    /// The attempt rows of records that started an attempt: the attempt's outcome so far (its status), replaced
    /// as the record moves on. Nil when no record started one.
    static func upsertAttempts(_ records: [TransferRecord]) -> SQLStatement? {
        let started = records.filter { $0.attempts > 0 && $0.status != .queued }
        guard !started.isEmpty else { return nil }
        return .upsert(into: "transfer_attempts", columns: attemptColumns, keyColumns: 2, rows: started,
                       key: { "\($0.jobID) \($0.attempts)" }, values: { r -> [SQLValue] in
                let final = r.status.isFinal || r.status == .retrying
                return [.text(r.jobID), .integer(Int64(r.attempts)), .text(r.status.rawValue), .init(r.startedAt),
                        .init(final ? r.finishedAt ?? r.updatedAt : nil), .init(r.workerHost),
                        .init(r.status == .completed ? nil : r.errorClass),
                        .init(r.status == .completed ? nil : r.errorMessage)]
            })
    }

    static let attemptColumns = [
        "job_id", "attempt", "outcome", "started_at", "finished_at", "worker_host", "error_class", "error_message",
    ]

    static func attempts(jobID: String) -> SQLStatement {
        SQLStatement(sql: "SELECT \(attemptColumns.joined(separator: ", ")) FROM transfer_attempts WHERE job_id = ? ORDER BY attempt",
                     arguments: [.text(jobID)])
    }

    static func attempt(_ row: [SQLValue]) -> TransferAttempt? {
        guard row.count == attemptColumns.count, let attempt = row[1].integer, let outcome = row[2].text,
              let status = TransferStatus(rawValue: outcome) else { return nil }
        return TransferAttempt(attempt: Int(attempt), outcome: status, startedAt: row[3].date, finishedAt: row[4].date,
                               workerHost: row[5].text, errorClass: row[6].text, errorMessage: row[7].text)
    }

    static func record(jobID: String) -> SQLStatement {
        SQLStatement(sql: "\(selectRecords) WHERE job_id = ?", arguments: [.text(jobID)])
    }

    /// Progress only moves a running transfer forward; it never touches a finished record.
    static func progress(jobID: String, bytesTransferred: Int64, bytesExpected: Int64?, at time: Date) -> SQLStatement {
        SQLStatement(sql: """
            UPDATE transfers SET bytes_transferred = ?, bytes_expected = COALESCE(?, bytes_expected), updated_at = ? \
            WHERE job_id = ? AND status = 'running' AND bytes_transferred <= ?
            """, arguments: [.integer(bytesTransferred), .init(bytesExpected), .init(time), .text(jobID),
                             .integer(bytesTransferred)])
    }

    static func list(_ query: TransferQuery) -> SQLStatement {
        var conditions: [String] = []
        var arguments: [SQLValue] = []
        if !query.statuses.isEmpty {
            let statuses = query.statuses.map(\.rawValue).sorted()
            conditions.append("status IN (\(Array(repeating: "?", count: statuses.count).joined(separator: ", ")))")
            arguments += statuses.map(SQLValue.text)
        }
        if let since = query.since {
            conditions.append("received_at >= ?")
            arguments.append(.init(since))
        }
        if let until = query.until {
            conditions.append("received_at < ?")
            arguments.append(.init(until))
        }
        if let text = query.nameContains, !text.isEmpty {
            conditions.append("lower(name) LIKE ? ESCAPE '\\'")
            let escaped = text.lowercased().replacingOccurrences(of: "\\", with: "\\\\")
                .replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
            arguments.append(.text("%\(escaped)%"))
        }
        if let after = query.after {
            // Keyset paging in the list's order (received_at DESC, job_id): stable while new jobs arrive.
            conditions.append("(received_at < ? OR (received_at = ? AND job_id > ?))")
            arguments += [.init(after.receivedAt), .init(after.receivedAt), .text(after.jobID)]
        }
        let filter = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        arguments += [.integer(Int64(max(0, query.limit))), .integer(Int64(max(0, query.offset)))]
        return SQLStatement(sql: "\(selectRecords)\(filter) ORDER BY received_at DESC, job_id LIMIT ? OFFSET ?",
                            arguments: arguments)
    }

    static func statusCounts(since: Date?) -> SQLStatement {
        SQLStatement(sql: "SELECT status, COUNT(*) FROM transfers WHERE received_at >= ? GROUP BY status",
                     arguments: [.init(since ?? .distantPast)])
    }

    static func activity(since: Date, bucketMilliseconds: Int64) -> SQLStatement {
        SQLStatement(sql: """
            SELECT (finished_at / ?) * ? AS bucket, COUNT(*), CAST(SUM(bytes_transferred) AS BIGINT) \
            FROM transfers WHERE status = 'completed' AND finished_at >= ? GROUP BY bucket ORDER BY bucket
            """, arguments: [.integer(bucketMilliseconds), .integer(bucketMilliseconds), .init(since)])
    }

    static func failureReasons(since: Date?, limit: Int) -> SQLStatement {
        SQLStatement(sql: """
            SELECT error_class, COUNT(*) AS failures, MAX(updated_at) FROM transfers \
            WHERE error_class IS NOT NULL AND status IN ('retrying', 'failed', 'dead-lettered') AND updated_at >= ? \
            GROUP BY error_class ORDER BY failures DESC, error_class LIMIT ?
            """, arguments: [.init(since ?? .distantPast), .integer(Int64(limit))])
    }

    private static func values(_ r: TransferRecord) -> [SQLValue] {
        [
            .text(r.jobID), .init(r.infoHash), .text(r.name), .text(r.remote), .text(r.remotePath),
            .init(r.destination), .init(r.kind?.rawValue), .text(r.status.rawValue), .integer(Int64(r.attempts)),
            .init(r.bytesExpected), .integer(r.bytesTransferred), .init(r.checksum), .init(r.errorClass),
            .init(r.errorMessage), .init(r.workerHost), .init(r.kafkaTopic), .init(r.kafkaPartition.map(Int64.init)),
            .init(r.kafkaOffset), .init(r.receivedAt), .init(r.startedAt), .init(r.finishedAt), .init(r.updatedAt),
            .init(r.engine),
        ]
    }

    /// Decodes a row of ``columns``.
    static func record(_ row: [SQLValue]) throws(StoreError) -> TransferRecord {
        guard row.count == columns.count, let jobID = row[0].text, let name = row[2].text, let remote = row[3].text,
              let remotePath = row[4].text, let status = row[7].text.flatMap(TransferStatus.init(rawValue:)),
              let attempts = row[8].integer, let transferred = row[10].integer, let received = row[18].date,
              let updated = row[21].date else {
            throw StoreError(.corruptRecord, "a transfers row has missing or unknown values")
        }
        return TransferRecord(
            jobID: jobID, infoHash: row[1].text, name: name, remote: remote, remotePath: remotePath,
            destination: row[5].text, kind: row[6].text.flatMap(TransferKind.init(rawValue:)), status: status,
            attempts: Int(attempts), bytesExpected: row[9].integer, bytesTransferred: transferred,
            checksum: row[11].text, errorClass: row[12].text, errorMessage: row[13].text, workerHost: row[14].text,
            kafkaTopic: row[15].text, kafkaPartition: row[16].integer.map { Int32(clamping: $0) },
            kafkaOffset: row[17].integer, receivedAt: received, startedAt: row[19].date, finishedAt: row[20].date,
            updatedAt: updated, engine: row[22].text)
    }
}
