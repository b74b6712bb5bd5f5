import Foundation
import Synchronization
import TestSupport
import Testing
import TransferStore
@testable import KafkaSyncCore

/// When the `running` row of a transfer is written: only for one that lasts, once, and never after its end. Time
/// passes only when a test moves the clock.
@Suite(.timeLimit(.minutes(1))) struct RunningRowsTests {
    /// What the rows' writer saw, in order (`saved` marks a write's end).
    final class Log: Sendable {
        let events = Mutex<[String]>([])
        func add(_ event: String) { events.withLock { $0.append(event) } }
        var all: [String] { events.withLock { $0 } }
    }

    let clock = ManualClock()

    func record(_ id: String) -> TransferRecord {
        TransferRecord(jobID: id, name: id, remote: "remoteDetails", remotePath: "/data/\(id)", status: .running,
                       receivedAt: Date())
    }

    /// Lets one sweep run: waits until the sweep sleeps, moves the clock a sweep interval on, and waits until that
    /// sweep has ended (it sleeps again, or it stopped).
    func sweep(_ rows: RunningRows) async throws {
        try await waitUntil("the sweep to sleep") { [clock] in clock.sleeperCount == 1 }
        clock.advance(by: RunningRows.sweepInterval)
        try await waitUntil("the sweep to end") { [clock] in clock.sleeperCount == 1 || !rows.isSweeping }
    }

    @Test func aShortTransferNeverWritesItsRowAndALongOneWritesItOnce() async throws {
        let log = Log()
        let rows = RunningRows(delay: RunningRows.sweepInterval + .milliseconds(50), clock: clock) { record in
            log.add("save \(record.jobID)")
        }
        rows.start(record("short"))
        rows.start(record("long"))
        await rows.finish("short")
        try await sweep(rows)
        #expect(log.all == [], "not due yet")
        try await sweep(rows)
        #expect(log.all == ["save long"])
        for _ in 0..<3 { try await sweep(rows) }
        #expect(log.all == ["save long"], "written once")
        await rows.finish("long")
        try await sweep(rows)
        #expect(!rows.isSweeping)
    }

    @Test func finishingWhileTheRowIsBeingWrittenWaitsForTheWrite() async throws {
        let log = Log()
        let (written, write) = AsyncStream<Void>.makeStream()
        let rows = RunningRows(delay: .milliseconds(10), clock: clock) { record in
            log.add("save \(record.jobID)")
            for await _ in written { break }
            log.add("saved \(record.jobID)")
        }
        rows.start(record("job"))
        try await waitUntil("the sweep to sleep") { [clock] in clock.sleeperCount == 1 }
        clock.advance(by: RunningRows.sweepInterval)
        try await waitUntil("the write to begin") { log.all == ["save job"] }
        // Finish while the write is under way: the final row must come after it.
        let finishing = Task {
            await rows.finish("job")
            log.add("final row")
        }
        try await waitUntil("the finish to wait") { rows.waitingFinishes == 1 }
        #expect(log.all == ["save job"])
        write.yield()
        await finishing.value
        #expect(log.all == ["save job", "saved job", "final row"])
        try await sweep(rows)
        #expect(!rows.isSweeping)
    }

    @Test func theSweepStopsWhenNothingRunsAndStartsAgain() async throws {
        let log = Log()
        let rows = RunningRows(delay: .milliseconds(50), clock: clock) { record in log.add("save \(record.jobID)") }
        rows.start(record("first"))
        await rows.finish("first")
        try await sweep(rows)
        #expect(!rows.isSweeping && clock.sleeperCount == 0, "nothing runs: the sweep stopped")
        rows.start(record("second"))
        try await sweep(rows)
        #expect(log.all == ["save second"])
        await rows.finish("second")
        try await sweep(rows)
        #expect(!rows.isSweeping)
    }
}
