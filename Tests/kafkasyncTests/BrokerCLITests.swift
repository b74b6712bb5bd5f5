import Foundation
import KafkaClient
import KafkaSyncCore
import TestSupport
import Testing

/// `kafkasync broker` as a real foreground process.
@Suite(.timeLimit(.minutes(2))) struct BrokerCLITests {
    @Test func brokerPrintsBootstrapWritesStateFileAndStopsCleanly() async throws {
        let directory = try TemporaryDirectory(prefix: "kafkasync-broker")
        defer { directory.remove() }
        let topic = KafkaFixtures.uniqueName("files")
        let config = try directory.write("config.toml", """
            kafka_url = "embedded"
            [kafka]
            topic = "\(topic)"
            [remoteDetails]
            host = "127.0.0.1"
            username = "sync"
            password = "x"
            """)
        let broker = try BackgroundProcess(try kafkasyncExecutable(),
                                           ["broker", "--config", config, "--brokers", "2", "--partitions", "3"])
        let first = await broker.nextLine()
        let bootstrap = try #require(first, "broker printed nothing: \(broker.stderr)")
        #expect(bootstrap.split(separator: ",").count == 2)
        let stateFile = EmbeddedBootstrapFile(configFile: config)
        #expect(try stateFile.read() == bootstrap)

        // Every topic exists with the requested partitions; another process can produce through the state file.
        let counts = try await KafkaAdmin.ensureTopics(
            TopicNames(topic: topic).all.map { TopicSpecification(name: $0, partitions: 1) },
            bootstrapServers: bootstrap, logger: KafkaFixtures.logger())
        #expect(counts == Dictionary(uniqueKeysWithValues: TopicNames(topic: topic).all.map { ($0, 3) }))
        let produced = try await runProcess(try kafkasyncExecutable(),
                                            ["producer", "--config", config, "--name", "f", "--location", "/r"])
        #expect(produced.status == 0, "\(produced.stderr)")

        #expect(await broker.stop(signal: SIGTERM) == 0)
        #expect(!FileManager.default.fileExists(atPath: stateFile.path), "the state file is removed on exit")
    }

    @Test func brokerWorksWithoutAConfigFileAndStopsOnSigint() async throws {
        let directory = try TemporaryDirectory(prefix: "kafkasync-broker")
        defer { directory.remove() }
        let broker = try BackgroundProcess(try kafkasyncExecutable(),
                                           ["broker", "--config", directory.file("config.toml"), "--brokers", "1"])
        let bootstrap = await broker.nextLine()
        #expect(bootstrap?.hasPrefix("127.0.0.1:") == true, "\(broker.stderr)")
        #expect(FileManager.default.fileExists(atPath: directory.file(".kafkasync/embedded-bootstrap")))
        #expect(await broker.stop(signal: SIGINT) == 0)
        #expect(!FileManager.default.fileExists(atPath: directory.file(".kafkasync/embedded-bootstrap")))
    }

    @Test func brokerRejectsBadArguments() async throws {
        let result = try await runProcess(try kafkasyncExecutable(), ["broker", "--brokers", "0"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("--brokers must be 1...32"))
    }
}
