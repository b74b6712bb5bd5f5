import AsyncSupport
import CRdKafka
import Foundation

/// An `rd_kafka_t*` that may be passed between threads.
///
/// `@unchecked Sendable` is safe because librdkafka documents every function we call on a handle as
/// thread-safe; the handle's lifetime is owned by exactly one core object, which destroys it once, after
/// its poll thread has stopped and while holding the lock that every other caller checks first.
struct NativeHandle: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// A value guarded by an `NSCondition`, for state that a dedicated thread must be able to wait on.
///
/// `@unchecked Sendable` is safe because `state` is only read or written inside `condition.lock()`/`unlock()`
/// (every access goes through `withLock` or `wait`), so no two threads ever touch it at once.
final class ConditionLocked<State>: @unchecked Sendable {
    private let condition = NSCondition()
    private var state: State

    init(_ state: State) { self.state = state }

    /// Runs `body` with exclusive access to the state, then wakes every waiter.
    func withLock<R>(_ body: (inout State) throws -> R) rethrows -> R {
        condition.lock()
        defer {
            condition.broadcast()
            condition.unlock()
        }
        return try body(&state)
    }

    /// Blocks the calling (dedicated, non-cooperative) thread until `predicate` holds or `deadline` passes.
    /// - Returns: whether the predicate held.
    func wait(until predicate: (State) -> Bool, deadline: Date) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while !predicate(state) {
            if !condition.wait(until: deadline) { return predicate(state) }
        }
        return true
    }
}

/// Starts a dedicated thread for a blocking librdkafka poll loop, keeping it off the cooperative pool.
func startPollThread(name: String, _ body: @escaping @Sendable () -> Void) {
    let thread = Thread(block: body)
    thread.name = name
    thread.start()
}

extension Duration {
    /// Whole milliseconds, clamped to `Int32` for librdkafka timeouts.
    var milliseconds: Int32 { Int32(clamping: wholeMilliseconds) }
}

/// Copies a C partition list into Swift values.
func topicPartitions(_ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?) -> [TopicPartition] {
    guard let list, list.pointee.cnt > 0 else { return [] }
    return (0..<Int(list.pointee.cnt)).map { index in
        let element = list.pointee.elems[index]
        return TopicPartition(topic: String(cString: element.topic), partition: element.partition)
    }
}

/// Builds a C partition list; the caller destroys it with `rd_kafka_topic_partition_list_destroy`.
func makePartitionList(_ partitions: some Collection<TopicPartition>, offsets: [TopicPartition: Int64] = [:])
    -> UnsafeMutablePointer<rd_kafka_topic_partition_list_t>
{
    let list = rd_kafka_topic_partition_list_new(Int32(partitions.count))!
    for tp in partitions {
        let element = rd_kafka_topic_partition_list_add(list, tp.topic, tp.partition)!
        if let offset = offsets[tp] { element.pointee.offset = offset }
    }
    return list
}

/// The closing state of a client whose poll thread destroys the handle: `closing` asks the thread to stop,
/// `closed` says the handle is gone, and callers of `close()` wait in `waiters` until then.
struct Lifecycle {
    private(set) var closing = false
    private(set) var closed = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    /// Asks the poll thread to stop.
    mutating func requestClose() { closing = true }

    /// Asks the poll thread to stop and registers `waiter` to be resumed once it has.
    /// - Returns: `true` when already closed: the caller resumes `waiter` itself (outside the lock).
    mutating func awaitClosed(_ waiter: CheckedContinuation<Void, Never>) -> Bool {
        closing = true
        if closed { return true }
        waiters.append(waiter)
        return false
    }

    /// Marks the handle destroyed. - Returns: the waiters to resume (outside the lock).
    mutating func markClosed() -> [CheckedContinuation<Void, Never>] {
        closed = true
        defer { waiters = [] }
        return waiters
    }
}
