import AsyncHTTPClient
import Foundation
import KafkaClient
import Logging
import ServiceLifecycle
import TransferStore
import UnixSignals

/// The consumer process: one builder that wires a loaded config into running parts, each a swift-service-lifecycle
/// `Service`, and runs them in one `ServiceGroup`. `kafkasync consumer` is this and a log line; in-process tests
/// build the same parts against their own cluster and store.
///
/// Start order (shutdown is the reverse): the producer, the engines, the plug-ins (an HTTP server, an uploader:
/// services that see the pipeline through the ``ConsumerContext``), the Kafka consumer, the
/// pipeline (``ConsumerDaemon``). So on shutdown the pipeline drains first,
/// then the consumer commits and leaves the group, then the plug-ins stop, and the engines and the producer close
/// last. The store and an embedded Kafka cluster are resources the whole group runs inside (``run(_:logger:plugins:onReady:)``).
///
/// Plug-ins see the consumer through a ``ConsumerContext``: the store, the ``ConsumerReadiness`` the pipeline keeps
/// up to date, and the ``PipelineEvents``.
public struct ConsumerApp: Sendable {
    /// The pipeline.
    public let daemon: ConsumerDaemon
    /// The partitions the pipeline holds (shared with the plug-ins that report readiness).
    public let readiness: ConsumerReadiness
    /// Every part, in start order.
    public let services: [ServiceGroupConfiguration.ServiceConfiguration]
    private let grace: Duration
    private let logger: Logger

