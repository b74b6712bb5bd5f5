import Foundation
import KafkaClient
import KafkaSyncCore
import TestSupport
import Testing

/// An end-to-end setup: a real sshd serving `data/`, an embedded Kafka cluster in the test process (so a
/// consumer can be killed without losing the broker), a config whose SQLite store and folders live in a
/// temporary directory, and `kafkasync consumer` processes started from the built binary.
final class ConsumerFixture: Sendable {
    let server: SSHServerFixture
    let directory: TemporaryDirectory
    let cluster: EmbeddedKafkaCluster
    let topics: TopicNames
    let configPath: String
    let producer: KafkaProducer

    /// - Parameter httpConfig: the `[http]` table's body: by default a free loopback port, so that consumers of
    ///   tests running at once never compete for one.
    init(server: SSHServerFixture, partitions: Int = 4, consumerConfig: String = "", remoteConfig: String? = nil,
         httpConfig: String = "listen = \"127.0.0.1:0\"", extraConfig: String = "",
         kafkaProperties: [String: String] = [:]) throws {
        self.server = server
        directory = try TemporaryDirectory(prefix: "kafkasync-e2e")
        topics = TopicNames(topic: KafkaFixtures.uniqueName("files"))
        cluster = try KafkaFixtures.cluster(topics: Dictionary(uniqueKeysWithValues: topics.all.map { ($0, partitions) }))
        let properties = KafkaFixtures.fastGroupProperties.merging(kafkaProperties) { $1 }.map { "\"\($0.key)\" = \"\($0.value)\"" }.joined(separator: "\n")
        configPath = try directory.write("config.toml", """
            kafka_url = "embedded"
            num_threads = 4
            debug_level = "info"

            [kafka]
            topic = "\(topics.jobs)"
            group_id = "\(KafkaFixtures.uniqueName("group"))"

            [kafka.properties]
            \(properties)

            [remoteDetails]
            \(remoteConfig ?? """
                host = "127.0.0.1:\(server.port)"
                username = "\(server.username)"
                private_key = "\(server.clientKey)"
                known_hosts = "\(server.knownHosts)"
                """)

            [consumer]
            backoff_initial = "300ms"
            backoff_max = "2s"
            shutdown_grace = "20s"
            \(consumerConfig)

            [http]
            \(httpConfig)

            \(extraConfig)
            """)
        try EmbeddedBootstrapFile(configFile: configPath).write(bootstrapServers: cluster.bootstrapServers)
        producer = try KafkaFixtures.producer(cluster)
    }

    var completes: String { directory.file("completes") }
    var incompletes: String { directory.file("incompletes") }

    /// Starts `kafkasync consumer` and waits for its "listening" line.
    func startConsumer(environment: [String: String] = [:]) async throws -> BackgroundProcess {
        try await launchConsumer(environment: environment).process
    }

