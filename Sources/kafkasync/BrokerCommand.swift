import ArgumentParser
import Foundation
import KafkaClient
import KafkaSyncCore
import UnixSignals

/// `kafkasync broker`: hosts an embedded Kafka cluster in the foreground.
struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Run an embedded Kafka cluster (in memory) for kafka_url = \"embedded\".",
        discussion: """
            Prints the bootstrap servers as the first line of standard output, writes them to \
            .kafkasync/embedded-bootstrap beside the config file for other kafkasync commands, \
            and runs until SIGINT or SIGTERM. Messages are kept in memory only.
            """
    )

    @OptionGroup var options: ConfigOptions

    @Option(help: "Number of brokers (1-32).")
    var brokers: Int = 3

    @Option(help: "Partitions of each topic.")
    var partitions: Int = 4

    func validate() throws {
        guard (1...32).contains(brokers) else { throw ValidationError("--brokers must be 1...32, not \(brokers)") }
        guard (1...1024).contains(partitions) else {
            throw ValidationError("--partitions must be 1...1024, not \(partitions)")
        }
    }

    func run() async throws {
        // The broker needs only the topic name from the config; without a config file it uses the default.
        let topic: String
        let level: Logger.Level
        if FileManager.default.fileExists(atPath: options.configPath) {
            let config = try options.load()
            topic = config.kafka.topic
            level = config.debugLevel
        } else {
            topic = KafkaSettings.defaultTopic
            level = .info
        }
        let logger = makeLogger("kafkasync.broker", level: level)
        let cluster = try EmbeddedKafkaCluster(brokers: brokers, logger: logger)
        let topics = TopicNames(topic: topic)
        for name in topics.all {
            try cluster.createTopic(name, partitions: partitions, replicationFactor: min(brokers, 3))
        }
        let stateFile = EmbeddedBootstrapFile(configFile: options.configPath)
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        try stateFile.write(bootstrapServers: cluster.bootstrapServers)
        defer { stateFile.remove() }
        printNow(cluster.bootstrapServers)
        logger.info("embedded Kafka cluster running; press Ctrl-C to stop", metadata: [
            "kafka.brokers": "\(brokers)", "kafka.topics": "\(topics.all.joined(separator: ","))",
            "kafka.partitions": "\(partitions)", "kafkasync.state_file": "\(stateFile.path)",
        ])
        for await signal in signals {
            logger.info("stopping embedded Kafka cluster", metadata: ["signal": "\(signal)"])
            break
        }
    }
}

import Logging
