import Synchronization
import TestSupport
import Testing
@testable import AsyncSupport

/// The group commit: who shares a write, what each caller gets back, and the batch limit.
@Suite(.timeLimit(.minutes(1))) struct GroupCommitTests {
    struct WriteFailed: Error, Equatable {
        let batch: [Int]
    }

    /// The batches written, in order; a batch holding a negative item fails.
    final class Writes: Sendable {
        let batches = Mutex<[[Int]]>([])
        var all: [[Int]] { batches.withLock { $0 } }

        func write(_ batch: [Int]) -> Result<Void, WriteFailed> {
            batches.withLock { $0.append(batch) }
            return batch.contains { $0 < 0 } ? .failure(WriteFailed(batch: batch)) : .success(())
        }
    }

    /// A write that waits until the test opens it (each write, one `open()`).
    final class Gate: Sendable {
        let (opened, opener) = AsyncStream<Void>.makeStream()
        func wait() async { for await _ in opened { return } }
        func open() { opener.yield() }
    }

    @Test func callersOneAfterAnotherEachGetAWrite() async throws {
        let writes = Writes()
        let commit = GroupCommit<Int, WriteFailed> { writes.write($0) }
        for item in 0..<5 { try await commit.submit(item) }
        #expect(writes.all == [[0], [1], [2], [3], [4]])
        #expect(commit.writeCount == 5)
    }

    @Test func callersArrivingDuringAWriteShareTheNextInOrderUpToTheLimit() async throws {
        let writes = Writes(), gate = Gate()
        let commit = GroupCommit<Int, WriteFailed>(batchLimit: 3) { batch in
            await gate.wait()
            return writes.write(batch)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await commit.submit(0) }
            try await waitUntil("the first write to start") { commit.writeCount == 1 }
            // While it runs, four more arrive, one after another: the next write takes three, the one after one.
            for item in 1...4 {
                group.addTask { try await commit.submit(item) }
                try await waitUntil("item \(item) to wait") { commit.waitingCount == item }
            }
            for _ in 0..<3 { gate.open() }
            try await group.waitForAll()
        }
        #expect(writes.all == [[0], [1, 2, 3], [4]])
    }

    @Test func eachCallerGetsTheOutcomeOfTheWriteHoldingItsItem() async throws {
        let writes = Writes(), gate = Gate()
        let commit = GroupCommit<Int, WriteFailed>(batchLimit: 2) { batch in
            await gate.wait()
            return writes.write(batch)
        }
        // Each item, and the batch whose failed write it got (`nil`: its write succeeded).
        let outcomes = try await withThrowingTaskGroup(of: (Int, [Int]?).self) { group in
            func submit(_ item: Int) {
                group.addTask {
                    do throws(WriteFailed) {
                        try await commit.submit(item)
                        return (item, nil)
                    } catch {
                        return (item, error.batch)
                    }
                }
            }
            submit(0)
            try await waitUntil("the first write to start") { commit.writeCount == 1 }
            for (index, item) in [1, -2, 3].enumerated() {
                submit(item)
                try await waitUntil("item \(item) to wait") { commit.waitingCount == index + 1 }
            }
            for _ in 0..<3 { gate.open() }
            return try await group.reduce(into: [Int: [Int]?]()) { $0[$1.0] = $1.1 }
        }
        #expect(writes.all == [[0], [1, -2], [3]])
        #expect(outcomes == [0: nil, 1: [1, -2], -2: [1, -2], 3: nil])
    }
}
