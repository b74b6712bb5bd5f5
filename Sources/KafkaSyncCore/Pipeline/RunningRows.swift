import Foundation
import Synchronization
import TransferStore

/// Writes the `running` row of each transfer that is still going after ``delay``, from one sweep every
/// ``sweepInterval``: a small file is in place, and its completed row written, before anyone could see it running, so
/// most jobs never cost a write (or a task) for it.
///
/// ``finish(_:)`` waits for a running row being written, so it can never land after the job's final row.
final class RunningRows: Sendable {
    private enum Row {
        /// Not written yet; due when the clock has run this long since the rows were made.
        case waiting(Duration)
        /// Being written; these finished transfers wait for it.
        case saving(finished: [CheckedContinuation<Void, Never>]?)
        /// Written (once is enough).
        case written
    }

    private struct State {
        var rows: [String: (record: TransferRecord, row: Row)] = [:]
        var sweeping = false
    }

    /// How often the rows that are due are written.
    static let sweepInterval = Duration.milliseconds(250)

    private let delay: Duration
    private let save: @Sendable (TransferRecord) async -> Void
    private let state = Mutex(State())
    /// The time on the clock since the rows were made.
    private let elapsed: @Sendable () -> Duration
    /// Sleeps on the clock.
    private let sleep: @Sendable (Duration) async throws -> Void

    /// - Parameters:
    ///   - delay: how long a transfer runs before its row is written.
    ///   - clock: the clock that times ``delay`` and the sweeps (tests move a clock of their own).
    ///   - save: writes a row (and reports its own failures).
    init<C: Clock<Duration>>(delay: Duration = .seconds(1), clock: C = ContinuousClock(),
                             save: @escaping @Sendable (TransferRecord) async -> Void) {
        self.delay = delay
        self.save = save
        let origin = clock.now
        elapsed = { origin.duration(to: clock.now) }
        sleep = { duration in try await clock.sleep(for: duration) }
    }

    /// Whether the sweep runs (for tests).
    var isSweeping: Bool { state.withLock { $0.sweeping } }

    /// How many finished transfers wait for their running row's write (for tests).
    var waitingFinishes: Int {
        state.withLock { state in
            state.rows.values.reduce(0) { count, entry in
                guard case .saving(let finished?) = entry.row else { return count }
                return count + finished.count
            }
        }
    }

    /// A transfer started; its row is written once it has run for `delay`.
    func start(_ record: TransferRecord) {
        let due = elapsed() + delay
        let startSweeper = state.withLock { state in
            state.rows[record.jobID] = (record, .waiting(due))
            defer { state.sweeping = true }
            return !state.sweeping
        }
        if startSweeper { Task { await sweep() } }
    }

    /// The transfer ended: its row is not written any more, and a write under way is waited for (only then does
    /// the caller suspend).
    func finish(_ jobID: String) async {
        let saving = state.withLock { state in
            if case .saving? = state.rows[jobID]?.row { return true }
            state.rows[jobID] = nil
            return false
        }
        guard saving else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            // The write may have ended since the check above (the row is then `written`).
            let wait = state.withLock { state in
                guard case .saving(let finished)? = state.rows[jobID]?.row else {
                    state.rows[jobID] = nil
                    return false
                }
                state.rows[jobID]?.row = .saving(finished: (finished ?? []) + [continuation])
                return true
            }
            if !wait { continuation.resume() }
        }
    }

    /// Runs while transfers are going: writes the rows that are due.
    private func sweep() async {
        while true {
            try? await sleep(Self.sweepInterval)
            let now = elapsed()
            let due: [TransferRecord]? = state.withLock { state in
                if state.rows.isEmpty {
                    state.sweeping = false
                    return nil
                }
                var due: [TransferRecord] = []
                for (id, entry) in state.rows {
                    if case .waiting(let time) = entry.row, time <= now {
                        state.rows[id]?.row = .saving(finished: nil)
                        due.append(entry.record)
                    }
                }
                return due
            }
            guard let due else { return }
            for record in due {
                await save(record)
                let finished = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                    guard case .saving(let finished)? = state.rows[record.jobID]?.row, let finished else {
                        state.rows[record.jobID]?.row = .written
                        return []
                    }
                    state.rows[record.jobID] = nil
                    return finished
                }
                for waiter in finished { waiter.resume() }
            }
        }
    }
}
