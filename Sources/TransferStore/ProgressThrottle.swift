import AsyncSupport
import Foundation
import Synchronization

/// Decides which progress updates reach the store: at most one per `interval` per transfer.
public final class ProgressThrottle: Sendable {
    private let interval: TimeInterval
    private let lastWrites = Mutex<[String: Date]>([:])

    /// A throttle letting one write per `interval` (default 1 s) through for each job id.
    public init(interval: Duration = .seconds(1)) {
        self.interval = interval.timeInterval
    }

    /// Whether a progress update of `jobID` at `time` should be written; records it if so.
    public func shouldWrite(jobID: String, at time: Date) -> Bool {
        lastWrites.withLock { lastWrites in
            if let last = lastWrites[jobID], time.timeIntervalSince(last) < interval { return false }
            lastWrites[jobID] = time
            return true
        }
    }

    /// Forgets a finished transfer.
    public func finish(jobID: String) {
        _ = lastWrites.withLock { $0.removeValue(forKey: jobID) }
    }
}
