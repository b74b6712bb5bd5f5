import Foundation
import KafkaClient

/// The Kafka headers KafkaSync puts on jobs it sends to `<topic>.retry` and `<topic>.dlq`.
public enum JobHeader {
    /// The attempt the receiver makes (1 is the first; a retry record carries 2 or more).
    public static let attempt = "kafkasync-attempt"
    /// Epoch milliseconds before which a retry must not start.
    public static let notBefore = "kafkasync-not-before"
    /// The reason code of the last failure (`no_such_file`, `invalid_json`, `attempts_exhausted`, …).
    public static let reason = "kafkasync-reason"
    /// `permanent` or `transient`.
    public static let errorClass = "kafkasync-error-class"
    /// The last failure's message.
    public static let error = "kafkasync-error"
    /// Where the job was first published.
    public static let originalTopic = "kafkasync-original-topic"
    /// Its partition there.
    public static let originalPartition = "kafkasync-original-partition"
    /// Its offset there.
    public static let originalOffset = "kafkasync-original-offset"
    /// ISO 8601 time of the first failure.
    public static let firstFailure = "kafkasync-first-failure"
    /// ISO 8601 time of the last failure.
    public static let lastFailure = "kafkasync-last-failure"
}

/// What the headers of a delivered job say about its history: which attempt this is and where it came from.
public struct JobHistory: Sendable, Equatable {
    /// The attempt this delivery is (1 for a fresh job).
    public var attempt: Int
    /// When a retry may start.
    public var notBefore: Date?
    /// Where the job was first published.
    public var originalTopic: String
    /// Its partition there.
    public var originalPartition: Int32
    /// Its offset there.
    public var originalOffset: Int64
    /// When it first failed, if it did.
    public var firstFailure: Date?

    /// Reads the history from a message's headers; a message without them is a fresh job at its own position.
    ///
    /// Only KafkaSync writes the retry topic, so only there are the headers history. On the jobs topic anyone
    /// may set them (a producer, a replay of a dead letter with its headers): a job published there with
    /// `kafkasync-attempt: 99` is still attempt 1, or it would skip its retries and go straight to the DLQ.
    /// - Parameter retryTopic: the retry topic (`<topic>.retry`), the one topic whose headers are trusted.
    public init(_ message: KafkaMessage, retryTopic: String) {
        let trusted = message.topic == retryTopic
        func header(_ name: String) -> String? { trusted ? message.header(name) : nil }
        attempt = header(JobHeader.attempt).flatMap(Int.init).map { max(1, $0) } ?? 1
        notBefore = header(JobHeader.notBefore).flatMap(Int64.init).map { Date(timeIntervalSince1970: Double($0) / 1000) }
        originalTopic = header(JobHeader.originalTopic) ?? message.topic
        originalPartition = header(JobHeader.originalPartition).flatMap(Int32.init) ?? message.partition
        originalOffset = header(JobHeader.originalOffset).flatMap(Int64.init) ?? message.offset
        firstFailure = header(JobHeader.firstFailure).flatMap { try? Date($0, strategy: .iso8601) }
    }

    /// The headers of the record that carries the job on after `failure` at `time`: to the retry topic (with
    /// `notBefore`) or to the dead-letter topic (without).
    public func headers(after failure: TransferFailure, at time: Date, nextAttempt: Int?, notBefore: Date?)
        -> [KafkaHeader]
    {
        var headers = [
            KafkaHeader(name: JobHeader.reason, string: failure.code),
            KafkaHeader(name: JobHeader.errorClass, string: failure.errorClass.rawValue),
            KafkaHeader(name: JobHeader.error, string: failure.message),
            KafkaHeader(name: JobHeader.attempt, string: "\(nextAttempt ?? attempt)"),
            KafkaHeader(name: JobHeader.originalTopic, string: originalTopic),
            KafkaHeader(name: JobHeader.originalPartition, string: "\(originalPartition)"),
            KafkaHeader(name: JobHeader.originalOffset, string: "\(originalOffset)"),
            KafkaHeader(name: JobHeader.firstFailure, string: (firstFailure ?? time).formatted(.iso8601)),
            KafkaHeader(name: JobHeader.lastFailure, string: time.formatted(.iso8601)),
        ]
        if let notBefore {
            headers.append(KafkaHeader(name: JobHeader.notBefore, string: "\(Int64(notBefore.timeIntervalSince1970 * 1000))"))
        }
        return headers
    }
}

/// Exponential backoff with jitter between attempts.
public struct RetryPolicy: Sendable, Equatable {
    /// Attempts before a job is dead-lettered.
    public var maxAttempts: Int
    /// The delay after the first failure.
    public var initial: Duration
    /// The longest delay.
    public var maximum: Duration

    /// A policy from `[consumer]`.
    public init(_ settings: ConsumerSettings) {
        maxAttempts = settings.maxAttempts
        initial = settings.backoffInitial
        maximum = settings.backoffMax
    }

    /// The delay after failed attempt `attempt` (1-based): `initial × 2^(attempt-1)`, capped at `maximum`, then
    /// scaled by a random factor in 0.5...1 so jobs that failed together do not come back together.
    public func delay(afterAttempt attempt: Int, jitter: Double = Double.random(in: 0.5...1)) -> Duration {
        let exponent = min(max(attempt - 1, 0), 30)
        let base = min(initial * (1 << exponent), maximum)
        return base * jitter
    }
}
