import Testing
@testable import KafkaClient

@Suite struct OffsetTrackerTests {
    @Test func commitsOnlyTheContiguousDonePrefix() {
        var tracker = OffsetTracker()
        for offset in Int64(5)...8 { tracker.handOut(offset) }
        #expect(tracker.markDone(6) == nil)
        #expect(tracker.markDone(8) == nil)
        #expect(tracker.markDone(5) == 7)
        #expect(tracker.markDone(7) == 9)
        #expect(tracker.isDrained)
    }

    @Test func ignoresUnknownAndRepeatedOffsets() {
        var tracker = OffsetTracker()
        tracker.handOut(0)
        #expect(tracker.markDone(42) == nil)
        #expect(tracker.markDone(0) == 1)
        #expect(tracker.markDone(0) == nil)
    }

    @Test func gapsInOffsetsDoNotBlockProgress() {
        // Compacted topics and transaction markers leave holes in offsets.
        var tracker = OffsetTracker()
        tracker.handOut(10)
        tracker.handOut(13)
        #expect(tracker.markDone(10) == 13)
        #expect(!tracker.isDrained)
        #expect(tracker.markDone(13) == 14)
    }
}