    /// Builds the parts over a store and the bootstrap servers.
    /// - Parameters:
    ///   - plugins: services that run beside the pipeline, inside the same lifecycle.
    ///   - readiness: the value the pipeline keeps up to date with its partitions (pass the plug-ins' one).
    ///   - onReady: called once, when the consumer has its first partitions.
    ///   - events: where the pipeline tells transfers' starts, progress and outcomes (pass the plug-ins' one).
    /// - Throws: ``KafkaError`` when the producer or the consumer cannot be created.
    public init(config: KafkaSyncConfig, bootstrapServers: String, store: any TransferStore, logger: Logger,
                plugins: [any Service] = [], readiness: ConsumerReadiness = ConsumerReadiness(),
                events: PipelineEvents = PipelineEvents(), onReady: @escaping @Sendable () -> Void = {}) throws(KafkaError) {
        let topics = config.topics
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(bootstrapServers: bootstrapServers, properties: config.kafka.properties,
                                                      topics: [topics.done, topics.retry, topics.deadLetter]),
            logger: logger)
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(
                bootstrapServers: bootstrapServers, groupID: config.kafka.groupID, topics: [topics.jobs, topics.retry],
                properties: config.consumerProperties, bufferCapacity: 2048,
                revocationDrainTimeout: config.consumer.shutdownGrace),
            logger: logger)
        let native = NativeEngine(poolSize: config.numThreads, logger: logger), lftp = LftpEngine(logger: logger)
        let engines: [TransferEngineKind: any TransferEngine] = [
            .native: native, .lftp: lftp, .auto: AutoEngine(native: native, lftp: lftp, logger: logger),
        ]
        // The upload stage and its janitor, when the config has uploads.
        let httpClient = config.uploads.isEmpty ? nil : UploadStage.makeHTTPClient()
        let uploads = httpClient.map { UploadStage(config: config, store: store, httpClient: $0, logger: logger) }
        let processor = JobProcessor(config: config, store: store, engines: engines, events: events, uploads: uploads,
                                     logger: logger)
        daemon = ConsumerDaemon(consumer: consumer, processor: processor,
                                publisher: OutcomePublisher(producer: producer, topics: topics, logger: logger),
                                retryTopic: topics.retry, concurrency: config.consumer.concurrency,
                                grace: config.consumer.shutdownGrace, logger: logger, onReady: onReady,
                                readiness: readiness)
        self.readiness = readiness
        services = [
            .init(service: OnShutdown { await producer.close() }, serviceName: "producer"),
            .init(service: OnShutdown { for engine in engines.values { await engine.shutdown() } }, serviceName: "engines"),
        ] + (httpClient.map { client in
            [.init(service: OnShutdown { try? await client.shutdown() }, serviceName: "object-store-client")]
        } ?? []) + (uploads.map { [.init(service: UploadJanitor(stage: $0, logger: logger), serviceName: "upload-janitor")] } ?? [])
          + plugins.map { .init(service: $0) } + [
            .init(service: consumer, serviceName: "kafka-consumer"),
            // The pipeline ends by itself only when the consumer closed: the rest then shuts down too.
            .init(service: daemon, successTerminationBehavior: .gracefullyShutdownGroup, serviceName: "pipeline"),
        ]
        grace = config.consumer.shutdownGrace
        self.logger = logger
    }

    /// The group that runs every part: graceful shutdown on any of `signals` (running jobs finish within
    /// `shutdown_grace`, then they are abandoned).
    public func serviceGroup(signals: [UnixSignal] = [.sigterm, .sigint]) -> ServiceGroup {
        var configuration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: signals, logger: logger)
        configuration.maximumGracefulShutdownDuration = grace
        return ServiceGroup(configuration: configuration)
    }

    /// Runs every part until the pipeline ends, or until SIGTERM or SIGINT: the first one shuts the group down
    /// gracefully (``serviceGroup(signals:)``), a second one cancels it (running jobs are abandoned at once and
    /// redelivered later). A `ServiceGroup` cannot take the same signal for both (it traps a signal as one or the
    /// other), so the second one is counted here.
    /// - Returns: how the pipeline ended.
    public func run() async throws -> ConsumerDaemon.Ending {
        let group = serviceGroup()
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            tasks.addTask { [logger] in
                var received = 0
                for await signal in signals {
                    received += 1
                    if received == 1 {
                        logger.notice("signal received: finishing running jobs (again to abort)", metadata: ["signal": "\(signal)"])
                    } else {
                        logger.warning("second signal: aborting", metadata: ["signal": "\(signal)"])
                        throw CancellationError()
                    }
                }
            }
            // Whichever ends first ends the other: the group (the watcher is cancelled), or the second signal (the
            // group is cancelled and awaited).
            defer { tasks.cancelAll() }
            do {
                try await tasks.next()
            } catch is CancellationError {}
        }
        return daemon.ending ?? .drained
    }

    /// Builds and runs the consumer of `config`: hosts an embedded Kafka cluster when `kafka_url = "embedded"` and
    /// no `kafkasync broker` runs, opens the store, and runs the parts (``run()``).
    /// - Parameters:
    ///   - plugins: builds the plug-in services once the store is open (``ConsumerContext``).
    ///   - onReady: called once, when the consumer has its first partitions.
    public static func run(_ config: KafkaSyncConfig, logger: Logger,
                           plugins: @escaping @Sendable (ConsumerContext) throws -> [any Service] = { _ in [] },
                           onReady: @escaping @Sendable () -> Void) async throws -> ConsumerDaemon.Ending {
        for folder in [config.locations.incompletes, config.locations.completes] {
            try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        return try await withKafka(config, logger: logger) { bootstrapServers in
            try await withTransferStore(config.store.location, logger: logger) { store in
                let context = ConsumerContext(config: config, bootstrapServers: bootstrapServers, store: store,
                                              logger: logger)
                let app = try ConsumerApp(config: config, bootstrapServers: bootstrapServers, store: store, logger: logger,
                                          plugins: try plugins(context), readiness: context.readiness,
                                          events: context.events, onReady: onReady)
                logger.info("starting", metadata: [
                    "kafka.bootstrap": "\(bootstrapServers)", "kafka.group": "\(config.kafka.groupID)",
                    "kafka.topics": "\([config.topics.jobs, config.topics.retry])",
                    "consumer.concurrency": "\(config.consumer.concurrency)", "completes": "\(config.locations.completes)",
                ])
                let ending = try await app.run()
                logger.notice("consumer stopped")
                return ending
            }
        }
    }

    /// The bootstrap servers: `kafka_url`, a running `kafkasync broker`, or an embedded cluster hosted here.
    private static func withKafka<T: Sendable>(_ config: KafkaSyncConfig, logger: Logger,
                                               _ body: @Sendable (String) async throws -> T) async throws -> T {
        guard config.isEmbeddedKafka else {
            await ensureTopics(config, config.kafkaURL, logger: logger)
            return try await body(config.kafkaURL)
        }
        if let servers = try? config.bootstrapServers() { return try await body(servers) }
        let cluster = try EmbeddedKafkaCluster(brokers: 1, logger: logger)
        for topic in config.topics.all { try cluster.createTopic(topic, partitions: 4) }
        let stateFile = EmbeddedBootstrapFile(configFile: config.configFile)
        try stateFile.write(bootstrapServers: cluster.bootstrapServers)
        defer { stateFile.remove() }
        logger.notice("hosting an embedded Kafka cluster in this process (in memory; it ends with the consumer)",
                      metadata: ["kafka.bootstrap": "\(cluster.bootstrapServers)", "kafkasync.state_file": "\(stateFile.path)"])
        let result = try await body(cluster.bootstrapServers)
        withExtendedLifetime(cluster) {}
        return result
    }

    private static func ensureTopics(_ config: KafkaSyncConfig, _ servers: String, logger: Logger) async {
        let specifications = config.topics.all.map { TopicSpecification(name: $0, partitions: 4) }
        do {
            _ = try await KafkaAdmin.ensureTopics(specifications, bootstrapServers: servers,
                                                  properties: config.kafka.properties, logger: logger)
        } catch {
            // Topics may be managed elsewhere (no create permission); subscribing still works when they exist.
            logger.warning("could not make sure the topics exist", metadata: ["error": "\(error)"])
        }
    }
}

/// What a plug-in service of the consumer sees of it (``ConsumerApp/run(_:logger:plugins:onReady:)``).
public struct ConsumerContext: Sendable {
    /// The loaded configuration.
    public let config: KafkaSyncConfig
    /// Where Kafka is (an embedded cluster's address when hosted here).
    public let bootstrapServers: String
    /// The open store; it stays open until every service has stopped.
    public let store: any TransferStore
    /// The partitions the pipeline holds.
    public let readiness: ConsumerReadiness
    /// The pipeline's events (observe them before the group runs).
    public let events: PipelineEvents
    /// The consumer's logger.
    public let logger: Logger

    /// A context (in-process tests build one around their own store).
    public init(config: KafkaSyncConfig, bootstrapServers: String, store: any TransferStore,
                readiness: ConsumerReadiness = ConsumerReadiness(), events: PipelineEvents = PipelineEvents(),
                logger: Logger) {
        self.config = config
        self.bootstrapServers = bootstrapServers
        self.store = store
        self.readiness = readiness
        self.events = events
        self.logger = logger
    }
}

/// A service that does nothing until shutdown (graceful or not), then runs `action`: closing a part that has no
/// run loop of its own.
struct OnShutdown: Service {
    let action: @Sendable () async -> Void

    init(_ action: @escaping @Sendable () async -> Void) {
        self.action = action
    }

    func run() async {
        try? await gracefulShutdown()
        await action()
    }
}
