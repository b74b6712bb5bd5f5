import Foundation
import Synchronization
import Testing
import TransferStore
@testable import KafkaSyncCore

/// When the `running` row of a transfer is written: only for one that lasts, once, and never after its end.
@Suite struct RunningRowsTests {
    /// What the rows' writer saw, in order (`saved` marks a write's end).
    final class Log: Sendable {
        let events = Mutex<[String]>([])
        func add(_ event: String) { events.withLock { $0.append(event) } }
        var all: [String] { events.withLock { $0 } }
    }

    /// Waits until `condition` holds (the whole suite can keep the cooperative pool busy for seconds).
    func eventually(_ condition: () -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(30)
        while !condition() && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        return condition()
    }

    func record(_ id: String) -> TransferRecord {
        TransferRecord(jobID: id, name: id, remote: "remoteDetails", remotePath: "/data/\(id)", status: .running,
                       receivedAt: Date())
    }

    @Test func aShortTransferNeverWritesItsRowAndALongOneWritesItOnce() async throws {
        let log = Log()
        let rows = RunningRows(delay: .milliseconds(100)) { record in log.add("save \(record.jobID)") }
        rows.start(record("short"))
        rows.start(record("long"))
        await rows.finish("short")
        #expect(try await eventually { !log.all.isEmpty })
        try await Task.sleep(for: .milliseconds(600))  // several sweeps
        #expect(log.all == ["save long"])
        await rows.finish("long")
    }

    @Test func finishingWhileTheRowIsBeingWrittenWaitsForTheWrite() async throws {
        let log = Log()
        let rows = RunningRows(delay: .milliseconds(10)) { record in
            log.add("save \(record.jobID)")
            try? await Task.sleep(for: .milliseconds(500))
            log.add("saved \(record.jobID)")
        }
        rows.start(record("job"))
        // Wait until the write has begun, then finish: the final row must come after it.
        while log.all.isEmpty { try await Task.sleep(for: .milliseconds(10)) }
        await rows.finish("job")
        log.add("final row")
        #expect(log.all == ["save job", "saved job", "final row"])
    }

    @Test func theSweepStopsWhenNothingRunsAndStartsAgain() async throws {
        let log = Log()
        let rows = RunningRows(delay: .milliseconds(50)) { record in log.add("save \(record.jobID)") }
        rows.start(record("first"))
        await rows.finish("first")
        try await Task.sleep(for: .milliseconds(600))
        rows.start(record("second"))
        #expect(try await eventually { !log.all.isEmpty })
        #expect(log.all == ["save second"])
        await rows.finish("second")
    }
}
