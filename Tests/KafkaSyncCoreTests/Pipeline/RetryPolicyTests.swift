import Foundation
@testable import KafkaSyncCore
import Testing

struct RetryPolicyTests {
    @Test func retryDelaysGrowExponentiallyWithJitterUpToTheMaximum() {
        var settings = ConsumerSettings()
        settings.backoffInitial = .seconds(2)
        settings.backoffMax = .seconds(60)
        let policy = RetryPolicy(settings)
        #expect(policy.delay(afterAttempt: 1, jitter: 1) == .seconds(2))
        #expect(policy.delay(afterAttempt: 3, jitter: 1) == .seconds(8))
        #expect(policy.delay(afterAttempt: 10, jitter: 1) == .seconds(60))
        #expect(policy.delay(afterAttempt: 3, jitter: 0.5) == .seconds(4))
        #expect(policy.delay(afterAttempt: 100, jitter: 1) == .seconds(60), "no overflow")
        let random = policy.delay(afterAttempt: 2)
        #expect(random >= .seconds(2) && random <= .seconds(4))
    }

    static let policy = RetryPolicy(maxAttempts: 3, initial: .seconds(2), maximum: .seconds(60))

    /// Failure, attempt → decision.
    @Test(arguments: [
        (TransferFailure(.connectionLost, "x"), 1, RetryPolicy.Decision.retry(attempt: 2, delay: .seconds(2))),
        (TransferFailure(.timedOut, "x"), 2, .retry(attempt: 3, delay: .seconds(4))),
        (TransferFailure(.diskFull, "x"), 1, .retry(attempt: 2, delay: .seconds(2))),
        (TransferFailure(.storeFailed, "x"), 2, .retry(attempt: 3, delay: .seconds(4))),
        (TransferFailure(.connectionLost, "lost"), 3,
         .deadLetter(TransferFailure(.attemptsExhausted, "gave up after 3 attempts; last: lost [connection_lost]"))),
        (TransferFailure(.connectionLost, "lost"), 7,
         .deadLetter(TransferFailure(.attemptsExhausted, "gave up after 7 attempts; last: lost [connection_lost]"))),
        (TransferFailure(.noSuchFile, "gone"), 1, .deadLetter(TransferFailure(.noSuchFile, "gone"))),
        (TransferFailure(.checksumMismatch, "bad"), 2, .deadLetter(TransferFailure(.checksumMismatch, "bad"))),
        (TransferFailure(JobRejection(.invalidJSON, field: nil, "not json")), 1,
         .deadLetter(TransferFailure(JobRejection(.invalidJSON, field: nil, "not json")))),
    ])
    func decision(_ failure: TransferFailure, attempt: Int, expected: RetryPolicy.Decision) {
        #expect(Self.policy.decide(after: failure, attempt: attempt, jitter: 1) == expected)
    }

    @Test func theClassOfAFailureIsItsCode() {
        #expect(TransferFailure(.attemptsExhausted, "x").errorClass == .transient, "the class of the failures that ran out")
        #expect(TransferFailure(.unsafeRemoteName, "x").errorClass == .permanent)
        #expect(TransferFailure(JobRejection(.pathTraversal, field: "name", "..")).code.description == "path_traversal")
        #expect(TransferFailure.Code.fsyncFailed.description == "fsync_failed")
    }
}