    /// Starts `kafkasync consumer` and waits for its "listening" line; also returns the dashboard URL it printed
    /// before (`dashboard: http://…/`), if any.
    func launchConsumer(environment: [String: String] = [:]) async throws -> (process: BackgroundProcess, dashboard: String?) {
        let process = try BackgroundProcess(try kafkasyncExecutable(), ["consumer", "--config", configPath],
                                            environment: environment)
        let dashboardPrefix = "dashboard: "
        var dashboard: String?
        // The HTTP server starts before the Kafka consumer: its line comes first.
        while true {
            let line = try await withTimeout(.seconds(30), "the consumer to listen") { await process.nextLine() }
            if let line, line.hasPrefix(dashboardPrefix), dashboard == nil {
                dashboard = String(line.dropFirst(dashboardPrefix.count))
                continue
            }
            try #require(line?.contains("Kafka consumer is now listening for messages") == true,
                         "the consumer did not start: \(process.stderr)")
            return (process, dashboard)
        }
    }

    /// Runs `body` with a started consumer and kills it afterwards if the body left it running; on a failure the
    /// consumer's log goes into the test's issues.
    func withConsumer(environment: [String: String] = [:], _ body: (BackgroundProcess) async throws -> Void) async throws {
        try await withConsumer(environment: environment) { consumer, _ in try await body(consumer) }
    }

    /// ``withConsumer(environment:_:)`` with the dashboard URL the consumer printed, if any.
    func withConsumer(environment: [String: String] = [:],
                      _ body: (BackgroundProcess, _ dashboard: String?) async throws -> Void) async throws {
        let (consumer, dashboard) = try await launchConsumer(environment: environment)
        do {
            try await body(consumer, dashboard)
            if consumer.isRunning { _ = await consumer.stop(signal: SIGKILL) }
        } catch {
            if consumer.isRunning { _ = await consumer.stop(signal: SIGKILL) }
            // librdkafka's configuration warnings repeat for every client made: left out.
            let lines = consumer.stderr.split(separator: "\n").filter { !$0.contains("facility=CONFWARN") }
            Issue.record("consumer log:\n\(lines.joined(separator: "\n").suffix(6000))")
            throw error
        }
    }

    /// Publishes raw job messages (the original format or anything else) to the jobs topic, each with its own
    /// key (the original keyed by name), so they spread over the partitions.
    func publish(_ values: [String]) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for value in values {
                group.addTask {
                    _ = try await self.producer.send(KafkaOutgoingMessage(topic: self.topics.jobs,
                                                                          key: Array(UUID().uuidString.utf8),
                                                                          value: Array(value.utf8)))
                }
            }
            try await group.waitForAll()
        }
    }

    /// A job in the original producer's format for a file under the server's `data/`.
    func job(_ name: String, hash: String? = nil, extra: String = "") -> String {
        let location = server.dataPath("").replacingOccurrences(of: "\\", with: "\\\\")
        return "{\"info_hash\": \"\(hash ?? KafkaFixtures.uniqueName("h"))\", \"name\": \"\(name)\", \"location\": \"\(location)\"\(extra)}"
    }

    /// Reads `count` records of a topic from the beginning with a fresh group.
    func read(_ topic: String, count: Int, within limit: Duration = .seconds(60)) async throws -> [KafkaMessage] {
        // Closed before returning: a consumer still closing when the cluster goes away blocks in librdkafka.
        let consumer = try KafkaFixtures.consumer(cluster, group: KafkaFixtures.uniqueName("reader"), topics: [topic])
        do {
            let messages = try await consumer.take(count, within: limit)
            await consumer.close()
            return messages
        } catch {
            await consumer.close()
            throw error
        }
    }

    /// Every regular file under `completes`, relative.
    func landedFiles() -> [String] {
        let enumerator = FileManager.default.enumerator(atPath: completes)
        var files: [String] = []
        while let path = enumerator?.nextObject() as? String {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: completes + "/" + path, isDirectory: &isDirectory), !isDirectory.boolValue {
                files.append(path)
            }
        }
        return files.sorted()
    }

    /// Waits until `condition` holds, checking every 100 ms.
    func waitUntil(_ what: String, within limit: Duration = .seconds(90), _ condition: @escaping @Sendable () -> Bool)
        async throws {
        try await withTimeout(limit, what) {
            while !condition() { try await Task.sleep(for: .milliseconds(100)) }
        }
    }

    func remove() async {
        await producer.close()
        directory.remove()
    }
}

/// Runs `body` with an sshd and a consumer fixture, cleaning both up.
func withConsumerFixture(partitions: Int = 4, consumerConfig: String = "", remoteConfig: ((SSHServerFixture) -> String)? = nil,
                         httpConfig: String = "listen = \"127.0.0.1:0\"", extraConfig: String = "",
                         kafkaProperties: [String: String] = [:], hostKeyType: String = "ed25519",
                         _ body: (ConsumerFixture) async throws -> Void) async throws {
    try await withSSHServer(hostKeyType: hostKeyType) { server in
        let fixture = try ConsumerFixture(server: server, partitions: partitions, consumerConfig: consumerConfig,
                                          remoteConfig: remoteConfig?(server), httpConfig: httpConfig,
                                          extraConfig: extraConfig,
                                          kafkaProperties: kafkaProperties)
        do {
            try await body(fixture)
            await fixture.remove()
        } catch {
            await fixture.remove()
            throw error
        }
    }
}
