import Synchronization

/// A ``GroupCommit`` per key, with a blocking write (an fsync per folder): items of one key share writes as a
/// ``GroupCommit``'s do, items of different keys go to writes of their own that may run at the same time. A key's
/// group commit exists while callers wait on it.
public final class KeyedGroupCommit<Key: Hashable & Sendable, Item: Sendable, Failure: Error>: Sendable {
    /// Writes a batch of one key's items, in order, blocking the thread until done, and says how it went (for every
    /// item of the batch).
    public typealias BlockingWrite = @Sendable (Key, [Item]) -> Result<Void, Failure>

    private struct Entry {
        let commit: GroupCommit<Item, Failure>
        var callers = 0
    }

    private let entries = Mutex<[Key: Entry]>([:])
    private let writes = Atomic<Int>(0)
    private let batchLimit: Int
    private let write: BlockingWrite

    /// Group commits that write batches with `blockingWrite`, on ``runBlocking(_:)``'s threads.
    /// - Parameters:
    ///   - batchLimit: the most items in one write (at least 1); no limit by default.
    ///   - blockingWrite: writes one batch of a key; never called twice at once for one key.
    public init(batchLimit: Int = .max, blockingWrite: @escaping BlockingWrite) {
        self.batchLimit = batchLimit
        write = blockingWrite
    }

    /// How many writes ran, over all keys (for tests).
    public var writeCount: Int { writes.load(ordering: .relaxed) }

    /// Submits `item` under `key` and waits for the write that holds it.
    /// - Throws: the failure of that write.
    public func submit(_ item: Item, to key: Key) async throws(Failure) {
        let commit = entries.withLock { entries in
            let commit = entries[key]?.commit ?? GroupCommit(batchLimit: batchLimit, blockingWrite: { [self] items in
                // Holds `self` only while the entry exists (while callers wait): no cycle outlives them.
                writes.add(1, ordering: .relaxed)
                return write(key, items)
            })
            entries[key, default: Entry(commit: commit)].callers += 1
            return commit
        }
        defer {
            entries.withLock { entries in
                entries[key]?.callers -= 1
                if entries[key]?.callers == 0 { entries[key] = nil }
            }
        }
        try await commit.submit(item)
    }
}
