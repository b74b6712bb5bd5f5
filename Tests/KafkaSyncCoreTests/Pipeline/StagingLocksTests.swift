import Foundation
import Synchronization
import TestSupport
import Testing
@testable import KafkaSyncCore

/// Two deliveries of one job never hold its staging path at once, in one process or in two.
@Suite struct StagingLocksTests {
    /// Signals an event once; awaited with a deadline.
    final class Event: Sendable {
        private let stream: AsyncStream<Void>
        private let continuation: AsyncStream<Void>.Continuation
        init() { (stream, continuation) = AsyncStream.makeStream() }
        func signal() { continuation.yield() }
        func wait(_ what: String) async throws {
            try await withTimeout(.seconds(10), what) { [stream] in
                var iterator = stream.makeAsyncIterator()
                _ = await iterator.next()
            }
        }
    }

    final class Owner: Sendable {
        private let name = Mutex("first")
        func withLock<T>(_ body: (inout String) -> T) -> T { name.withLock { body(&$0) } }
    }

    func check(first: StagingLocks, second: StagingLocks) async throws {
        let directory = try TemporaryDirectory(prefix: "kafkasync-locks")
        defer { directory.remove() }
        let path = directory.file("job-1")
        let held = try #require(try await first.lock(path))
        #expect(FileManager.default.fileExists(atPath: StagingLocks.lockFile(path)))
        let waiting = Event()
        let owner = Owner()
        let task = Task {
            let lock = try await second.lock(path, onWait: { waiting.signal() })
            owner.withLock { $0 = "second" }
            lock?.release()
            return lock != nil
        }
        try await waiting.wait("the second delivery to wait")
        #expect(owner.withLock { $0 } == "first", "the second did not get in while the first held the path")
        owner.withLock { $0 = "released" }
        held.release()
        #expect(try await withTimeout(.seconds(10), "the second delivery to get the path") { try await task.value })
        #expect(owner.withLock { $0 } == "second")
        #expect(!FileManager.default.fileExists(atPath: StagingLocks.lockFile(path)), "the lock file is removed")
        // Free again for a third.
        try #require(try await first.lock(path)).release()
    }

    @Test func twoDeliveriesInOneProcessTakeTurns() async throws {
        let locks = StagingLocks(pollInterval: .milliseconds(10))
        try await check(first: locks, second: locks)
    }

    /// Two lock tables stand for two consumer processes: only `flock` on the lock file keeps them apart.
    @Test func twoConsumersOnOneMachineTakeTurns() async throws {
        try await check(first: StagingLocks(), second: StagingLocks(pollInterval: .milliseconds(10)))
    }

    @Test(arguments: [false, true]) func aWaitingDeliveryThatIsCancelledGivesUp(inAnotherProcess: Bool) async throws {
        let directory = try TemporaryDirectory(prefix: "kafkasync-locks")
        defer { directory.remove() }
        let path = directory.file("job-1")
        let first = StagingLocks()
        let second = inAnotherProcess ? StagingLocks(pollInterval: .milliseconds(10)) : first
        let held = try #require(try await first.lock(path))
        let waiting = Event()
        let task = Task { try await second.lock(path, onWait: { waiting.signal() }) }
        try await waiting.wait("the second delivery to wait")
        task.cancel()
        #expect(try await withTimeout(.seconds(10), "the cancelled wait to end") { try await task.value } == nil)
        held.release()
        try #require(try await second.lock(path)).release()
    }
}
