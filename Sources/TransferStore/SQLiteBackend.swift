import AsyncSupport
import Foundation
import GRDB

/// SQLite through GRDB: a WAL-mode pool with a busy timeout, so that several writers (tasks or processes)
/// wait for each other instead of failing with "database is locked".
final class SQLiteBackend: SQLBackend {
    private let pool: DatabasePool

    init(path: String) throws(StoreError) {
        var configuration = Configuration()
        configuration.busyMode = .timeout(30)
        do {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            pool = try DatabasePool(path: path, configuration: configuration)
        } catch {
            throw StoreError(.unavailable, "cannot open the SQLite store \(path): \(error)")
        }
    }

    func migrate() async throws {
        var migrator = DatabaseMigrator()
        for migration in TransferSQL.migrations {
            migrator.registerMigration("v\(migration.version)") { db in
                for statement in migration.statements { try db.execute(sql: statement) }
            }
        }
        // `migrate` blocks until done: keep it off the cooperative pool.
        let pool = self.pool, registered = migrator
        try await runBlocking { () throws in
            // GRDB reads which migrations are applied before it takes the write lock, so two processes
            // starting on a new file can both try the first one; the loser fails with "already exists".
            // Each migration commits with its bookkeeping, so trying again finds it applied.
            var attempt = 1
            while true {
                do {
                    return try registered.migrate(pool)
                } catch where attempt < 5 {
                    attempt += 1
                    usleep(200_000)
                }
            }
        }
    }

    func execute(_ statements: [SQLStatement]) async throws {
        try await pool.write { db in
            // Statements are few and repeated per job: prepare each once per connection.
            for statement in statements {
                try db.cachedStatement(sql: statement.sql).execute(arguments: Self.arguments(statement))
            }
        }
    }

    func fetch(_ statement: SQLStatement) async throws -> [[SQLValue]] {
        try await pool.read { db in
            try Row.fetchAll(db.cachedStatement(sql: statement.sql), arguments: Self.arguments(statement)).map { row in
                row.databaseValues.map { value in
                    switch value.storage {
                    case .int64(let number): .integer(number)
                    case .string(let text): .text(text)
                    case .double(let number): .integer(Int64(number))
                    case .null, .blob: .null
                    }
                }
            }
        }
    }

    func run() async {}

    func close() async {
        try? pool.close()
    }

    private static func arguments(_ statement: SQLStatement) -> StatementArguments {
        StatementArguments(statement.arguments.map { value -> (any DatabaseValueConvertible)? in
            switch value {
            case .null: nil
            case .integer(let number): number
            case .text(let text): text
            }
        })
    }
}
