import KafkaClient
import Logging

/// Publishes transfer jobs to the jobs topic, keyed by name like the original producer.
public struct JobPublisher: Sendable {
    private let producer: KafkaProducer
    private let topic: String

    /// A publisher sending to `topic` through `producer` (which the caller closes).
    public init(producer: KafkaProducer, topic: String) {
        self.producer = producer
        self.topic = topic
    }

    /// Sends one job and waits for the broker's acknowledgement.
    /// - Returns: the partition and offset it was stored at.
    public func publish(_ job: TransferJob) async throws(KafkaError) -> KafkaDeliveryReport {
        try await producer.send(KafkaOutgoingMessage(topic: topic, key: Array(job.name.utf8), value: job.encodedJSON()))
    }
}
