/// Tracks the messages of one partition handed to the application, and decides what may be committed.
///
/// Messages are handed out in offset order. Only the contiguous prefix of done offsets is committable:
/// with 5, 6 and 7 handed out and 6, 7 done, the commit position stays at 5 until 5 is done, so a crash
/// can cause redelivery but never loss.
struct OffsetTracker: Sendable, Equatable {
    /// Handed out and not yet done, ascending.
    private(set) var outstanding: [Int64] = []
    /// The offset after the highest one handed out, if any was.
    private var next: Int64?
    /// The last commit position: the first offset handed out until something is done, then the last
    /// position reported by ``markDone(_:)``.
    private(set) var storedPosition: Int64?

    /// Records that `offset` was handed to the application.
    mutating func handOut(_ offset: Int64) {
        if storedPosition == nil { storedPosition = offset }
        outstanding.append(offset)
        next = offset + 1
    }

    /// Records that `offset` is done.
    /// - Returns: the new commit position (the next offset to consume) when it advanced, else `nil`.
    mutating func markDone(_ offset: Int64) -> Int64? {
        guard let index = outstanding.firstIndex(of: offset) else { return nil }
        outstanding.remove(at: index)
        guard let position = outstanding.first ?? next, position > storedPosition ?? .min else { return nil }
        storedPosition = position
        return position
    }

    /// Whether every message handed out is done.
    var isDrained: Bool { outstanding.isEmpty }
}
