import KafkaClient

/// The Kafka topics KafkaSync uses, all derived from `[kafka] topic`.
public struct TopicNames: Sendable, Equatable {
    /// Jobs to do (`kafkasync-files`).
    public let jobs: String
    /// Jobs waiting for another attempt (`<topic>.retry`).
    public let retry: String
    /// Jobs that cannot be done, with a reason header (`<topic>.dlq`).
    public let deadLetter: String
    /// Completion events (`<topic>.done`).
    public let done: String

    /// The names derived from the jobs topic.
    public init(topic: String) {
        jobs = topic
        retry = "\(topic).retry"
        deadLetter = "\(topic).dlq"
        done = "\(topic).done"
    }

    /// All four, jobs topic first.
    public var all: [String] { [jobs, retry, deadLetter, done] }
}

extension KafkaSyncConfig {
    /// The four topics of this configuration.
    public var topics: TopicNames { TopicNames(topic: kafka.topic) }

    /// The bootstrap servers to connect to: `kafka_url`, or for `"embedded"` what the hosting process wrote
    /// into its state file beside the config file.
    /// - Throws: ``KafkaError/Code/embeddedBrokerNotRunning`` when `embedded` is configured and nothing runs.
    public func bootstrapServers() throws(KafkaError) -> String {
        guard isEmbeddedKafka else { return kafkaURL }
        return try EmbeddedBootstrapFile(configFile: configFile).read()
    }

    /// Whether `kafka_url = "embedded"`.
    public var isEmbeddedKafka: Bool { kafkaURL == "embedded" }

    /// librdkafka properties for a consumer: `[kafka.properties]`, and with the embedded broker a short
    /// `fetch.wait.max.ms` (unless set): librdkafka's mock cluster answers a fetch that finds nothing only after
    /// that wait (500 ms by default), even when messages arrive meanwhile; a real broker answers at once.
    public var consumerProperties: [String: String] {
        var properties = kafka.properties
        if isEmbeddedKafka && properties["fetch.wait.max.ms"] == nil { properties["fetch.wait.max.ms"] = "10" }
        return properties
    }

    /// Producer settings for this configuration, for a producer sending to `topics`.
    public func producerConfiguration(sendingTo topics: [String]) throws(KafkaError) -> KafkaProducerConfiguration {
        KafkaProducerConfiguration(bootstrapServers: try bootstrapServers(), properties: kafka.properties, topics: topics)
    }
}
