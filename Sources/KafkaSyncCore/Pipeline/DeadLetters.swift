import Foundation
import KafkaClient
import Logging

/// One record of `<topic>.dlq`: the job as it was published and why it was given up.
public struct DeadLetter: Sendable, Equatable {
    /// Its position in the dead-letter topic (`partition:offset`), unique.
    public var position: String
    /// The job message exactly as it was published.
    public var value: [UInt8]
    /// Its key.
    public var key: [UInt8]?
    /// The reason code (`no_such_file`, `attempts_exhausted`, …).
    public var reason: String
    /// `permanent` or `transient`.
    public var errorClass: String
    /// The last failure's message.
    public var error: String
    /// Attempts made.
    public var attempts: Int
    /// `topic[partition]@offset` where the job was first published.
    public var origin: String
    /// ISO 8601 times.
    public var firstFailure: String
    public var lastFailure: String
    /// The job id, when the message is a valid job.
    public var jobID: String?
    /// The job name, when the message is a valid job.
    public var name: String?

    init(_ message: KafkaMessage) {
        position = "\(message.partition):\(message.offset)"
        value = message.value
        key = message.key
        reason = message.header(JobHeader.reason) ?? "unknown"
        errorClass = message.header(JobHeader.errorClass) ?? ""
        error = message.header(JobHeader.error) ?? ""
        attempts = message.header(JobHeader.attempt).flatMap(Int.init) ?? 1
        origin = "\(message.header(JobHeader.originalTopic) ?? "?")[\(message.header(JobHeader.originalPartition) ?? "?")]@\(message.header(JobHeader.originalOffset) ?? "?")"
        firstFailure = message.header(JobHeader.firstFailure) ?? ""
        lastFailure = message.header(JobHeader.lastFailure) ?? ""
        let job = try? TransferJob.decode(message.value)
        jobID = job?.id
        name = job?.name
    }

    /// The letters that `ids` (positions or job ids) name, and the ids that name none.
    public static func select(_ letters: [DeadLetter], ids: [String]) -> (chosen: [DeadLetter], unknown: [String]) {
        let wanted = Set(ids)
        let chosen = letters.filter { wanted.contains($0.position) || $0.jobID.map(wanted.contains) == true }
        let unknown = ids.filter { id in !letters.contains { $0.position == id || $0.jobID == id } }
        return (chosen, unknown)
    }

    /// Publishes the job to `topic` (the jobs topic) again, as a fresh job: same key and value, no history
    /// headers. The dead letter stays where it is; a replayed job that completes again is skipped as a duplicate.
    public func replay(through producer: KafkaProducer, to topic: String) async throws(KafkaError) -> KafkaDeliveryReport {
        try await producer.send(KafkaOutgoingMessage(topic: topic, key: key, value: value))
    }

    /// Reads every record the dead-letter topic holds now, without joining a group or committing anything; each of
    /// its two steps (the end offsets, the records) gives up after `timeout`.
    public static func readAll(topic: String, bootstrapServers: String, properties: [String: String],
                               timeout: Duration = .seconds(30), logger: Logger) async throws -> [DeadLetter] {
        let ends = try await KafkaAdmin.endOffsets(of: topic, bootstrapServers: bootstrapServers,
                                                   properties: properties, timeout: timeout, logger: logger)
        let letters = try await KafkaAdmin.read(topic, ranges: ends.mapValues { 0..<$0 }, bootstrapServers: bootstrapServers,
                                                properties: properties, timeout: timeout, logger: logger)
            .map(DeadLetter.init)
        return letters.sorted { ($0.lastFailure, $0.position) < ($1.lastFailure, $1.position) }
    }
}
