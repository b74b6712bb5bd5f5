@_exported import AsyncSupport
import Foundation
import KafkaClient
import Logging

/// Fixtures for tests against the embedded Kafka cluster (librdkafka's mock cluster over loopback TCP).
public enum KafkaFixtures {
    /// A logger for tests: silent unless `KAFKASYNC_TEST_LOG` names a level (e.g. `debug`).
    public static func logger(_ label: String = "kafkasync.test") -> Logger {
        var logger = Logger(label: label)
        let level = ProcessInfo.processInfo.environment["KAFKASYNC_TEST_LOG"].flatMap(Logger.Level.init(rawValue:))
        logger.logLevel = level ?? .critical
        return logger
    }

    /// A name no other test uses, for topics and groups.
    public static func uniqueName(_ prefix: String) -> String {
        "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
    }

    /// Consumer properties that make group membership settle quickly in tests.
    public static let fastGroupProperties: [String: String] = [
        "session.timeout.ms": "3000",
        "heartbeat.interval.ms": "300",
        "topic.metadata.refresh.interval.ms": "1000",
    ]

    /// Starts a cluster with these topics.
    public static func cluster(brokers: Int = 1, topics: [String: Int]) throws -> EmbeddedKafkaCluster {
        let cluster = try EmbeddedKafkaCluster(brokers: brokers, logger: logger("kafkasync.test.embedded"))
        for (topic, partitions) in topics {
            try cluster.createTopic(topic, partitions: partitions, replicationFactor: min(brokers, 3))
        }
        return cluster
    }

    /// A consumer on `cluster` with test-friendly timeouts.
    public static func consumer(_ cluster: EmbeddedKafkaCluster, group: String, topics: [String],
                                bufferCapacity: Int = 256) throws -> KafkaConsumer {
        try KafkaConsumer(configuration: KafkaConsumerConfiguration(
            bootstrapServers: cluster.bootstrapServers, groupID: group, topics: topics,
            properties: fastGroupProperties, commitInterval: .milliseconds(200), bufferCapacity: bufferCapacity,
            revocationDrainTimeout: .seconds(2)), logger: logger("kafkasync.test.consumer"))
    }

    /// A producer on `cluster`.
    public static func producer(_ cluster: EmbeddedKafkaCluster) throws -> KafkaProducer {
        // A lost message fails within a minute instead of librdkafka's default five (tests have two).
        try KafkaProducer(configuration: KafkaProducerConfiguration(bootstrapServers: cluster.bootstrapServers,
                                                                    messageTimeout: .seconds(60)),
                          logger: logger("kafkasync.test.producer"))
    }
}

extension KafkaConsumer {
    /// Reads `count` messages (marking none done), or fails after `limit`.
    public func take(_ count: Int, within limit: Duration = .seconds(30)) async throws -> [KafkaMessage] {
        guard count > 0 else { return [] }
        return try await withTimeout(limit, "\(count) messages") {
            var received: [KafkaMessage] = []
            for await message in self.messages {
                received.append(message)
                if received.count == count { break }
            }
            return received
        }
    }

    /// Waits until this consumer owns at least `count` partitions.
    public func waitForAssignment(atLeast count: Int, within limit: Duration = .seconds(30)) async throws {
        try await withTimeout(limit, "an assignment of \(count) partitions") {
            while self.assignment.count < count {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
    }
}
