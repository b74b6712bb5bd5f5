import Foundation

/// What became of one delivered job: the value the daemon publishes (``OutcomePublisher``) and that anything
/// watching the pipeline (the log, a dashboard, metrics) can read.
public enum Outcome: Sendable, Equatable {
    /// The job's result is now in `completes`.
    case completed(Completion)
    /// The job was completed before and its result is still in place: nothing was downloaded.
    case skipped(Completion)
    /// A transient failure: the job goes to the retry topic as attempt `attempt`, not to start before `notBefore`.
    case retry(TransferJob, failure: TransferFailure, attempt: Int, notBefore: Date)
    /// The job cannot be done: it goes to the dead-letter topic with the failure as its reason. The job is `nil`
    /// when it could not be decoded.
    case deadLetter(TransferJob?, failure: TransferFailure)

    /// A job whose result is in place.
    public struct Completion: Sendable, Equatable {
        /// The job.
        public var job: TransferJob
        /// The final path.
        public var path: String
        /// Bytes of the file, or of every file of the directory.
        public var bytes: Int64
        /// Files (1 for a file job).
        public var files: Int
        /// How long the transfer took (zero when skipped).
        public var duration: Duration
        /// When the result was in place.
        public var finishedAt: Date

        /// Creates a completion.
        public init(job: TransferJob, path: String, bytes: Int64, files: Int, duration: Duration, finishedAt: Date) {
            self.job = job
            self.path = path
            self.bytes = bytes
            self.files = files
            self.duration = duration
            self.finishedAt = finishedAt
        }
    }

    /// The job, when it could be decoded.
    public var job: TransferJob? {
        switch self {
        case .completed(let completion), .skipped(let completion): completion.job
        case .retry(let job, _, _, _): job
        case .deadLetter(let job, _): job
        }
    }
}
