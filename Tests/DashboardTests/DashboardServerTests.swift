import Dashboard
import Foundation
import KafkaClient
import Logging
import ServiceLifecycle
import TestSupport
import Synchronization
import Testing
import TransferStore
@testable import KafkaSyncCore

/// The HTTP server on a free loopback port over a real SQLite store; readiness is set as the pipeline would.
@Suite struct DashboardServerTests {
    /// Runs a server over a fresh store while `body` runs, then shuts it down gracefully.
    private func withServer(token: Secret? = nil, capture: CapturedLog? = nil,
                            _ body: @escaping @Sendable (_ url: String, any TransferStore, ConsumerReadiness) async throws -> Void)
        async throws
    {
        let directory = try TemporaryDirectory(prefix: "kafkasync-dashboard")
        defer { directory.remove() }
        var logger = capture.map { capture in Logger(label: "kafkasync.dashboard-test") { _ in capture.handler } }
            ?? Logger(label: "kafkasync.dashboard-test")
        logger.logLevel = capture == nil ? .info : .trace
        let readiness = ConsumerReadiness()
        try await withTransferStore(.sqlite(path: directory.file("store.db")), logger: logger) { [logger] store in
            let (urls, listening) = AsyncStream.makeStream(of: String.self)
            let server = DashboardServer(
                configuration: .init(address: ListenAddress(host: "127.0.0.1", port: 0), token: token),
                store: store, readiness: readiness, logger: logger) { url, _ in listening.yield(url) }
            try await withRunningGroup(ServiceGroup(services: [server], logger: logger)) {
                let url = try await withTimeout(.seconds(10), "the server to listen") {
                    for await url in urls { return url }
                    throw CancellationError()
                }
                try await body(url, store, readiness)
            }
        }
    }

    private static let received = Date(timeIntervalSince1970: 1_790_000_000)

    private static func record(_ id: String, _ status: TransferStatus, bytes: Int64 = 0, total: Int64? = nil) -> TransferRecord {
        TransferRecord(jobID: id, name: "\(id).bin", remote: "remoteDetails", remotePath: "/data/\(id).bin",
                       status: status, attempts: 1, bytesExpected: total, bytesTransferred: bytes,
                       workerHost: "worker-1", receivedAt: received, startedAt: received)
    }

    @Test func healthIsAliveAndReadinessFollowsThePartitions() async throws {
        try await withServer { url, _, readiness in
            let health = try await httpRequest(url + "healthz")
            #expect(health.status == 200)
            #expect(try health.json(HealthResponse.self) == HealthResponse(status: "alive"))

            let notReady = try await httpRequest(url + "readyz")
            #expect(notReady.status == 503)
            #expect(try notReady.json(ReadinessResponse.self) == ReadinessResponse(ready: false, partitions: 0, store: "ok"))

            let partitions = [TopicPartition(topic: "jobs", partition: 0), TopicPartition(topic: "jobs", partition: 1)]
            readiness.assign(partitions)
            let ready = try await httpRequest(url + "readyz")
            #expect(ready.status == 200)
            #expect(try ready.json(ReadinessResponse.self) == ReadinessResponse(ready: true, partitions: 2, store: "ok"))

            readiness.revoke(partitions)
            #expect(try await httpRequest(url + "readyz").status == 503)
        }
    }

    @Test func aStoreThatDoesNotAnswerIsNotReady() async throws {
        try await withServer { url, store, readiness in
            readiness.assign([TopicPartition(topic: "jobs", partition: 0)])
            #expect(try await httpRequest(url + "readyz").status == 200)
            await store.close()
            let closed = try await httpRequest(url + "readyz")
            #expect(closed.status == 503)
            #expect(try closed.json(ReadinessResponse.self) == ReadinessResponse(ready: false, partitions: 1, store: "unavailable"))
            let status = try await httpRequest(url + "api/status")
            #expect(status.status == 503)
            #expect(status.text.contains("the transfer store is not available"), "\(status.text)")
        }
    }

