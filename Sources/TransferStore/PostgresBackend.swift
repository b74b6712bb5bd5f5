import Foundation
import Logging
import PostgresNIO

/// PostgreSQL through postgres-nio's connection pool. Migrations take a transaction-scoped advisory lock, so
/// consumers starting together on several machines apply each migration exactly once.
final class PostgresBackend: SQLBackend {
    private let client: PostgresClient
    private let probe: PostgresConnection.Configuration
    private let logger: Logger
    private let address: String
    private let tls: PostgresTLS

    init(host: String, port: Int, username: String, database: String, password: String?, tls: PostgresTLS,
         logger: Logger) throws(StoreError) {
        let tlsConfiguration = Self.tlsConfiguration(tls)
        let clientTLS: PostgresClient.Configuration.TLS
        let probeTLS: PostgresConnection.Configuration.TLS
        do {
            switch (tls.mode, tlsConfiguration) {
            case (.disable, _), (_, nil):
                (clientTLS, probeTLS) = (.disable, .disable)
            case (.prefer, let configuration?):
                (clientTLS, probeTLS) = (.prefer(configuration), .prefer(try NIOSSLContext(configuration: configuration)))
            case (_, let configuration?):
                (clientTLS, probeTLS) = (.require(configuration), .require(try NIOSSLContext(configuration: configuration)))
            }
        } catch {
            throw StoreError(.invalidURL, """
                sslrootcert \(tls.rootCertificate ?? "") cannot be used: \(error); expected a PEM file of CA certificates
                """)
        }
        var configuration = PostgresClient.Configuration(host: host, port: port, username: username,
                                                         password: password, database: database, tls: clientTLS)
        configuration.options.connectTimeout = .seconds(10)
        client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        probe = PostgresConnection.Configuration(host: host, port: port, username: username, password: password,
                                                 database: database, tls: probeTLS)
        self.logger = logger
        self.tls = tls
        address = "postgres://\(username)@\(host):\(port)/\(database)"
    }

    /// The TLS configuration of an `sslmode` (`nil` for `disable`): certificates are checked only from `verify-ca`
    /// on, or for `require` with an `sslrootcert`, as libpq does.
    static func tlsConfiguration(_ tls: PostgresTLS) -> TLSConfiguration? {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let root = tls.rootCertificate { configuration.trustRoots = .file(root) }
        switch tls.mode {
        case .disable: return nil
        case .prefer: configuration.certificateVerification = .none
        case .require: configuration.certificateVerification = tls.rootCertificate == nil ? .none : .noHostnameVerification
        case .verifyCA: configuration.certificateVerification = .noHostnameVerification
        case .verifyFull: configuration.certificateVerification = .fullVerification
        }
        return configuration
    }

    func run() async { await client.run() }

    func close() async {}

    func migrate() async throws {
        do {
            // One direct connection first: the pool would keep retrying an unreachable server or a wrong
            // password, while start-up should say so at once.
            try await PostgresConnection.connect(configuration: probe, id: 0, logger: logger).close()
            try await client.withTransaction(logger: logger) { connection in
                // 0x6b73796e63 = "ksync": one lock id for all KafkaSync migrations.
                try await connection.query("SELECT pg_advisory_xact_lock(461721710179)", logger: logger)
                try await connection.query("""
                    CREATE TABLE IF NOT EXISTS kafkasync_schema_migrations (
                        version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)
                    """, logger: logger)
                var applied: Set<Int64> = []
                for try await version in try await connection.query(
                    "SELECT version FROM kafkasync_schema_migrations", logger: logger).decode(Int64.self) {
                    applied.insert(version)
                }
                for migration in TransferSQL.migrations where !applied.contains(Int64(migration.version)) {
                    for statement in migration.statements {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    let now = Date().milliseconds
                    try await connection.query("""
                        INSERT INTO kafkasync_schema_migrations (version, applied_at) \
                        VALUES (\(Int64(migration.version)), \(now))
                        """, logger: logger)
                }
            }
        } catch {
            throw mapped(error, doing: "applying migrations")
        }
    }

    func execute(_ statements: [SQLStatement]) async throws {
        do {
            if statements.count == 1 {
                try await client.query(Self.query(statements[0]), logger: logger).consume()
                return
            }
            try await client.withTransaction(logger: logger) { connection in
                for statement in statements {
                    try await connection.query(Self.query(statement), logger: logger).consume()
                }
            }
        } catch {
            throw mapped(error, doing: "writing")
        }
    }

    func fetch(_ statement: SQLStatement) async throws -> [[SQLValue]] {
        do {
            var rows: [[SQLValue]] = []
            for try await row in try await client.query(Self.query(statement), logger: logger) {
                rows.append(try row.map(Self.value))
            }
            return rows
        } catch {
            throw mapped(error, doing: "reading")
        }
    }

    /// Renders `?` placeholders as `$1`, `$2`, … and binds the arguments.
    private static func query(_ statement: SQLStatement) throws -> PostgresQuery {
        var sql = ""
        var index = 0
        for character in statement.sql {
            if character == "?" {
                index += 1
                sql += "$\(index)"
            } else {
                sql.append(character)
            }
        }
        var bindings = PostgresBindings(capacity: statement.arguments.count)
        for argument in statement.arguments {
            switch argument {
            case .null: bindings.appendNull()
            case .integer(let number): try bindings.append(number)
            case .text(let text): try bindings.append(text)
            }
        }
        return PostgresQuery(unsafeSQL: sql, binds: bindings)
    }

    private static func value(_ cell: PostgresCell) throws -> SQLValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int8, .int4, .int2: return .integer(try cell.decode(Int64.self))
        default: return .text(try cell.decode(String.self))
        }
    }

    /// A store error with the server's message, or "unavailable" for connection problems. Never a password.
    private func mapped(_ error: any Error, doing what: String) -> StoreError {
        let cause = (error as? PSQLError)?.underlying ?? error
        if cause is NIOSSLError || cause is NIOSSLExtraError {
            return StoreError(.tls, """
                PostgreSQL at \(address): the TLS handshake failed while \(what) (\(tls)): \(cause); \
                check sslmode and that sslrootcert holds the CA that signed the server's certificate
                """)
        }
        guard let error = error as? PSQLError else {
            return StoreError(.unavailable, "PostgreSQL at \(address) failed while \(what): \(error)")
        }
        if let message = error.serverInfo?[.message] {
            let code = error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
            return StoreError(.query, "PostgreSQL at \(address) refused \(what): \(message)\(code)")
        }
        if error.code == .sslUnsupported {
            return StoreError(.tls, "PostgreSQL at \(address) does not offer TLS, which \(tls) requires")
        }
        return StoreError(.unavailable, "PostgreSQL at \(address) is unavailable while \(what): \(error.code)")
    }
}

extension PostgresRowSequence {
    /// Reads and discards every row, so the connection is released.
    func consume() async throws {
        for try await _ in self {}
    }
}
