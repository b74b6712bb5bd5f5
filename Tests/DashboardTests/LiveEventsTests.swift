import Foundation
import Testing
import TransferStore
@testable import Dashboard
@testable import KafkaSyncCore

/// The live event stream's buffering: a client that does not read is dropped instead of holding events, and a
/// reconnecting client resumes from its last event id while that is still buffered.
@Suite struct LiveEventsTests {
    private static func started(_ id: String) -> PipelineEvent {
        .started(TransferRecord(jobID: id, name: "\(id).bin", remote: "remoteDetails", remotePath: "/\(id).bin",
                                status: .running, attempts: 1, receivedAt: Date()))
    }

    /// A subscriber's events until `count` arrived or it ended (a live one with nothing left would wait).
    private static func drain(_ subscriber: LiveEvents.Subscriber, expecting count: Int = .max) async -> [LiveEvents.Entry] {
        var entries: [LiveEvents.Entry] = []
        for await _ in subscriber.wakeups {
            let (taken, ended) = subscriber.take()
            entries += taken
            if entries.count >= count || ended { break }
        }
        return entries
    }

    @Test func aClientThatDoesNotReadIsDroppedAndThePipelineNeverWaits() async throws {
        let events = PipelineEvents()
        let live = LiveEvents(events: events)
        let (slow, _) = live.subscribe(after: nil)
        let (fast, cancelFast) = live.subscribe(after: nil)
        #expect(live.subscriberCount == 2)
        // More events than a client may fall behind: emitting returns every time.
        let total = LiveEvents.subscriberQueue + 100
        for index in 0..<total { events.emit(Self.started("job-\(index)")) }
        #expect(live.subscriberCount == 0, "both fell behind (neither read) and were disconnected")
        let kept = await Self.drain(slow)
        #expect(kept.count == LiveEvents.subscriberQueue, "the stream ends after what it could hold")
        #expect(slow.take().ended)
        cancelFast()
        _ = fast

        // Reconnecting after the last event it saw, the client gets the rest from the buffer; from further back
        // than its queue holds, it is told to start over.
        let (tooFar, cancelTooFar) = live.subscribe(after: 0)
        #expect(await Self.drain(tooFar, expecting: 1).first?.type == "reset")
        cancelTooFar()
        let (resumed, cancel) = live.subscribe(after: LiveEvents.subscriberQueue)
        defer { cancel() }
        let rest = await Self.drain(resumed, expecting: 100)
        #expect(rest.map(\.id) == Array(LiveEvents.subscriberQueue + 1 ... total))
        #expect(rest.allSatisfy { $0.type == "started" })
        #expect(rest.first?.data.contains(#""job_id":"job-\#(LiveEvents.subscriberQueue)""#) == true, "\(rest.first!)")
    }

    @Test func eventsToldBetweenTwoWritesAreTakenTogether() async throws {
        let events = PipelineEvents()
        let live = LiveEvents(events: events)
        let (subscriber, cancel) = live.subscribe(after: nil)
        for index in 0..<10 { events.emit(Self.started("job-\(index)")) }
        var wakeups = subscriber.wakeups.makeAsyncIterator()
        #expect(await wakeups.next() != nil)
        #expect(subscriber.take().entries.map(\.id) == Array(1...10), "one write for the ten")
        #expect(subscriber.take().entries.isEmpty)
        events.emit(Self.started("job-10"))
        #expect(await wakeups.next() != nil, "a later event wakes the stream again")
        #expect(subscriber.take().entries.map(\.id) == [11])
        cancel()
        #expect(await wakeups.next() == nil, "a cancelled subscriber's stream ends")
        #expect(subscriber.take().ended)
    }

    @Test func anIDNoLongerBufferedOrNeverGivenGetsAReset() async throws {
        let events = PipelineEvents()
        let live = LiveEvents(events: events)
        for index in 0..<(LiveEvents.bufferSize + 10) { events.emit(Self.started("job-\(index)")) }
        let (old, cancelOld) = live.subscribe(after: 1)
        defer { cancelOld() }
        #expect(await Self.drain(old, expecting: 1).first?.type == "reset")
        let (future, cancelFuture) = live.subscribe(after: 1_000_000)
        defer { cancelFuture() }
        #expect(await Self.drain(future, expecting: 1).first?.type == "reset")
    }

    @Test func progressIsThrottledPerTransferAndCarriesTheSize() async throws {
        let events = PipelineEvents()
        let live = LiveEvents(events: events)
        let (stream, cancel) = live.subscribe(after: nil)
        defer { cancel() }
        events.emit(Self.started("a"))
        for bytes in 1...50 { events.emit(.progress(jobID: "a", bytes: Int64(bytes), total: 100)) }
        try await Task.sleep(for: PipelineEvents.progressInterval)
        for bytes in 51...60 { events.emit(.progress(jobID: "a", bytes: Int64(bytes), total: 100)) }
        events.emit(.progress(jobID: "b", bytes: 7, total: nil))
        let job = try TransferJob(name: "a.bin", location: "/", id: "a")
        events.emit(.outcome(.completed(.init(job: job, path: "/c/a.bin", bytes: 100, files: 1, duration: .seconds(1),
                                              finishedAt: Date()))))
        let entries = await Self.drain(stream, expecting: 4)
        #expect(entries.map(\.type) == ["started", "progress", "progress", "completed"],
                "none in the first 500 ms, then one per 500 ms: \(entries)")
        #expect(entries[1].data.contains(#""bytes":51"#) && entries[1].data.contains(#""total":100"#))
        #expect(entries[2].data.contains(#""job_id":"b""#))
        #expect(live.retries.isEmpty)
    }

    @Test func anEventIsValidJSONWhateverTheNamesHold() throws {
        let hostile = "q\"uote\\back\nline\u{1}ctl\u{7F}ünï😀</script>"
        let event = LiveEvents.Event(type: "dead_lettered", jobID: "id\"1", name: hostile, remote: "r", bytes: 5, total: nil,
                                     attempt: 2, errorClass: "no_such_file", errorMessage: "a \"b\"\t",
                                     time: Date(timeIntervalSince1970: 1_790_000_000))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(event.json.utf8)) as? [String: Any])
        #expect(object["name"] as? String == hostile)
        #expect(object["job_id"] as? String == "id\"1")
        #expect(object["error_message"] as? String == "a \"b\"\t")
        #expect(object["bytes"] as? Int == 5 && object["attempt"] as? Int == 2 && object["total"] == nil)
        #expect(object["time"] as? String == "2026-09-21T14:13:20Z")
        #expect(object["type"] as? String == "dead_lettered")
        #expect(!event.json.contains("\n"), "one line, as a data: field needs")
    }
}
