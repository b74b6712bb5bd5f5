import Synchronization

/// Items submitted while a write is under way go together in the next write (a group commit): one write for
/// many items, where each would have cost a write of its own (a store statement and transaction, an fsync).
///
/// A caller returns once the write holding its item has ended, with that write's outcome; the write starts after
/// the call (a caller that finds no write running starts one at once). Items are written in the order submitted,
/// at most ``batchLimit`` in one write, one write at a time.
///
/// The writes run apart from the callers (so a caller's cancellation does not fail the others' write) until
/// nobody waits: an async write in a task of its own, a blocking one on ``runBlocking(_:)``'s threads, where
/// consecutive writes follow each other without a thread of the cooperative pool.
public final class GroupCommit<Item: Sendable, Failure: Error>: Sendable {
    /// Writes a batch of items, in order, and says how it went (for every item of the batch).
    public typealias Write = @Sendable ([Item]) async -> Result<Void, Failure>
    /// Writes a batch of items, in order, blocking the thread until done (an fsync), and says how it went.
    public typealias BlockingWrite = @Sendable ([Item]) -> Result<Void, Failure>

    private enum Writer {
        case async(Write)
        case blocking(BlockingWrite)
    }

    private typealias Waiter = (item: Item, done: CheckedContinuation<Result<Void, Failure>, Never>)
    private struct State {
        var waiting: [Waiter] = []
        var writing = false
        var writes = 0
    }

    /// The most items in one write.
    public let batchLimit: Int
    private let state = Mutex(State())
    private let writer: Writer

    /// A group commit that writes batches with `write`, in a task of its own.
    /// - Parameters:
    ///   - batchLimit: the most items in one write (at least 1); no limit by default.
    ///   - write: writes one batch; never called twice at once.
    public init(batchLimit: Int = .max, write: @escaping Write) {
        self.batchLimit = max(1, batchLimit)
        writer = .async(write)
    }

    /// A group commit that writes batches with `blockingWrite`, on ``runBlocking(_:)``'s threads.
    /// - Parameters:
    ///   - batchLimit: the most items in one write (at least 1); no limit by default.
    ///   - blockingWrite: writes one batch; never called twice at once.
    public init(batchLimit: Int = .max, blockingWrite: @escaping BlockingWrite) {
        self.batchLimit = max(1, batchLimit)
        writer = .blocking(blockingWrite)
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
            guard lead else { return }
            switch writer {
            case .async(let write):
                Task {
                    while let batch = nextBatch() { finish(batch, await write(batch.map(\.item))) }
                }
            case .blocking(let write):
                // The pool is never shut down, so the work always runs.
                blockingThreads.submit { _ in
                    while let batch = self.nextBatch() { self.finish(batch, write(batch.map(\.item))) }
                }
            }
        }.get()
    }

    /// The next batch to write, in the order submitted; `nil` (and no write running) when nobody waits.
    private func nextBatch() -> [Waiter]? {
        state.withLock { state in
            guard !state.waiting.isEmpty else {
                state.writing = false
                return nil
            }
            let batch = Array(state.waiting.prefix(batchLimit))
            state.waiting.removeFirst(batch.count)
            state.writes += 1
            return batch
        }
    }

    /// Hands the outcome of a write to the callers whose items it held.
    private func finish(_ batch: [Waiter], _ result: Result<Void, Failure>) {
        for waiter in batch { waiter.done.resume(returning: result) }
    }
}
