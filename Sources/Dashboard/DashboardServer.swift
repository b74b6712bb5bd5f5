import Foundation
import Hummingbird
import HummingbirdCore
import KafkaSyncCore
import Logging
import NIOCore
import ServiceLifecycle
import TransferStore

/// The consumer's HTTP server, as a swift-service-lifecycle `Service`: health (`GET /healthz`, `GET /readyz`) and
/// the JSON API (`GET /api/status`) over the store and the pipeline's ``ConsumerReadiness``.
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
        /// The bearer token every `/api` route requires (`[http] token_env` / `token_file`); `nil`: none.
        public var token: Secret?
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

    /// A server over `store` and `readiness`.
    /// - Parameter onListening: called once the server listens, with its URL (the real port when 0 was asked).
    public init(configuration: Configuration, store: any TransferStore, readiness: ConsumerReadiness, logger: Logger,
                onListening: @escaping @Sendable (String) async -> Void = { _ in }) {
        let routes = DashboardRoutes(store: store, readiness: readiness, storeTimeout: configuration.storeTimeout,
                                     logger: logger)
        let address = configuration.address
        self.address = address
        let idle = TimeAmount(configuration.idleTimeout)
        application = Application(
            router: routes.router(configuration),
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
                await onListening("http://\(bound)/")
            },
            logger: logger)
    }

    /// A server for `[http]` of a consumer (``ConsumerContext``); `nil` when `listen = ""`.
    public init?(_ context: ConsumerContext, onListening: @escaping @Sendable (String) async -> Void = { _ in }) {
        guard let address = context.config.http.listen else { return nil }
        self.init(configuration: Configuration(address: address, token: context.config.http.token),
                  store: context.store, readiness: context.readiness, logger: context.logger, onListening: onListening)
    }

    /// Serves until graceful shutdown (open requests finish), or until cancelled.
    /// - Throws: ``DashboardServerError`` when the server cannot listen (the address is in use) or fails.
    public func run() async throws {
        do {
            try await application.run()
        } catch {
            throw DashboardServerError(address: address, reason: "\(error)")
        }
    }
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
