import Foundation
import TransferStore

/// The two store backends the shared store suite runs against.
public enum StoreBackendKind: String, CaseIterable, Sendable, CustomStringConvertible {
    case sqlite, postgres
    public var description: String { rawValue }
}

/// Fixtures for the transfer store: a fresh SQLite file or a fresh PostgreSQL database per test.
public enum StoreFixtures {
    /// The throwaway server `scripts/with-postgres` started (as `scripts/test` does).
    public struct PostgresServer: Sendable {
        /// `postgres://user@host:port/database`.
        public let url: String
        /// The user's password.
        public let password: String
    }

    /// The PostgreSQL server of this test run.
    /// - Throws: when `KAFKASYNC_TEST_POSTGRES_URL` is not set: the tests then fail, they never skip.
    public static func postgresServer() throws -> PostgresServer {
        let environment = ProcessInfo.processInfo.environment
        guard let url = environment["KAFKASYNC_TEST_POSTGRES_URL"],
              let password = environment["KAFKASYNC_TEST_POSTGRES_PASSWORD"] else {
            throw FixtureUnavailable(what: """
                PostgreSQL: KAFKASYNC_TEST_POSTGRES_URL is not set. Run the tests with scripts/test, or wrap \
                the command: scripts/with-postgres swift test
                """)
        }
        return PostgresServer(url: url, password: password)
    }

    /// A new, empty store location of `kind`, and a function that removes it afterwards.
    public static func freshLocation(_ kind: StoreBackendKind) async throws -> (StoreLocation, @Sendable () -> Void) {
        switch kind {
        case .sqlite:
            let directory = try TemporaryDirectory(prefix: "kafkasync-store")
            return (.sqlite(path: directory.file("kafkasync.db")), { directory.remove() })
        case .postgres:
            let server = try postgresServer()
            let database = "t_" + UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: "")
            try await psql(server, "CREATE DATABASE \(database)")
            let base = URL(string: server.url)!
            let location = try StoreLocation(url: "postgres://\(base.user!)@\(base.host!):\(base.port!)/\(database)",
                                             relativeTo: "/", password: server.password)
            // The whole server is thrown away after the run (scripts/with-postgres).
            return (location, {})
        }
    }

    /// The URL (without password) of a PostgreSQL location.
    public static func url(of location: StoreLocation) -> String {
        switch location {
        case .sqlite(let path): "sqlite://\(path)"
        case .postgres(let host, let port, let username, let database, _, _): "postgres://\(username)@\(host):\(port)/\(database)"
        }
    }

    /// Runs one SQL command with `psql` against the server's maintenance database.
    static func psql(_ server: PostgresServer, _ sql: String) async throws {
        let result = try await runProcess("psql", [server.url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
                                          environment: ["PGPASSWORD": server.password])
        guard result.status == 0 else { throw FixtureUnavailable(what: "psql \(sql): \(result.stderr)") }
    }
}

/// A fixture the tests need could not be provided. Tests fail with it; they never skip.
public struct FixtureUnavailable: Error, CustomStringConvertible {
    /// What is missing and how to provide it.
    public let what: String
    public var description: String { "test fixture unavailable: \(what)" }

    /// A fixture that could not start, saying what is missing.
    public init(what: String) {
        self.what = what
    }
}
