import Foundation
@testable import KafkaClient
import Testing
@testable import KafkaSyncCore

/// Which headers of a delivered job are its history.
@Suite struct JobHistoryTests {
    let topics = TopicNames(topic: "files")

    func message(on topic: String, _ headers: [String: String]) -> KafkaMessage {
        KafkaMessage(topic: topic, partition: 2, offset: 40, key: nil, value: [],
                     headers: headers.map { KafkaHeader(name: $0.key, string: $0.value) }, timestampMilliseconds: nil)
    }

    let forged = [
        JobHeader.attempt: "99", JobHeader.notBefore: "\(Int64(Date().addingTimeInterval(3600).timeIntervalSince1970 * 1000))",
        JobHeader.originalTopic: "elsewhere", JobHeader.originalPartition: "7", JobHeader.originalOffset: "1234",
        JobHeader.firstFailure: "2020-01-01T00:00:00Z",
    ]

    @Test func headersOnTheJobsTopicAreIgnored() {
        let history = JobHistory(message(on: topics.jobs, forged), retryTopic: topics.retry)
        #expect(history.attempt == 1, "a producer cannot make a fresh job its last attempt")
        #expect(history.notBefore == nil && history.firstFailure == nil)
        #expect(history.originalTopic == topics.jobs && history.originalPartition == 2 && history.originalOffset == 40)
    }

    @Test func headersOnTheRetryTopicAreTheHistory() {
        let history = JobHistory(message(on: topics.retry, forged), retryTopic: topics.retry)
        #expect(history.attempt == 99 && history.notBefore != nil && history.firstFailure != nil)
        #expect(history.originalTopic == "elsewhere" && history.originalPartition == 7 && history.originalOffset == 1234)
    }
}
