import Foundation
import KafkaClient
import Logging
import Synchronization

/// The consumer loop: reads jobs and retries from the group's partitions, runs up to `concurrency` of them at
/// once through the ``JobProcessor``, holds retries until their not-before time (pausing that partition, never
/// blocking other work), and marks each message done once its outcome is durable.
public final class ConsumerDaemon: Sendable {
    private let consumer: KafkaConsumer
    private let processor: JobProcessor
    private let topics: TopicNames
    private let concurrency: Int
    private let logger: Logger
    private let running = TaskSet()
    private let waiting = TaskSet()
    private let slots: Slots
    private let delayed = Mutex<[TopicPartition: Int]>([:])
    private let reader = Mutex<Task<Void, Never>?>(nil)

    /// A daemon over a subscribed consumer (jobs and retry topics).
    public init(consumer: KafkaConsumer, processor: JobProcessor, topics: TopicNames, concurrency: Int,
                logger: Logger) {
        self.consumer = consumer
        self.processor = processor
        self.topics = topics
        self.concurrency = concurrency
        self.logger = logger
        slots = Slots(concurrency)
    }

    /// Reads and processes messages until ``stop(grace:)`` or until the consumer closes.
    /// - Parameter onReady: called once, when the first partitions are assigned.
    public func run(onReady: @escaping @Sendable () -> Void) async {
        let events = consumer.events
        let watcher = Task { [logger] in
            var ready = false
            for await event in events {
                switch event {
                case .partitionsAssigned(let partitions):
                    logger.info("partitions assigned", metadata: ["kafka.partitions": "\(partitions.map(\.description).sorted())"])
                    if !ready {
                        ready = true
                        onReady()
                    }
                case .partitionsRevoked(let partitions):
                    logger.info("partitions revoked", metadata: ["kafka.partitions": "\(partitions.map(\.description).sorted())"])
                }
            }
        }
        let task = Task { await readLoop() }
        reader.withLock { $0 = task }
        await task.value
        watcher.cancel()
    }

    /// Stops reading, cancels retries still waiting for their time, lets running jobs finish within `grace`
    /// (then cancels them: they are redelivered later and resume), and closes the consumer, which commits what
    /// is done and leaves the group.
    public func stop(grace: Duration) async {
        reader.withLock { $0 }?.cancel()
        waiting.cancelAll()
        logger.notice("stopping: waiting for running jobs", metadata: ["jobs.running": "\(running.count)",
                                                                        "grace": "\(grace)"])
        if await !running.waitForAll(timeout: grace) {
            logger.warning("jobs still running after the grace period are abandoned; they will be redelivered",
                           metadata: ["jobs.running": "\(running.count)"])
            running.cancelAll()
            _ = await running.waitForAll(timeout: .seconds(5))
        }
        await consumer.close()
    }

    private func readLoop() async {
        for await message in consumer.messages {
            if let notBefore = JobHistory(message, retryTopic: topics.retry).notBefore, notBefore > Date() {
                hold(message, until: notBefore)
                continue
            }
            await slots.acquire()
            if Task.isCancelled {
                slots.release()
                break
            }
            running.spawn { [self] in await handle(message) }
        }
    }

    /// Processes (holding a slot), then publishes the outcome (without one) and marks the message done.
    private func handle(_ message: KafkaMessage) async {
        let outcome = await processor.process(message)
        slots.release()
        if let outcome, await processor.publish(outcome, of: message) { consumer.markDone(message) }
    }

    /// Waits for a retry's time without holding a slot; its partition is paused meanwhile so the consumer does
    /// not buffer more retries that would wait too.
    private func hold(_ message: KafkaMessage, until time: Date) {
        let partition = message.topicPartition
        let first = delayed.withLock { counts in
            counts[partition, default: 0] += 1
            return counts[partition] == 1
        }
        if first { consumer.pause([partition]) }
        logger.debug("retry waits for its time", metadata: ["kafka.partition": "\(partition)",
                                                           "kafka.offset": "\(message.offset)",
                                                           "job.not_before": "\(time.formatted(.iso8601))"])
        waiting.spawn { [self] in
            let delay = time.timeIntervalSinceNow
            if delay > 0 { try? await Task.sleep(for: .milliseconds(Int64(delay * 1000))) }
            let last = delayed.withLock { counts in
                counts[partition, default: 1] -= 1
                return counts[partition] == 0
            }
            if last { consumer.resume([partition]) }
            guard !Task.isCancelled else { return }
            await slots.acquire()
            guard !Task.isCancelled else {
                slots.release()
                return
            }
            // Now a running job: shutdown gives it the grace period like any other.
            running.spawn { [self] in await handle(message) }
        }
    }
}

/// A counting semaphore for async tasks.
final class Slots: Sendable {
    private struct State {
        var free: Int
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state: Mutex<State>

    init(_ count: Int) { state = Mutex(State(free: count)) }

    func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let acquired = state.withLock { state in
                if state.free > 0 {
                    state.free -= 1
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if acquired { continuation.resume() }
        }
    }

    func release() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.free += 1
                return nil
            }
            return state.waiters.removeFirst()
        }
        waiter?.resume()
    }
}

/// Unstructured tasks that can be counted, awaited with a time-out and cancelled together.
final class TaskSet: Sendable {
    private struct State {
        var tasks: [Int: Task<Void, Never>] = [:]
        var next = 0
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    var count: Int { state.withLock { $0.tasks.count } }

    func spawn(_ body: @escaping @Sendable () async -> Void) {
        state.withLock { state in
            let id = state.next
            state.next += 1
            state.tasks[id] = Task {
                await body()
                self.finished(id)
            }
        }
    }

    private func finished(_ id: Int) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.tasks[id] = nil
            guard state.tasks.isEmpty else { return [] }
            defer { state.idleWaiters = [] }
            return state.idleWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func cancelAll() {
        for task in state.withLock({ Array($0.tasks.values) }) { task.cancel() }
    }

    /// - Returns: whether every task finished within `timeout`.
    func waitForAll(timeout: Duration) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let idle = self.state.withLock { state in
                        if state.tasks.isEmpty { return true }
                        state.idleWaiters.append(continuation)
                        return false
                    }
                    if idle { continuation.resume() }
                }
                return true
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            if !first {
                // Wake the idle waiter so the group can end; it reports nothing.
                let waiters = state.withLock { state in
                    defer { state.idleWaiters = [] }
                    return state.idleWaiters
                }
                for waiter in waiters { waiter.resume() }
            }
            return first
        }
    }
}
