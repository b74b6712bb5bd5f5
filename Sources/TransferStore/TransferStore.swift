import Foundation
import Logging

/// The transfer history and idempotency record of KafkaSync.
///
/// Backed by SQLite (default) or PostgreSQL (a fleet of consumers sharing one database) with the same
/// behaviour. Open one with ``SQLTransferStore/open(_:logger:)`` and keep ``run()`` running while it is used
/// (``withTransferStore(_:logger:_:)`` does both).
public protocol TransferStore: Sendable {
    /// Inserts the record, or replaces the record with the same job id (one row per job id, whoever writes).
    func save(_ record: TransferRecord) async throws(StoreError)
    /// The record of a job id (the idempotency lookup).
    func record(jobID: String) async throws(StoreError) -> TransferRecord?
    /// Every attempt of a job, first to last (its lineage); saving a record writes its attempt too.
    func attempts(jobID: String) async throws(StoreError) -> [TransferAttempt]
    /// Moves a running transfer's byte count forward, and sets its size when the transfer learned it (`nil`
    /// keeps the size known). Callers throttle with ``ProgressThrottle``.
    func updateProgress(jobID: String, bytesTransferred: Int64, bytesExpected: Int64?, at time: Date) async throws(StoreError)
    /// The records matching a query, newest first.
    func records(matching query: TransferQuery) async throws(StoreError) -> [TransferRecord]
    /// How many transfers received since `since` are in each status.
    func statusCounts(since: Date?) async throws(StoreError) -> [TransferStatus: Int]
    /// Completed files and bytes per time bucket since `since`, oldest bucket first.
    func activity(since: Date, bucket: Duration) async throws(StoreError) -> [ActivityBucket]
    /// The most frequent failure classes since `since`.
    func failureReasons(since: Date?, limit: Int) async throws(StoreError) -> [FailureReason]
    /// Inserts the upload records, or replaces those with the same job id and file, in one transaction.
    func saveUploads(_ records: [UploadRecord]) async throws(StoreError)
    /// The upload records of a job, by file.
    func uploads(jobID: String) async throws(StoreError) -> [UploadRecord]
    /// The upload records matching a query, oldest change first.
    func uploads(matching query: UploadQuery) async throws(StoreError) -> [UploadRecord]
    /// Keeps the store's connections alive until the task is cancelled.
    func run() async
    /// Releases connections and files.
    func close() async
}

/// Where the store lives.
public enum StoreLocation: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    /// A SQLite file (created if missing), in WAL mode.
    case sqlite(path: String)
    /// A PostgreSQL database, reached with TLS as `tls` says.
    case postgres(host: String, port: Int, username: String, database: String, password: String?,
                  tls: PostgresTLS = .prefer)

    /// Parses `sqlite://PATH` (relative paths against `directory`) or
    /// `postgres://user@host[:port]/database[?sslmode=MODE&sslrootcert=PATH]` (see ``PostgresTLS``; a relative
    /// `sslrootcert` is against `directory` too). The password never comes from the URL: pass it from
    /// `password_env` / `password_file`.
    /// - Throws: ``StoreError/Code/invalidURL`` naming what is wrong.
    public init(url: String, relativeTo directory: String, password: String? = nil) throws(StoreError) {
        if url.hasPrefix("sqlite://") {
            let path = String(url.dropFirst("sqlite://".count))
            guard !path.isEmpty else { throw StoreError(.invalidURL, "store url \"\(url)\" names no file") }
            let absolute = URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: directory, isDirectory: true))
            self = .sqlite(path: absolute.standardizedFileURL.path)
            return
        }
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://"),
              let components = URLComponents(string: url), let host = components.host, !host.isEmpty,
              let username = components.user, !username.isEmpty else {
            throw StoreError(.invalidURL, """
                store url must be sqlite://PATH or postgres://USER@HOST[:PORT]/DATABASE, \
                not "\(Self.redacted(url))"
                """)
        }
        guard components.password == nil else {
            throw StoreError(.invalidURL, "store url must not contain a password: use password_env or password_file")
        }
        let database = String(components.path.drop { $0 == "/" })
        self = .postgres(host: host, port: components.port ?? 5432, username: username,
                         database: database.isEmpty ? username : database, password: password,
                         tls: try PostgresTLS(parameters: components.queryItems ?? [], relativeTo: directory))
    }

    /// Where, without the password.
    public var description: String {
        switch self {
        case .sqlite(let path): "SQLite \(path)"
        case .postgres(let host, let port, let username, let database, _, let tls):
            "PostgreSQL postgres://\(username)@\(host):\(port)/\(database)\(tls == .prefer ? "" : "?\(tls)")"
        }
    }

    public var debugDescription: String { description }

    /// The URL with any password in it replaced by `<redacted>`.
    public static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = "<redacted>"
        return components.string ?? "<unparseable>"
    }
}

