import Synchronization

/// Items submitted while a write is under way go together in the next write (a group commit): one write for
/// many items, where each would have cost a write of its own (a store statement and transaction, an fsync).
///
/// A caller returns once the write holding its item has ended, with that write's outcome; the write starts after
/// the call (a caller that finds no write running starts one at once). Items are written in the order submitted,
/// at most ``batchLimit`` in one write.
///
/// The writes run in a task of their own, one at a time, so a caller's cancellation does not fail the others'
/// write; the task ends when nobody waits.
public final class GroupCommit<Item: Sendable, Failure: Error>: Sendable {
    /// Writes a batch of items, in order, and says how it went (for every item of the batch).
    public typealias Write = @Sendable ([Item]) async -> Result<Void, Failure>

    private typealias Waiter = (item: Item, done: CheckedContinuation<Result<Void, Failure>, Never>)
    private struct State {
        var waiting: [Waiter] = []
        var writing = false
        var writes = 0
    }

    /// The most items in one write.
    public let batchLimit: Int
    private let state = Mutex(State())
    private let write: Write

    /// A group commit that writes batches with `write`.
    /// - Parameters:
    ///   - batchLimit: the most items in one write (at least 1); no limit by default.
    ///   - write: writes one batch; never called twice at once.
    public init(batchLimit: Int = .max, write: @escaping Write) {
        self.batchLimit = max(1, batchLimit)
        self.write = write
    }

    /// How many writes ran (for tests).
    public var writeCount: Int { state.withLock { $0.writes } }

    /// How many items wait for a write to start (for tests).
    var waitingCount: Int { state.withLock { $0.waiting.count } }

    /// Submits `item` and waits for the write that holds it.
    /// - Throws: the failure of that write.
    public func submit(_ item: Item) async throws(Failure) {
        try await withCheckedContinuation { (done: CheckedContinuation<Result<Void, Failure>, Never>) in
            let lead = state.withLock { state in
                state.waiting.append((item, done))
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
            let batch = Array(state.waiting.prefix(batchLimit))
            state.waiting.removeFirst(batch.count)
            state.writes += 1
            return batch
        }) {
            let result = await write(batch.map(\.item))
            for waiter in batch { waiter.done.resume(returning: result) }
        }
    }
}
