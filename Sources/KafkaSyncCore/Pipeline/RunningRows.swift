import Foundation
import Synchronization
import TransferStore

/// Writes the `running` row of each transfer that is still going after ``delay``, from one sweep every quarter of
/// a second: a small file is in place, and its completed row written, before anyone could see it running, so
/// most jobs never cost a write (or a task) for it.
///
/// ``finish(_:)`` waits for a running row being written, so it can never land after the job's final row.
final class RunningRows: Sendable {
    private enum Row {
        /// Not written yet; due at this time.
        case waiting(ContinuousClock.Instant)
        /// Being written; these finished transfers wait for it.
        case saving(finished: [CheckedContinuation<Void, Never>]?)
        /// Written (once is enough).
        case written
    }

    private struct State {
        var rows: [String: (record: TransferRecord, row: Row)] = [:]
        var sweeping = false
    }

    private let delay: Duration
    private let save: @Sendable (TransferRecord) async -> Void
    private let state = Mutex(State())

    /// - Parameters:
    ///   - delay: how long a transfer runs before its row is written.
    ///   - save: writes a row (and reports its own failures).
    init(delay: Duration = .seconds(1), save: @escaping @Sendable (TransferRecord) async -> Void) {
        self.delay = delay
        self.save = save
    }

    /// A transfer started; its row is written once it has run for `delay`.
    func start(_ record: TransferRecord) {
        let startSweeper = state.withLock { state in
            state.rows[record.jobID] = (record, .waiting(.now + delay))
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
            try? await Task.sleep(for: .milliseconds(250))
            let now = ContinuousClock.now
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
