import Foundation
import Synchronization
import TransferStore

/// Something that happened to a job in the pipeline, as watchers see it (the dashboard's live events, metrics).
public enum PipelineEvent: Sendable, Equatable {
    /// A transfer started: its row as the store has it (name, remote, attempt, expected size).
    case started(TransferRecord)
    /// Bytes moved so far by a running transfer, and its size once known (at most one per
    /// ``PipelineEvents/progressInterval`` per job, the first one that long after the start).
    case progress(jobID: String, bytes: Int64, total: Int64?)
    /// The job ended, one way or another.
    case outcome(Outcome)
}

/// The pipeline's events, delivered to observers registered before it runs (``ConsumerContext/events``).
///
/// Observers are called synchronously on the pipeline's tasks: each must return at once (count, or put the event
/// in a bounded buffer it drains elsewhere), never wait.
public final class PipelineEvents: Sendable {
    /// The most frequent progress events of one transfer: two per second.
    public static let progressInterval: Duration = .milliseconds(500)

    private let observers = Mutex<[@Sendable (PipelineEvent) -> Void]>([])
    private let throttle = ProgressThrottle(interval: PipelineEvents.progressInterval)

    /// Events with no observers yet.
    public init() {}

    /// Calls `observer` with every event from now on.
    public func observe(_ observer: @escaping @Sendable (PipelineEvent) -> Void) {
        observers.withLock { $0.append(observer) }
    }

    /// Hands `event` to every observer; progress is thrown away when the job's last one is too recent.
    func emit(_ event: PipelineEvent) {
        switch event {
        case .progress(let jobID, _, _):
            guard throttle.shouldWrite(jobID: jobID, at: Date()) else { return }
        case .outcome(let outcome):
            if let id = outcome.job?.id { throttle.finish(jobID: id) }
        case .started(let record):
            // The first progress comes half a second after the start: a small file is done before it would matter.
            _ = throttle.shouldWrite(jobID: record.jobID, at: Date())
        }
        for observer in observers.withLock({ $0 }) { observer(event) }
    }
}
