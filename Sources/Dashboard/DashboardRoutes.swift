import Foundation
import Hummingbird
import KafkaSyncCore
import Logging
import TransferStore

/// The routes, over the store and the pipeline's readiness. Each answer is a `Codable` response type
/// (``HealthResponse``, ``ReadinessResponse``, ``StatusResponse``).
struct DashboardRoutes: Sendable {
    /// The most running transfers `/api/status` lists.
    static let runningLimit = 200

    let store: any TransferStore
    let readiness: ConsumerReadiness
    let storeTimeout: Duration
    let logger: Logger

    /// The router: health at the root, the API under `/api` (behind the token when one is set).
    func router(_ configuration: DashboardServer.Configuration) -> Router<DashboardRequestContext> {
        let router = Router(context: DashboardRequestContext.self)
        // Headers are not logged: the Authorization header carries the token.
        router.add(middleware: LogRequestsMiddleware(.debug, includeHeaders: .none))
        router.add(middleware: RequestLimitsMiddleware(maxBodySize: configuration.maxBodySize))
        router.get("healthz") { _, _ in HealthResponse(status: "alive") }
        router.get("readyz") { _, _ in await ready() }
        let api = router.group("api")
        if let token = configuration.token { api.add(middleware: BearerTokenMiddleware(token: token)) }
        api.get("status") { _, _ in try await status() }
        return router
    }

    /// 200 when the consumer holds partitions and the store answers, else 503; the body says which part is not.
    func ready() async -> EditedResponse<ReadinessResponse> {
        let partitions = readiness.partitions.count
        let storeAnswers = (try? await fromStore { try await store.statusCounts(since: Date()) }) != nil
        let body = ReadinessResponse(ready: partitions > 0 && storeAnswers, partitions: partitions,
                                     store: storeAnswers ? "ok" : "unavailable")
        return EditedResponse(status: body.ready ? .ok : .serviceUnavailable, response: body)
    }

    /// The counts per status over the whole history, and the running transfers (newest first).
    func status() async throws -> StatusResponse {
        let (counts, running) = try await fromStore {
            (try await store.statusCounts(since: nil),
             try await store.records(matching: TransferQuery(statuses: [.running], limit: Self.runningLimit)))
        }
        return StatusResponse(
            counts: Dictionary(uniqueKeysWithValues: TransferStatus.allCases.map { ($0.rawValue, counts[$0] ?? 0) }),
            running: running.map(RunningTransfer.init))
    }

    /// Runs a store read within ``storeTimeout``.
    /// - Throws: `HTTPError` 503 when the store fails or does not answer in time; the store's error is logged,
    ///   never put in the response.
    private func fromStore<T: Sendable>(_ read: @escaping @Sendable () async throws -> T) async throws -> T {
        do {
            return try await withThrowingTaskGroup(of: T?.self) { group in
                group.addTask { try await read() }
                group.addTask { [storeTimeout] in
                    try await Task.sleep(for: storeTimeout)
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let value = first else { throw StoreTimeout() }
                return value
            }
        } catch {
            logger.warning("the store did not answer the HTTP API", metadata: ["error": "\(error)"])
            throw HTTPError(.serviceUnavailable, message: "the transfer store is not available")
        }
    }

    private struct StoreTimeout: Error, CustomStringConvertible {
        var description: String { "timed out" }
    }
}

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
}

/// A transfer in progress, as `/api/status` lists it.
public struct RunningTransfer: Codable, Sendable, Equatable {
    /// The job id.
    public var jobID: String
    /// The remote file or folder name.
    public var name: String
    /// The remote's name.
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

    /// Snake case spelled out, as the done events.
    enum CodingKeys: String, CodingKey {
        case name, remote, bytes, total, attempt
        case jobID = "job_id", workerHost = "worker_host", startedAt = "started_at"
    }

    init(_ record: TransferRecord) {
        jobID = record.jobID
        name = record.name
        remote = record.remote
        bytes = record.bytesTransferred
        total = record.bytesExpected
        workerHost = record.workerHost
        attempt = record.attempts
        startedAt = record.startedAt
    }
}