/// How the PostgreSQL connection uses TLS: libpq's `sslmode` and `sslrootcert` URL parameters.
///
/// | `sslmode` | TLS | server certificate |
/// | --- | --- | --- |
/// | `disable` | never | — |
/// | `prefer` (default) | when the server offers it | not checked (as libpq) |
/// | `require` | always | not checked; with `sslrootcert`, signed by that CA (as libpq) |
/// | `verify-ca` | always | signed by `sslrootcert` (else the system's CAs) |
/// | `verify-full` | always | as `verify-ca`, and issued for the host name or IP address of the URL |
public struct PostgresTLS: Sendable, Equatable, CustomStringConvertible {
    /// libpq's `sslmode` values (`allow` is not supported: it never protects anything).
    public enum Mode: String, Sendable, CaseIterable {
        /// No TLS.
        case disable
        /// TLS when the server offers it, without checking its certificate.
        case prefer
        /// TLS always, without checking the certificate (unless ``PostgresTLS/rootCertificate`` is set).
        case require
        /// TLS always; the certificate must be signed by a trusted CA.
        case verifyCA = "verify-ca"
        /// TLS always; the certificate must be signed by a trusted CA and name the server.
        case verifyFull = "verify-full"
    }

    /// `sslmode`.
    public var mode: Mode
    /// `sslrootcert`: a PEM file of the CA certificates to trust instead of the system's.
    public var rootCertificate: String?

    /// The default: libpq's `prefer`.
    public static let prefer = PostgresTLS(mode: .prefer)

    /// Creates TLS settings.
    public init(mode: Mode, rootCertificate: String? = nil) {
        self.mode = mode
        self.rootCertificate = rootCertificate
    }

    /// Reads `sslmode` and `sslrootcert` (relative paths against `directory`); any other parameter is an error.
    /// - Throws: ``StoreError/Code/invalidURL`` naming the parameter, its value and what is expected.
    init(parameters: [URLQueryItem], relativeTo directory: String) throws(StoreError) {
        self = .prefer
        for item in parameters {
            switch item.name {
            case "sslmode":
                let expected = Mode.allCases.map(\.rawValue).joined(separator: ", ")
                guard let value = item.value, let mode = Mode(rawValue: value) else {
                    throw StoreError(.invalidURL, "sslmode \"\(item.value ?? "")\" is not one of \(expected)")
                }
                self.mode = mode
            case "sslrootcert":
                guard let value = item.value, !value.isEmpty else {
                    throw StoreError(.invalidURL, "sslrootcert is empty; expected the path of a PEM file of CA certificates")
                }
                rootCertificate = URL(fileURLWithPath: value, relativeTo: URL(fileURLWithPath: directory, isDirectory: true))
                    .standardizedFileURL.path
            default:
                throw StoreError(.invalidURL, "the store url parameter \"\(item.name)\" is not supported; expected sslmode or sslrootcert")
            }
        }
    }

    /// The URL parameters, e.g. `sslmode=verify-full&sslrootcert=/etc/ssl/db-ca.pem`.
    public var description: String {
        "sslmode=\(mode.rawValue)" + (rootCertificate.map { "&sslrootcert=\($0)" } ?? "")
    }
}

/// Opens the store, applies migrations, keeps it running while `body` uses it, then closes it.
public func withTransferStore<Result: Sendable>(
    _ location: StoreLocation, logger: Logger,
    _ body: @Sendable (any TransferStore) async throws -> Result
) async throws -> Result {
    let store = try SQLTransferStore.open(location, logger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await store.run() }
        defer { group.cancelAll() }
        do {
            try await store.migrate()
            let result = try await body(store)
            await store.close()
            return result
        } catch {
            await store.close()
            throw error
        }
    }
}
