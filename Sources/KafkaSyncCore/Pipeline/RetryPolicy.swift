import Foundation

/// Exponential backoff with jitter between attempts.
public struct RetryPolicy: Sendable, Equatable {
    /// Attempts before a job is dead-lettered.
    public var maxAttempts: Int
    /// The delay after the first failure.
    public var initial: Duration
    /// The longest delay.
    public var maximum: Duration

    /// A policy.
    public init(maxAttempts: Int, initial: Duration, maximum: Duration) {
        self.maxAttempts = maxAttempts
        self.initial = initial
        self.maximum = maximum
    }

    /// The policy of `[consumer]`.
    public init(_ settings: ConsumerSettings) {
        self.init(maxAttempts: settings.maxAttempts, initial: settings.backoffInitial, maximum: settings.backoffMax)
    }

    /// The delay after failed attempt `attempt` (1-based): `initial × 2^(attempt-1)`, capped at `maximum`, then
    /// scaled by a random factor in 0.5...1 so jobs that failed together do not come back together.
    public func delay(afterAttempt attempt: Int, jitter: Double = Double.random(in: 0.5...1)) -> Duration {
        let exponent = min(max(attempt - 1, 0), 30)
        let base = min(initial * (1 << exponent), maximum)
        return base * jitter
    }

    /// What becomes of a job after a failure.
    public enum Decision: Sendable, Equatable {
        /// Try again after `delay`, as attempt `attempt`.
        case retry(attempt: Int, delay: Duration)
        /// Give up: dead-letter the job with this failure.
        case deadLetter(TransferFailure)
    }

    /// The decision after `failure` on attempt `attempt` (1-based): a transient failure is retried until
    /// ``maxAttempts`` attempts have failed, then dead-lettered as `attempts_exhausted`; a permanent one is
    /// dead-lettered at once.
    public func decide(after failure: TransferFailure, attempt: Int,
                       jitter: Double = Double.random(in: 0.5...1)) -> Decision {
        guard failure.isTransient else { return .deadLetter(failure) }
        guard attempt < maxAttempts else {
            return .deadLetter(TransferFailure(.attemptsExhausted,
                                               "gave up after \(attempt) attempts; last: \(failure.message) [\(failure.code)]"))
        }
        return .retry(attempt: attempt + 1, delay: delay(afterAttempt: attempt, jitter: jitter))
    }
}
