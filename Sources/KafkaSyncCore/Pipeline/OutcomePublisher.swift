import AsyncSupport
import Foundation
import KafkaClient
import Logging

/// Turns an ``Outcome`` into its Kafka record and publishes it: a ``DoneEvent`` on `<topic>.done`, the job with
/// its history headers on `<topic>.retry` or `<topic>.dlq`. Once the broker has acknowledged the record, the
/// outcome is durable and the delivery may be marked done.
public struct OutcomePublisher: Sendable {
    private let producer: KafkaProducer
    private let topics: TopicNames
    private let workerHost: String
    private let logger: Logger

    /// A publisher to `topics` through `producer` (the caller owns and closes it).
    public init(producer: KafkaProducer, topics: TopicNames, workerHost: String = ProcessInfo.processInfo.hostName,
                logger: Logger) {
        self.producer = producer
        self.topics = topics
        self.workerHost = workerHost
        self.logger = logger
    }

    /// The record that carries `outcome` of `delivery`, failures stamped with `time`.
    public func record(for outcome: Outcome, of delivery: KafkaMessage, at time: Date = Date()) -> KafkaOutgoingMessage {
        let history = JobHistory(delivery, retryTopic: topics.retry)
        switch outcome {
        case .completed(let completion):
            return done(completion, status: "completed", of: delivery)
        case .skipped(let completion):
            return done(completion, status: "skipped", of: delivery)
        case .retry(let job, let failure, let attempt, let notBefore):
            // Keyed by the job, so all attempts of one job go to the same retry partition, in order.
            return KafkaOutgoingMessage(
                topic: topics.retry, key: delivery.key ?? Array(job.id.utf8), value: delivery.value,
                headers: history.headers(after: failure, at: time, nextAttempt: attempt, notBefore: notBefore))
        case .deadLetter(_, let failure):
            return KafkaOutgoingMessage(topic: topics.deadLetter, key: delivery.key, value: delivery.value,
                                        headers: history.headers(after: failure, at: time, nextAttempt: nil, notBefore: nil))
        }
    }

    private func done(_ completion: Outcome.Completion, status: String, of delivery: KafkaMessage) -> KafkaOutgoingMessage {
        let job = completion.job
        let event = DoneEvent(id: job.id, name: job.name, status: status, path: completion.path, bytes: completion.bytes,
                              files: completion.files, durationMs: Int64(completion.duration.timeInterval * 1000),
                              checksum: job.checksum?.description, worker: workerHost,
                              publishedAtMs: delivery.timestampMilliseconds,
                              finishedAtMs: Int64(completion.finishedAt.timeIntervalSince1970 * 1000))
        let value = (try? DoneEvent.encoder.encode(event)).map(Array.init) ?? []
        return KafkaOutgoingMessage(topic: topics.done, key: Array(job.id.utf8), value: value)
    }

    /// Publishes the record of `outcome` until the broker acknowledges it (backing off up to 30 s between tries).
    /// A record the broker can never take (too large) would hold the partition's commits forever: a trimmed dead
    /// letter (``trimmedDeadLetter(for:of:job:error:)``) goes instead, and if even that is refused, the outcome is
    /// given up with an error in the log.
    /// - Returns: `true` once the outcome is settled (the delivery may be marked done); `false` when cancelled first.
    public func publish(_ outcome: Outcome, of delivery: KafkaMessage) async -> Bool {
        let record = record(for: outcome, of: delivery)
        var message = record
        var trimmed = false
        var delay = Duration.milliseconds(500)
        while !Task.isCancelled {
            do {
                _ = try await producer.send(message)
                return true
            } catch where error.code == .messageTooLarge {
                if trimmed {
                    logger.error("the broker refuses even the trimmed dead letter; the outcome is lost",
                                 metadata: delivery.logMetadata + ["error": "\(error)"])
                    return true
                }
                logger.error("the broker refuses the outcome record for good; sending a trimmed dead letter instead",
                             metadata: delivery.logMetadata + ["kafka.outcome_topic": "\(record.topic)", "error": "\(error)"])
                message = trimmedDeadLetter(for: record, of: delivery, job: outcome.job, error: error)
                trimmed = true
            } catch {
                logger.warning("cannot publish to \(message.topic); trying again", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(30))
            }
        }
        return false
    }

    /// The dead letter that stands in for an outcome record the broker refused: the reason
    /// (`outcome_too_large`), the job's original position and history in headers, the job id as key, and no value
    /// (the job itself is still at its original position).
    func trimmedDeadLetter(for record: KafkaOutgoingMessage, of delivery: KafkaMessage, job: TransferJob?,
                           error: KafkaError) -> KafkaOutgoingMessage {
        let size = record.value.count + (record.key?.count ?? 0)
            + record.headers.reduce(0) { $0 + $1.name.utf8.count + ($1.value?.count ?? 0) }
        let failure = TransferFailure(.outcomeTooLarge,
                                      "the broker refused the \(record.topic) record of this job (\(size) bytes): \(error.code)")
        let history = JobHistory(delivery, retryTopic: topics.retry)
        return KafkaOutgoingMessage(topic: topics.deadLetter, key: job.map { Array($0.id.utf8) }, value: [],
                                    headers: history.headers(after: failure, at: Date(), nextAttempt: nil, notBefore: nil))
    }
}

extension KafkaMessage {
    /// Where the message is, for log lines.
    var logMetadata: Logger.Metadata {
        ["kafka.topic": "\(topic)", "kafka.partition": "\(partition)", "kafka.offset": "\(offset)"]
    }
}

extension Logger.Metadata {
    /// The entries of both, those of `rhs` winning.
    static func + (lhs: Logger.Metadata, rhs: Logger.Metadata) -> Logger.Metadata {
        lhs.merging(rhs) { $1 }
    }
}
