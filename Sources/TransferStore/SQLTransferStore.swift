import AsyncSupport
import CoreMetrics
import Foundation
import Logging

/// The ``TransferStore`` over SQL: one implementation of the behaviour, two backends (SQLite, PostgreSQL).
public final class SQLTransferStore: TransferStore {
    private let backend: any SQLBackend
    /// Saves of concurrent jobs share a statement and a transaction (at most 50 records each).
    let saves: GroupCommit<TransferRecord, StoreError>
    /// Upload saves of concurrent jobs share a statement too (each save's records stay together).
    let uploadSaves: GroupCommit<[UploadRecord], StoreError>

    init(backend: any SQLBackend) {
        self.backend = backend
        uploadSaves = GroupCommit(batchLimit: 50) { groups in
            do throws(StoreError) {
                return .success(try await Self.perform { try await backend.execute([UploadSQL.upsert(groups.flatMap { $0 })]) })
            } catch {
                return .failure(error)
            }
        }
        saves = GroupCommit(batchLimit: 50) { records in
            do throws(StoreError) {
                let statements = [TransferSQL.upsert(records)] + [TransferSQL.upsertAttempts(records)].compactMap { $0 }
                let started = ContinuousClock.now
                defer {
                    Timer(label: "kafkasync_store_write_seconds").recordNanoseconds((ContinuousClock.now - started).wholeNanoseconds)
                }
                return .success(try await Self.perform { try await backend.execute(statements) })
            } catch {
                return .failure(error)
            }
        }
    }

    /// Opens the database at `location` (a SQLite file is created if missing). Call ``migrate()`` and keep
    /// ``run()`` running before use, or use ``withTransferStore(_:logger:_:)``.
    /// - Throws: ``StoreError/Code/unavailable`` when the file cannot be opened; ``StoreError/Code/invalidURL``
    ///   when PostgreSQL's `sslrootcert` cannot be read.
    public static func open(_ location: StoreLocation, logger: Logger) throws(StoreError) -> SQLTransferStore {
        switch location {
        case .sqlite(let path):
            return SQLTransferStore(backend: try SQLiteBackend(path: path))
        case .postgres(let host, let port, let username, let database, let password, let tls):
            return SQLTransferStore(backend: try PostgresBackend(host: host, port: port, username: username,
                                                                 database: database, password: password, tls: tls,
                                                                 logger: logger))
        }
    }

    /// Applies pending schema migrations; safe when several processes start at once.
    public func migrate() async throws(StoreError) {
        do {
            try await backend.migrate()
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.migration, "schema migration failed: \(String(describing: error))")
        }
    }

    public func save(_ record: TransferRecord) async throws(StoreError) {
        try await saves.submit(record)
    }

    public func record(jobID: String) async throws(StoreError) -> TransferRecord? {
        try await fetchRecords(TransferSQL.record(jobID: jobID)).first
    }

    public func updateProgress(jobID: String, bytesTransferred: Int64, bytesExpected: Int64?, at time: Date)
        async throws(StoreError)
    {
        try await Self.perform {
            try await backend.execute([TransferSQL.progress(jobID: jobID, bytesTransferred: bytesTransferred,
                                                            bytesExpected: bytesExpected, at: time)])
        }
    }

    public func attempts(jobID: String) async throws(StoreError) -> [TransferAttempt] {
        let rows = try await Self.perform { try await backend.fetch(TransferSQL.attempts(jobID: jobID)) }
        return rows.compactMap(TransferSQL.attempt)
    }

    public func records(matching query: TransferQuery) async throws(StoreError) -> [TransferRecord] {
        try await fetchRecords(TransferSQL.list(query))
    }

    public func statusCounts(since: Date?) async throws(StoreError) -> [TransferStatus: Int] {
        let rows = try await Self.perform { try await backend.fetch(TransferSQL.statusCounts(since: since)) }
        var counts: [TransferStatus: Int] = [:]
        for row in rows {
            if let status = row[0].text.flatMap(TransferStatus.init(rawValue:)), let count = row[1].integer {
                counts[status] = Int(count)
            }
        }
        return counts
    }

    public func activity(since: Date, bucket: Duration) async throws(StoreError) -> [ActivityBucket] {
        let milliseconds = max(1, bucket.wholeMilliseconds)
        let rows = try await Self.perform {
            try await backend.fetch(TransferSQL.activity(since: since, bucketMilliseconds: milliseconds))
        }
        return rows.compactMap { row in
            guard let start = row[0].date, let files = row[1].integer else { return nil }
            return ActivityBucket(start: start, files: Int(files), bytes: row[2].integer ?? 0)
        }
    }

    public func failureReasons(since: Date?, limit: Int) async throws(StoreError) -> [FailureReason] {
        let rows = try await Self.perform { try await backend.fetch(TransferSQL.failureReasons(since: since, limit: limit)) }
        return rows.compactMap { row in
            guard let errorClass = row[0].text, let count = row[1].integer, let last = row[2].date else { return nil }
            return FailureReason(errorClass: errorClass, count: Int(count), lastSeen: last)
        }
    }

    public func saveUploads(_ records: [UploadRecord]) async throws(StoreError) {
        guard !records.isEmpty else { return }
        try await uploadSaves.submit(records)
    }

    public func uploads(jobID: String) async throws(StoreError) -> [UploadRecord] {
        try await fetchUploads(UploadSQL.forJob(jobID))
    }

    public func uploads(matching query: UploadQuery) async throws(StoreError) -> [UploadRecord] {
        try await fetchUploads(UploadSQL.list(query))
    }

    private func fetchUploads(_ statement: SQLStatement) async throws(StoreError) -> [UploadRecord] {
        let rows = try await Self.perform { try await backend.fetch(statement) }
        return try rows.map { (row) throws(StoreError) in try UploadSQL.record(row) }
    }

    public func run() async { await backend.run() }

    public func close() async { await backend.close() }

    private func fetchRecords(_ statement: SQLStatement) async throws(StoreError) -> [TransferRecord] {
        let rows = try await Self.perform { try await backend.fetch(statement) }
        return try rows.map { (row) throws(StoreError) in try TransferSQL.record(row) }
    }

    /// Runs backend work, turning its errors into ``StoreError``s.
    private static func perform<T>(_ work: () async throws -> T) async throws(StoreError) -> T {
        do {
            return try await work()
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.query, "store query failed: \(String(describing: error))")
        }
    }
}