    @Test func statusCountsEveryStatusAndListsTheRunningTransfers() async throws {
        try await withServer { url, store, _ in
            for record in [Self.record("a", .completed, bytes: 10, total: 10), Self.record("b", .completed),
                           Self.record("c", .deadLettered), Self.record("d", .running, bytes: 300, total: 1000),
                           Self.record("e", .running, bytes: 7)] {
                try await store.save(record)
            }
            let response = try await httpRequest(url + "api/status")
            #expect(response.status == 200)
            #expect(response.headers["content-type"]?.hasPrefix("application/json") == true)
            let status = try response.json(StatusResponse.self)
            #expect(status.counts == ["queued": 0, "running": 2, "retrying": 0, "completed": 2, "failed": 0,
                                      "dead-lettered": 1, "skipped-duplicate": 0])
            let running = Dictionary(uniqueKeysWithValues: status.running.map { ($0.jobID, $0) })
            #expect(Set(running.keys) == ["d", "e"])
            #expect(running["d"].map { ($0.bytes, $0.total, $0.workerHost, $0.name) } ?? (0, nil, nil, "")
                    == (300, 1000, "worker-1", "d.bin"))
            #expect(running["e"]?.total == nil)
            // The wire names are snake case, like the done events.
            #expect(response.text.contains("\"job_id\":\"d\"") && response.text.contains("\"worker_host\":\"worker-1\""),
                    "\(response.text)")
        }
    }

    @Test func withATokenTheAPIRequiresItAndHealthDoesNot() async throws {
        let token = "tok-\(UUID().uuidString)"
        try await withServer(token: Secret(token)) { url, _, _ in
            let missing = try await httpRequest(url + "api/status")
            #expect(missing.status == 401)
            #expect(missing.headers["www-authenticate"] == "Bearer")
            let wrong = try await httpRequest(url + "api/status", headers: ["Authorization": "Bearer \(token)x"])
            #expect(wrong.status == 401)
            let notBearer = try await httpRequest(url + "api/status", headers: ["Authorization": "Basic \(token)"])
            #expect(notBearer.status == 401)
            let right = try await httpRequest(url + "api/status", headers: ["Authorization": "Bearer \(token)"])
            #expect(right.status == 200)
            for response in [missing, wrong, notBearer, right] { #expect(!response.text.contains(token)) }
            #expect(try await httpRequest(url + "healthz").status == 200)
        }
    }

    @Test func theTokenNeverReachesTheLogEvenAtTraceLevel() async throws {
        let token = "tok-\(UUID().uuidString)"
        let log = CapturedLog()
        try await withServer(token: Secret(token), capture: log) { url, _, _ in
            let query = try await httpRequest(url + "api/status?token=" + token)
            #expect(query.status == 200, "the query form, for EventSource")
            let header = try await httpRequest(url + "api/status", headers: ["Authorization": "Bearer " + token])
            #expect(header.status == 200)
            let wrong = try await httpRequest(url + "api/status?token=wrong")
            #expect(wrong.status == 401)
        }
        #expect(log.text.contains("/api/status"), "requests are logged at debug level: \(log.text.prefix(500))")
        #expect(!log.text.contains(token))
    }

    @Test func aLargeRequestBodyIsRefused() async throws {
        try await withServer { url, _, _ in
            let large = try await httpRequest(url + "healthz", method: "POST", body: Data(count: 100 << 10))
            #expect(large.status == 413)
            let unknown = try await httpRequest(url + "nothing-here")
            #expect(unknown.status == 404)
        }
    }

    @Test func aTakenPortIsAnErrorNamingTheAddress() async throws {
        try await withServer { url, store, readiness in
            let port = try #require(URLComponents(string: url)?.port)
            let second = DashboardServer(configuration: .init(address: ListenAddress(host: "127.0.0.1", port: port)),
                                         store: store, readiness: readiness, logger: Logger(label: "second"))
            let error = await #expect(throws: DashboardServerError.self) { try await second.run() }
            #expect(error?.address == ListenAddress(host: "127.0.0.1", port: port))
            #expect(error?.description.contains("127.0.0.1:\(port) (http.listen)") == true, "\(String(describing: error))")
        }
    }
}

/// Log lines kept in memory (every level), to check what reaches a log.
final class CapturedLog: Sendable {
    private let lines = Mutex<[String]>([])
    var text: String { lines.withLock { $0.joined(separator: "\n") } }
    var handler: Handler { Handler(capture: self) }

    struct Handler: LogHandler {
        let capture: CapturedLog
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let all = metadata.merging(event.metadata ?? [:]) { $1 }
            capture.lines.withLock { $0.append("\(event.level) \(event.message) \(all)") }
        }
    }
}
