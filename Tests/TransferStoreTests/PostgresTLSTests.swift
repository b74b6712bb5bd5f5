import Foundation
import Logging
import TestSupport
import Testing
@testable import TransferStore

/// PostgreSQL over TLS, against the server `scripts/with-postgres` starts with `ssl = on` and a certificate for
/// 127.0.0.1 signed by a CA made for the run (`KAFKASYNC_TEST_POSTGRES_CA`).
@Suite(.timeLimit(.minutes(2))) struct PostgresTLSTests {
    let logger = KafkaFixtures.logger("kafkasync.test.store.tls")

    @Test func storeURLsTakeSSLModeAndRootCertificate() throws {
        #expect(try StoreLocation(url: "postgres://u@db/d?sslmode=verify-full&sslrootcert=ca.pem", relativeTo: "/etc/ks")
                == .postgres(host: "db", port: 5432, username: "u", database: "d", password: nil,
                             tls: PostgresTLS(mode: .verifyFull, rootCertificate: "/etc/ks/ca.pem")))
        #expect(try StoreLocation(url: "postgres://u@db/d?sslmode=disable", relativeTo: "/")
                == .postgres(host: "db", port: 5432, username: "u", database: "d", password: nil,
                             tls: PostgresTLS(mode: .disable)))
        #expect(try StoreLocation(url: "postgres://u@db/d", relativeTo: "/")
                == .postgres(host: "db", port: 5432, username: "u", database: "d", password: nil, tls: .prefer),
                "libpq's default: prefer")
        for mode in PostgresTLS.Mode.allCases {
            let location = try StoreLocation(url: "postgres://u@db/d?sslmode=\(mode.rawValue)", relativeTo: "/")
            #expect(location == .postgres(host: "db", port: 5432, username: "u", database: "d", password: nil,
                                          tls: PostgresTLS(mode: mode)))
        }
        #expect("\(try StoreLocation(url: "postgres://u@db/d?sslmode=require", relativeTo: "/"))".contains("sslmode=require"))
    }

    @Test(arguments: [
        ("postgres://u@db/d?sslmode=bogus", ["sslmode", "\"bogus\"", "disable, prefer, require, verify-ca, verify-full"]),
        ("postgres://u@db/d?sslmode=allow", ["sslmode", "\"allow\"", "verify-full"]),
        ("postgres://u@db/d?sslrootcert=", ["sslrootcert", "PEM"]),
        ("postgres://u@db/d?ssl_mode=require", ["\"ssl_mode\"", "sslmode or sslrootcert"]),
    ])
    func badTLSParametersAreInvalidURLsNamingValueAndExpectation(_ url: String, _ mentions: [String]) {
        let error = #expect(throws: StoreError.self) { try StoreLocation(url: url, relativeTo: "/") }
        #expect(error?.code == .invalidURL)
        for mention in mentions { #expect(error?.message.contains(mention) == true, "\(String(describing: error))") }
    }

    /// A fresh database on the test server, reached with `tls`.
    func location(_ tls: PostgresTLS) async throws -> StoreLocation {
        let (location, _) = try await StoreFixtures.freshLocation(.postgres)
        guard case .postgres(let host, let port, let username, let database, let password, _) = location else {
            throw MissingTLSFixture(what: "a PostgreSQL location")
        }
        return .postgres(host: host, port: port, username: username, database: database, password: password, tls: tls)
    }

    /// The CA that signed the test server's certificate.
    func serverCA() throws -> String {
        guard let path = ProcessInfo.processInfo.environment["KAFKASYNC_TEST_POSTGRES_CA"] else {
            throw MissingTLSFixture(what: """
                PostgreSQL TLS: KAFKASYNC_TEST_POSTGRES_CA is not set. Run the tests with scripts/test, or wrap the \
                command: scripts/with-postgres swift test
                """)
        }
        return path
    }

    /// Whether the store's own connections to `location` use TLS, as the server sees them (`pg_stat_ssl`).
    func storeConnectionsUseTLS(_ location: StoreLocation) async throws -> Bool {
        let server = try StoreFixtures.postgresServer()
        guard case .postgres(_, _, _, let database, _, _) = location else { return false }
        let result = try await runProcess("psql", [server.url + "?sslmode=disable", "-tAc", """
            SELECT DISTINCT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
            WHERE a.datname = '\(database)' AND a.pid <> pg_backend_pid()
            """], environment: ["PGPASSWORD": server.password])
        let values = Set(result.stdout.split(separator: "\n").map(String.init))
        try #require(values.count == 1, "one kind of connection to \(database): \(values) \(result.stderr)")
        return values.first == "t"
    }

    @Test(arguments: [
        (PostgresTLS.Mode.verifyFull, true), (.verifyCA, true), (.require, true), (.prefer, true), (.disable, false),
    ])
    func eachSSLModeConnects(_ mode: PostgresTLS.Mode, _ encrypted: Bool) async throws {
        let root = mode == .verifyFull || mode == .verifyCA ? try serverCA() : nil
        let location = try await location(PostgresTLS(mode: mode, rootCertificate: root))
        try await withTransferStore(location, logger: logger) { store in
            _ = try await store.statusCounts(since: nil)
            #expect(try await storeConnectionsUseTLS(location) == encrypted, "sslmode=\(mode.rawValue)")
        }
    }

    @Test func verifyFullWithTheWrongCAFailsWithATLSError() async throws {
        let directory = try TemporaryDirectory(prefix: "kafkasync-wrong-ca")
        defer { directory.remove() }
        let wrongCA = directory.file("wrong-ca.crt")
        let made = try await runProcess("openssl", [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=not the server's CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-keyout", directory.file("wrong-ca.key"), "-out", wrongCA,
        ])
        try #require(made.status == 0, "\(made.stderr)")
        for mode in [PostgresTLS.Mode.verifyFull, .verifyCA, .require] {
            let location = try await location(PostgresTLS(mode: mode, rootCertificate: wrongCA))
            await #expect {
                try await withTransferStore(location, logger: logger) { _ in }
            } throws: { error in
                guard let error = error as? StoreError else { return false }
                return error.code == .tls && error.message.contains("sslrootcert=\(wrongCA)")
            }
        }
    }

    @Test func anUnreadableRootCertificateIsAnInvalidURL() async throws {
        let location = try await location(PostgresTLS(mode: .verifyFull, rootCertificate: "/nonexistent/ca.pem"))
        await #expect {
            try await withTransferStore(location, logger: logger) { _ in }
        } throws: { error in
            (error as? StoreError)?.code == .invalidURL && "\(error)".contains("/nonexistent/ca.pem")
        }
    }
}

/// The TLS server of `scripts/with-postgres` is not there: the tests fail, they never skip.
private struct MissingTLSFixture: Error, CustomStringConvertible {
    let what: String
    var description: String { what }
}
