import Foundation
import KafkaClient
import KafkaSyncCore
import Logging

/// What the dashboard reads and writes in Kafka: the dead letters, the queue (the group's committed offsets against
/// the ends of the jobs topic), and jobs it publishes (`POST /api/jobs`, replays) through its own producer.
public final class DashboardKafka: Sendable {
    let topics: TopicNames
    let groupID: String
    let bootstrapServers: String
    let properties: [String: String]
    let consumerProperties: [String: String]
    let producer: KafkaProducer
    private let logger: Logger

    /// Kafka as `config` says, at `bootstrapServers`.
    /// - Throws: ``KafkaError`` when the producer cannot be created.
    public init(config: KafkaSyncConfig, bootstrapServers: String, logger: Logger) throws(KafkaError) {
        topics = config.topics
        groupID = config.kafka.groupID
        self.bootstrapServers = bootstrapServers
        properties = config.kafka.properties
        consumerProperties = config.consumerProperties
        producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(bootstrapServers: bootstrapServers, properties: properties,
                                                      topics: [config.topics.jobs]),
            logger: logger)
        self.logger = logger
    }

    /// Closes the producer (queued messages are delivered first).
    func close() async { await producer.close() }

    /// Every record of the dead-letter topic.
    func deadLetters() async throws -> [DeadLetter] {
        try await DeadLetter.readAll(topic: topics.deadLetter, bootstrapServers: bootstrapServers,
                                     properties: consumerProperties, timeout: .seconds(5), logger: logger)
    }

    /// Publishes `job` to the jobs topic (keyed by name, as the producer does).
    func publish(_ job: TransferJob) async throws(KafkaError) -> KafkaDeliveryReport {
        try await JobPublisher(producer: producer, topic: topics.jobs).publish(job)
    }

    /// Per partition of `topic`: the group's committed offset and the end.
    func positions(of topic: String) async throws(KafkaError) -> [QueueResponse.Partition] {
        let ends = try await KafkaAdmin.endOffsets(of: topic, bootstrapServers: bootstrapServers,
                                                   properties: properties, timeout: .seconds(5), logger: logger)
        let committed = try await KafkaAdmin.committedOffsets(group: groupID, topic: topic,
                                                              bootstrapServers: bootstrapServers,
                                                              properties: properties, timeout: .seconds(5), logger: logger)
        return ends.keys.sorted().map { partition in
            let end = ends[partition] ?? 0
            let done = committed[partition] ?? 0
            return QueueResponse.Partition(topic: topic, partition: partition, committed: done, end: end,
                                           pending: max(0, end - done))
        }
    }

    /// The first records after the committed offsets of the jobs topic (at most `limit` per partition), oldest
    /// published first: what the consumers will take next.
    func nextJobs(_ partitions: [QueueResponse.Partition], limit: Int) async throws(KafkaError) -> [QueueResponse.Pending] {
        var ranges: [Int32: Range<Int64>] = [:]
        for partition in partitions where partition.pending > 0 {
            ranges[partition.partition] = partition.committed..<min(partition.end, partition.committed + Int64(limit))
        }
        let messages = try await KafkaAdmin.read(topics.jobs, ranges: ranges, bootstrapServers: bootstrapServers,
                                                 properties: consumerProperties, timeout: .seconds(5), logger: logger)
        let now = Date()
        return messages.map { message in
            let job = try? TransferJob.decode(message.value)
            let published = message.timestampMilliseconds.map { Date(timeIntervalSince1970: Double($0) / 1000) }
            return QueueResponse.Pending(topic: message.topic, partition: message.partition, offset: message.offset,
                                         jobID: job?.id, name: job?.name, publishedAt: published,
                                         ageSeconds: published.map { max(0, now.timeIntervalSince($0)) })
        }.sorted { ($0.publishedAt ?? .distantPast, $0.partition, $0.offset) < ($1.publishedAt ?? .distantPast, $1.partition, $1.offset) }
    }
}
