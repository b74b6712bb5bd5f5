import Foundation
import KafkaClient

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
            KafkaHeader(name: JobHeader.reason, string: failure.code.description),
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
