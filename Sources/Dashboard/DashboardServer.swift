import Foundation
import Hummingbird
import HummingbirdCore
import KafkaClient
import KafkaSyncCore
import Logging
import Metrics
import NIOCore
import ServiceLifecycle
import TransferStore

/// The consumer's HTTP server, as a swift-service-lifecycle `Service`: health (`GET /healthz`, `GET /readyz`),
/// Prometheus metrics (`GET /metrics`), the page (`GET /`) and the JSON API of docs/openapi.yaml over the store,
/// the pipeline's ``ConsumerReadiness`` and ``PipelineEvents`` (live events) and Kafka (queue, dead letters,
/// publishing).
///
/// It runs as a plug-in of the consumer's service group (``ConsumerApp``): it starts before the Kafka consumer and
/// stops after the pipeline drained, so `/readyz` answers 503 while the consumer has no partitions. Limits: request
/// headers and bodies are bounded (``Configuration``), idle connections are closed, connections are capped, and a
/// store that does not answer in time is a 503, never a request that hangs.
public struct DashboardServer: Service {
    /// Where and how the server listens.
    public struct Configuration: Sendable {
        /// The address (`[http] listen`).
        public var address: ListenAddress
        /// The bearer token every `/api` route requires (`[http] token_env` / `token_file`); `nil`: reads are open
        /// and writes need ``writeToken``.
        public var token: Secret?
        /// Without ``token``, the token that publishing and replaying need: random, made for this process, given
        /// to the user in the dashboard URL's fragment (never sent to the server by a browser, never logged).
        public var writeToken = Secret(randomToken())
        /// The largest request body accepted (default 64 KiB); larger is 413.
        public var maxBodySize = DashboardRequestContext.maxBodySize
        /// The largest request head (default 16 KiB; the HTTP decoder refuses larger).
        public var maxHeaderSize = 16 << 10
        /// How long a connection may stay idle before it is closed (default 30 s).
        public var idleTimeout: Duration = .seconds(30)
        /// How long a route waits for the store before answering 503 (default 5 s).
        public var storeTimeout: Duration = .seconds(5)
        /// The most connections served at once (default 64); more wait in the listen backlog.
        public var maxConnections = 64

        /// A configuration with the default limits.
        public init(address: ListenAddress, token: Secret? = nil) {
            self.address = address
            self.token = token
        }
    }

    private let application: Application<RouterResponder<DashboardRequestContext>>
    private let address: ListenAddress
    private let kafka: DashboardKafka?
    private let live: LiveEvents

