import Foundation
import Synchronization

/// Server processes a test stopped with `SIGSTOP` (from ``SSHServerFixture/processes(holdingOpen:)``): the server
/// stops answering on their connections while the kernel still accepts the client's bytes, as a hung server does.
/// A test must let them go at its end (``resume()``, or ``kill()``), whatever happens.
public final class StoppedProcesses: Sendable {
    private struct State {
        var pids: [pid_t] = []
        var since: ContinuousClock.Instant?
        var lastProgress: ContinuousClock.Instant?
    }
    private let state = Mutex(State())

    /// Nothing stopped yet.
    public init() {}

    /// Stops `pids`, unless processes were stopped already (later calls do nothing).
    /// - Returns: whether processes are stopped now.
    @discardableResult
    public func stop(_ pids: [pid_t]) -> Bool {
        state.withLock { state in
            guard state.pids.isEmpty, !pids.isEmpty else { return !state.pids.isEmpty }
            for pid in pids { Foundation.kill(pid, SIGSTOP) }
            state.pids = pids
            state.since = .now
            return true
        }
    }

    /// When they were stopped, if they were.
    public var since: ContinuousClock.Instant? { state.withLock { $0.since } }

    /// Notes that the client made progress now (data the stopped server sent before it stopped still drains
    /// from the socket buffers for a while, longer on a loaded machine).
    public func progressed() { state.withLock { $0.lastProgress = .now } }

    /// When the client last made progress, if it did.
    public var lastProgress: ContinuousClock.Instant? { state.withLock { $0.lastProgress } }

    /// Lets them run again (`SIGCONT`).
    public func resume() { state.withLock { $0.pids.forEach { Foundation.kill($0, SIGCONT) } } }

    /// Kills them (`SIGKILL`): their connections drop.
    public func kill() { state.withLock { $0.pids.forEach { Foundation.kill($0, SIGKILL) } } }
}
