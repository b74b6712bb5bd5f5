import Foundation
import KafkaClient
import KafkaSyncCore
import TestSupport

/// A config directory with an embedded cluster "hosted" by the test process, as `kafkasync broker` would.
struct CLIFixture {
    let directory: TemporaryDirectory
    let cluster: EmbeddedKafkaCluster
    let topic: String
    let configPath: String

    init(partitions: Int = 2, extraConfig: String = "") throws {
        directory = try TemporaryDirectory(prefix: "kafkasync-cli")
        topic = KafkaFixtures.uniqueName("files")
        cluster = try KafkaFixtures.cluster(topics: Dictionary(uniqueKeysWithValues:
            TopicNames(topic: topic).all.map { ($0, partitions) }))
        configPath = try directory.write("config.toml", """
            kafka_url = "embedded"
            num_threads = 4
            debug_level = "error"

            [kafka]
            topic = "\(topic)"

            [remoteDetails]
            host = "127.0.0.1:2222"
            username = "sync"
            password = "not-a-real-password"

            [locations]
            incompletes = "./incompletes/"
            completes = "./completes/"
            \(extraConfig)
            """)
        try EmbeddedBootstrapFile(configFile: configPath).write(bootstrapServers: cluster.bootstrapServers)
    }

    /// Runs `kafkasync <arguments> --config <this config>`.
    func kafkasync(_ arguments: [String], stdin: String? = nil) async throws -> ProcessResult {
        try await runProcess(try kafkasyncExecutable(), arguments + ["--config", configPath], stdin: stdin)
    }

    /// Reads `count` messages from the jobs topic with kcat: `key<TAB>value` lines.
    func kcatRead(_ count: Int) async throws -> [String] {
        let result = try await runProcess("kcat", [
            "-b", cluster.bootstrapServers, "-C", "-t", topic, "-o", "beginning", "-c", "\(count)", "-e",
            "-f", "%k\t%s\n", "-q",
        ])
        return result.stdout.split(separator: "\n").map(String.init)
    }

    /// Reads `count` jobs with kafkasync's own consumer and job decoder.
    func consumeJobs(_ count: Int) async throws -> [TransferJob] {
        let consumer = try KafkaFixtures.consumer(cluster, group: KafkaFixtures.uniqueName("cli"), topics: [topic])
        let messages = try await consumer.take(count)
        await consumer.close()
        return try messages.map { try TransferJob.decode($0.value) }
    }

    func remove() { directory.remove() }
}