    /// A server over `store` and `readiness`.
    /// - Parameters:
    ///   - readiness: the pipeline's partitions (`nil` without a pipeline: then ready means the store answers).
    ///   - events: the pipeline's events, for the live stream (`nil` without a pipeline: `kafkasync dashboard`).
    ///   - kafka: for the queue, the dead letters and publishing (`nil`: those routes answer 503).
    ///   - completes: the `completes` folder, to show where transfers landed.
    ///   - metrics: renders `/metrics`.
    ///   - onListening: called once the server listens, with its URL (the real port when 0 was asked) and the
    ///     page's URL: the same with a fragment that gives the page the write token when none is configured (print
    ///     it for the user; never log it).
    public init(configuration: Configuration, store: any TransferStore, readiness: ConsumerReadiness?,
                events: PipelineEvents? = nil, kafka: DashboardKafka? = nil, completes: String? = nil,
                metrics: @escaping @Sendable () -> String = { "" }, logger: Logger,
                onListening: @escaping @Sendable (_ url: String, _ page: String) async -> Void = { _, _ in }) {
        let live = LiveEvents(events: events)
        self.live = live
        self.kafka = kafka
        let routes = DashboardRoutes(store: store, readiness: readiness, live: live, kafka: kafka, completes: completes,
                                     storeTimeout: configuration.storeTimeout, logger: logger)
        let address = configuration.address
        self.address = address
        let fragment = configuration.token == nil ? "#token=\(configuration.writeToken.revealed)" : ""
        let idle = TimeAmount(configuration.idleTimeout)
        application = Application(
            router: routes.router(configuration, metrics: metrics),
            server: .http1(configuration: .init(
                idleTimeout: idle,
                httpDecoderConfiguration: .init(maxHeaderFieldSize: configuration.maxHeaderSize,
                                                maxHeaderListSize: configuration.maxHeaderSize, maxHeaderFieldCount: 100))),
            configuration: ApplicationConfiguration(
                address: .hostname(address.host, port: address.port), serverName: nil,
                availableConnectionsDelegate: MaximumAvailableConnections(configuration.maxConnections, logger: logger)),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? address.port
                var bound = address
                bound.port = port
                await onListening("http://\(bound)/", "http://\(bound)/\(fragment)")
            },
            logger: logger)
    }

    /// A server for `[http]` of a consumer (``ConsumerContext``); `nil` when `listen = ""`.
    /// - Throws: ``KafkaError`` when its producer cannot be created.
    public init?(_ context: ConsumerContext, metrics: @escaping @Sendable () -> String = { "" },
                 onListening: @escaping @Sendable (_ url: String, _ page: String) async -> Void = { _, _ in })
        throws(KafkaError)
    {
        guard let address = context.config.http.listen else { return nil }
        self.init(configuration: Configuration(address: address, token: context.config.http.token),
                  store: context.store, readiness: context.readiness, events: context.events,
                  kafka: try DashboardKafka(config: context.config, bootstrapServers: context.bootstrapServers,
                                            logger: context.logger),
                  completes: context.config.locations.completes, metrics: metrics, logger: context.logger,
                  onListening: onListening)
    }

    /// Serves until graceful shutdown (open requests and event streams end), or until cancelled; then closes its
    /// Kafka producer.
    /// - Throws: ``DashboardServerError`` when the server cannot listen (the address is in use) or fails.
    public func run() async throws {
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await application.run() }
                if let kafka { group.addTask { await Self.measureQueue(kafka) } }
                // The server ends on graceful shutdown; the queue's gauges end with it.
                try await group.next()
                group.cancelAll()
            }
            await kafka?.close()
        } catch {
            await kafka?.close()
            throw DashboardServerError(address: address, reason: "\(error)")
        }
    }

    /// How often the queue's gauges are measured.
    static let queueInterval: Duration = .seconds(15)

    /// Sets `kafkasync_consumer_lag_messages{topic}` (jobs and retry topics: the group's committed offsets to the
    /// ends) and `kafkasync_jobs_pending{topic}` (the jobs topic's queue depth) every ``queueInterval``.
    private static func measureQueue(_ kafka: DashboardKafka) async {
        while !Task.isCancelled {
            for topic in [kafka.topics.jobs, kafka.topics.retry] {
                guard let partitions = try? await kafka.positions(of: topic) else { continue }
                let lag = partitions.reduce(0) { $0 + $1.pending }
                Gauge(label: "kafkasync_consumer_lag_messages", dimensions: [("topic", topic)]).record(lag)
                if topic == kafka.topics.jobs {
                    Gauge(label: "kafkasync_jobs_pending", dimensions: [("topic", topic)]).record(lag)
                }
            }
            try? await Task.sleep(for: queueInterval)
        }
    }
}

/// 32 random bytes as URL-safe base64: a token no one can guess.
func randomToken() -> String {
    var generator = SystemRandomNumberGenerator()
    let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
        .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
}

/// The HTTP server could not listen, or stopped with an error.
public struct DashboardServerError: Error, Sendable, CustomStringConvertible {
    /// The address it was to listen on.
    public let address: ListenAddress
    /// What went wrong (NIO's error text: "Address already in use", …).
    public let reason: String

    public var description: String { "the HTTP server on \(address) (http.listen) failed: \(reason)" }
}

/// The request context of the dashboard's routes: Hummingbird's basic context with the body limit of the API.
public struct DashboardRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    /// The largest body a route decodes (64 KiB), and the default of ``DashboardServer/Configuration/maxBodySize``.
    public static let maxBodySize = 64 << 10

    /// Bodies decoded by routes are at most ``maxBodySize`` (``RequestLimitsMiddleware`` refuses larger declared
    /// ones before a route runs).
    public var maxUploadSize: Int { Self.maxBodySize }
}
