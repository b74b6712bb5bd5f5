import ArgumentParser
import Foundation
import KafkaClient
import KafkaSyncCore
import Logging
import Synchronization
import TransferStore
import UnixSignals

/// `kafkasync consumer`: the daemon.
struct ConsumerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consumer",
        abstract: "Join the consumer group and transfer the jobs it receives.",
        discussion: """
            Downloads each job into incompletes, verifies it and moves it atomically into completes; failures go \
            to <topic>.retry (transient) or <topic>.dlq (permanent). SIGINT/SIGTERM stop gracefully within \
            [consumer] shutdown_grace; a second signal exits at once. With kafka_url = "embedded" and no \
            `kafkasync broker` running, this process hosts the embedded cluster itself.
            """,
        aliases: ["consume"]
    )

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let config = try options.load()
        if let missing = LftpEngine.missingProgram(for: config) {
            printError("kafkasync: \(missing)")
            throw ExitCode(1)
        }
        let outputs: LineLogHandler.Outputs
        do {
            outputs = try LineLogHandler.Outputs(format: config.consumer.logFormat, file: config.consumer.logFile)
        } catch {
            printError("kafkasync: cannot open the log file \(config.consumer.logFile ?? ""): \(error.localizedDescription)")
            throw ExitCode(1)
        }
        let logger = Logger(label: "kafkasync.consumer") { LineLogHandler(label: $0, outputs: outputs, level: config.debugLevel) }
        for folder in [config.locations.incompletes, config.locations.completes] {
            try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        do {
            try await withKafka(config, logger: logger) { bootstrapServers in
                try await withTransferStore(config.store.location, logger: logger) { store in
                    try await consume(config, bootstrapServers: bootstrapServers, store: store, logger: logger)
                }
            }
        } catch let error as KafkaError {
            logger.critical("the consumer cannot run", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        } catch let error as StoreError {
            logger.critical("the transfer store cannot be opened", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
    }

    /// The bootstrap servers: `kafka_url`, a running `kafkasync broker`, or an embedded cluster hosted here.
    private func withKafka(_ config: KafkaSyncConfig, logger: Logger,
                           _ body: (String) async throws -> Void) async throws {
        guard config.isEmbeddedKafka else {
            try await ensureTopics(config, config.kafkaURL, logger: logger)
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
        try await body(cluster.bootstrapServers)
    }

    private func ensureTopics(_ config: KafkaSyncConfig, _ servers: String, logger: Logger) async throws {
        let specifications = config.topics.all.map { TopicSpecification(name: $0, partitions: 4) }
        do {
            _ = try await KafkaAdmin.ensureTopics(specifications, bootstrapServers: servers,
                                                  properties: config.kafka.properties, logger: logger)
        } catch {
            // Topics may be managed elsewhere (no create permission); subscribing still works when they exist.
            logger.warning("could not make sure the topics exist", metadata: ["error": "\(error)"])
        }
    }

    private func consume(_ config: KafkaSyncConfig, bootstrapServers: String, store: any TransferStore,
                         logger: Logger) async throws {
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(bootstrapServers: bootstrapServers,
                                                      properties: config.kafka.properties,
                                                      topics: [config.topics.done, config.topics.retry, config.topics.deadLetter]),
            logger: logger)
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(
                bootstrapServers: bootstrapServers, groupID: config.kafka.groupID,
                topics: [config.topics.jobs, config.topics.retry], properties: config.consumerProperties,
                bufferCapacity: 2048, revocationDrainTimeout: config.consumer.shutdownGrace),
            logger: logger)
        let lftp = LftpEngine(logger: logger)
        let engines: [TransferEngineKind: any TransferEngine] = [
            .native: NativeEngine(poolSize: config.numThreads, logger: logger), .lftp: lftp,
        ]
        let processor = JobProcessor(config: config, store: store, producer: producer, engines: engines, logger: logger)
        let daemon = ConsumerDaemon(consumer: consumer, processor: processor, topics: config.topics,
                                    concurrency: config.consumer.concurrency, logger: logger)
        let grace = config.consumer.shutdownGrace
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        let stopping = Mutex<Task<Void, Never>?>(nil)
        let signalWatcher = Task {
            for await signal in signals {
                if stopping.withLock({ $0 }) == nil {
                    logger.notice("signal received: finishing running jobs (again to abort)", metadata: ["signal": "\(signal)"])
                    stopping.withLock { $0 = Task { await daemon.stop(grace: grace) } }
                } else {
                    // A second signal aborts at once: unfinished jobs are redelivered later and resume.
                    logger.warning("second signal: aborting", metadata: ["signal": "\(signal)"])
                    lftp.killAll()
                    Foundation.exit(130)
                }
            }
        }
        logger.info("starting", metadata: ["kafka.bootstrap": "\(bootstrapServers)", "kafka.group": "\(config.kafka.groupID)",
                                           "kafka.topics": "\([config.topics.jobs, config.topics.retry])",
                                           "consumer.concurrency": "\(config.consumer.concurrency)",
                                           "completes": "\(config.locations.completes)"])
        await daemon.run {
            printNow("✅ Kafka consumer is now listening for messages...")
        }
        if let stop = stopping.withLock({ $0 }) {
            await stop.value
        } else {
            await daemon.stop(grace: grace)
        }
        signalWatcher.cancel()
        for engine in engines.values { await engine.shutdown() }
        await producer.close()
        logger.notice("consumer stopped")
    }
}
