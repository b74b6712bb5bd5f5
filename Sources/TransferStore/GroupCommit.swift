import Synchronization

/// Saves that arrive while a write is under way go together in the next one (a group commit): one statement and
/// one transaction for many records, where each save cost a transaction of its own. A caller returns once the
/// write holding its record has ended, with that write's outcome; records are written in the order saved.
final class GroupCommit: Sendable {
    private typealias Waiter = (record: TransferRecord, done: CheckedContinuation<Result<Void, StoreError>, Never>)
    private struct State {
        var waiting: [Waiter] = []
        var writing = false
        var writes = 0
    }

    /// The most records in one write.
    static let batchLimit = 50

    private let state = Mutex(State())
    private let write: @Sendable ([TransferRecord]) async -> Result<Void, StoreError>

    /// A group commit that writes batches with `write`.
    init(_ write: @escaping @Sendable ([TransferRecord]) async -> Result<Void, StoreError>) {
        self.write = write
    }

    /// How many writes ran (for tests).
    var writeCount: Int { state.withLock { $0.writes } }

    /// Saves `record` with the others waiting.
    func save(_ record: TransferRecord) async throws(StoreError) {
        try await withCheckedContinuation { (done: CheckedContinuation<Result<Void, StoreError>, Never>) in
            let lead = state.withLock { state in
                state.waiting.append((record, done))
                guard !state.writing else { return false }
                state.writing = true
                return true
            }
            if lead { Task { await self.drain() } }
        }.get()
    }

    /// Writes batches until nobody waits.
    private func drain() async {
        while let batch = state.withLock({ state -> [Waiter]? in
            guard !state.waiting.isEmpty else {
                state.writing = false
                return nil
            }
            let batch = Array(state.waiting.prefix(Self.batchLimit))
            state.waiting.removeFirst(batch.count)
            state.writes += 1
            return batch
        }) {
            let result = await write(batch.map(\.record))
            for waiter in batch { waiter.done.resume(returning: result) }
        }
    }
}
