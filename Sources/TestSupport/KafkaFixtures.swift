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

    /// Runs `body` with the cluster's broker ports reserved (`net.ipv4.ip_local_reserved_ports`), for tests that take
    /// a broker down and bring it back: the mock cluster then listens again on the same port, and aborts the whole
    /// test process when that fails. Without the reservation the kernel may hand the port to any socket bound to
    /// port 0, or to the local end of a connection meanwhile (on loopback even a client's reconnect to the down
    /// broker itself: a self-connect). Reserved ports are skipped by automatic assignment only; the original list is
    /// restored afterwards. Needs root (CI runs as root); elsewhere `body` runs without the reservation.
    public static func withBrokerPortsReserved<T>(_ cluster: EmbeddedKafkaCluster,
                                                  _ body: () async throws -> T) async throws -> T {
        let file = "/proc/sys/net/ipv4/ip_local_reserved_ports"
        let ports = cluster.bootstrapServers.split(separator: ",").compactMap { $0.split(separator: ":").last }
        guard let original = try? String(contentsOfFile: file, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines) else { return try await body() }
        let reserved = ([original].filter { !$0.isEmpty } + ports.map(String.init)).joined(separator: ",")
        guard (try? reserved.write(toFile: file, atomically: false, encoding: .utf8)) != nil else {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                throw FixtureUnavailable(what: "cannot reserve the broker ports in \(file) (CI runs as root)")
            }
            return try await body()
        }
        defer { try? (original.isEmpty ? "\n" : original).write(toFile: file, atomically: false, encoding: .utf8) }
        return try await body()
    }

    /// Waits until broker `brokerID`'s port (its place in `bootstrapServers`) can be bound again as the mock cluster
    /// binds it (`SO_REUSEADDR`), so that bringing the broker up cannot hit the mock's assertion that its listener
    /// was created (which aborts the test process); a port still taken after `limit` fails the test instead, naming
    /// the sockets that hold it.
    public static func waitUntilBindable(_ cluster: EmbeddedKafkaCluster, brokerID: Int,
                                         within limit: Duration = .seconds(30)) async throws {
        let ports = cluster.bootstrapServers.split(separator: ",").compactMap { $0.split(separator: ":").last.flatMap { UInt16($0) } }
        guard brokerID >= 1 && brokerID <= ports.count else { return }
        let port = ports[brokerID - 1]
        let deadline = ContinuousClock.now + limit
        while !canBind(port) {
            guard ContinuousClock.now < deadline else {
                let holders = (try? await runProcess("ss", ["-tanp"]))?.stdout.split(separator: "\n")
                    .filter { $0.contains(":\(port) ") }.joined(separator: "\n") ?? ""
                throw FixtureUnavailable(what: "port \(port) of broker \(brokerID) is still taken:\n\(holders)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    private static func canBind(_ port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = port.bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
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
