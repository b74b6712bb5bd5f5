import AsyncAlgorithms
import Foundation
import KafkaClient
import Logging
import ServiceLifecycle
import Synchronization

/// The consumer loop, as a swift-service-lifecycle `Service`: reads jobs and retries from the group's partitions,
/// runs up to `concurrency` of them at once through the ``JobProcessor``, holds retries until their not-before
/// time (pausing that partition, never holding a slot), publishes each ``Outcome`` (``OutcomePublisher``, beside
/// the slots) and marks the message done once its outcome is durable.
///
/// On graceful shutdown it stops reading, drops the retries still waiting for their time, and returns once the
/// running jobs have finished; cancellation (the service group's grace is over, or a second signal) abandons them:
/// they are redelivered later and resume.
public final class ConsumerDaemon: Service {
    /// How a run ended.
    public enum Ending: Sendable, Equatable {
        /// Every job that started finished (or the consumer closed).
        case drained
        /// Jobs still running when the grace period ended were abandoned.
        case graceExpired
        /// Cancelled before the grace period ended (a second signal): running jobs were abandoned.
        case aborted
    }

    private let consumer: KafkaConsumer
    private let processor: JobProcessor
    private let publisher: OutcomePublisher
    private let retryTopic: String
    private let concurrency: Int
    private let grace: Duration
    private let logger: Logger
    private let onReady: @Sendable () -> Void
    private let readiness: ConsumerReadiness
    private let running = Atomic<Int>(0)
    private let paused = Mutex<[TopicPartition: Int]>([:])
    private let shutdown = Mutex<(requested: ContinuousClock.Instant?, ending: Ending?)>((nil, nil))

    /// A daemon over a subscribed consumer (jobs and retry topics).
    /// - Parameters:
    ///   - grace: the service group's graceful shutdown limit, to tell its cancellation from an abort.
    ///   - onReady: called once, when the first partitions are assigned.
    ///   - readiness: kept up to date with the partitions assigned; emptied when the run ends.
    public init(consumer: KafkaConsumer, processor: JobProcessor, publisher: OutcomePublisher, retryTopic: String,
                concurrency: Int, grace: Duration, logger: Logger, onReady: @escaping @Sendable () -> Void = {},
                readiness: ConsumerReadiness = ConsumerReadiness()) {
        self.consumer = consumer
        self.processor = processor
        self.publisher = publisher
        self.retryTopic = retryTopic
        self.concurrency = concurrency
        self.grace = grace
        self.logger = logger
        self.onReady = onReady
        self.readiness = readiness
    }

    /// How the last run ended (`nil` while running).
    public var ending: Ending? { shutdown.withLock { $0.ending } }

    /// Jobs being processed now.
    public var runningJobs: Int { running.load(ordering: .relaxed) }

    private enum Work: Sendable {
        /// Read from the consumer.
        case delivered(KafkaMessage)
        /// A held retry whose time has come.
        case due(KafkaMessage)
    }

    /// Runs until graceful shutdown (then drains) or until the consumer closes.
    public func run() async {
        let (settled, settle) = AsyncStream.makeStream(of: (Outcome, KafkaMessage).self)
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                // Publishing does not hold a slot: outcomes go to their own tasks.
                group.addTask { [publisher, consumer] in
                    await withDiscardingTaskGroup { publishing in
                        for await (outcome, message) in settled {
                            publishing.addTask { if await publisher.publish(outcome, of: message) { consumer.markDone(message) } }
                        }
                    }
                }
                await dispatch(settle)
                settle.finish()
            }
        } onGracefulShutdown: { [self] in
            shutdown.withLock { $0.requested = .now }
            logger.notice("stopping: waiting for running jobs", metadata: ["jobs.running": "\(runningJobs)", "grace": "\(grace)"])
        }
        let ending: Ending
        if Task.isCancelled {
            let requested = shutdown.withLock { $0.requested }
            ending = requested.map { ContinuousClock.now - $0 >= grace - .milliseconds(250) } == true ? .graceExpired : .aborted
            logger.warning("running jobs were abandoned; they will be redelivered", metadata: ["why": "\(ending)"])
        } else {
            ending = .drained
        }
        readiness.reset()
        shutdown.withLock { $0.ending = ending }
    }

    /// Reads work and starts jobs, at most `concurrency` at once, until reading ends; returns once they finished.
    private func dispatch(_ settle: AsyncStream<(Outcome, KafkaMessage)>.Continuation) async {
        let work = AsyncChannel<Work>()
        await withTaskGroup(of: Void.self) { jobs in
            var started = 0
            await withTaskGroup(of: Void.self) { helpers in
                helpers.addTask { await self.watchPartitions() }
                helpers.addTask {
                    // Reading stops at graceful shutdown (one cancellation for the whole loop: no per-message merge
                    // with the shutdown signal). The channel hands one message at a time: the consumer's buffer is
                    // the only queue.
                    try? await cancelWhenGracefulShutdown {
                        for await message in self.consumer.messages { await work.send(.delivered(message)) }
                    }
                    work.finish()
                }
                for await item in work {
                    let message: KafkaMessage
                    switch item {
                    case .delivered(let delivered):
                        if let notBefore = JobHistory(delivered, retryTopic: retryTopic).notBefore, notBefore > Date() {
                            helpers.addTask { await self.hold(delivered, until: notBefore, then: work) }
                            continue
                        }
                        message = delivered
                    case .due(let due):
                        message = due
                    }
                    if started >= concurrency {
                        await jobs.next()
                        started -= 1
                    }
                    // Taken but not started: redelivered later.
                    guard !Task.isShuttingDownGracefully && !Task.isCancelled else { continue }
                    started += 1
                    jobs.addTask { await self.handle(message, settle) }
                }
                helpers.cancelAll()  // held retries and the partition watcher
            }
        }
    }

    /// Processes one message (holding a slot) and hands its outcome to publishing.
    private func handle(_ message: KafkaMessage, _ settle: AsyncStream<(Outcome, KafkaMessage)>.Continuation) async {
        running.add(1, ordering: .relaxed)
        defer { running.subtract(1, ordering: .relaxed) }
        guard let outcome = await processor.process(message) else { return }
        settle.yield((outcome, message))
    }

    /// Waits for a retry's time without holding a slot; its partition is paused meanwhile so the consumer does
    /// not buffer more retries that would wait too. Graceful shutdown drops it (it is redelivered later).
    private func hold(_ message: KafkaMessage, until time: Date, then work: AsyncChannel<Work>) async {
        let partition = message.topicPartition
        let first = paused.withLock { counts in
            counts[partition, default: 0] += 1
            return counts[partition] == 1
        }
        if first { consumer.pause([partition]) }
        logger.debug("retry waits for its time", metadata: ["kafka.partition": "\(partition)",
                                                           "kafka.offset": "\(message.offset)",
                                                           "job.not_before": "\(time.formatted(.iso8601))"])
        let delay = Duration.milliseconds(Int64(max(0, time.timeIntervalSinceNow) * 1000))
        let waited: Void? = try? await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
        let last = paused.withLock { counts in
            counts[partition, default: 1] -= 1
            return counts[partition] == 0
        }
        if last { consumer.resume([partition]) }
        guard waited != nil, !Task.isCancelled else { return }
        await work.send(.due(message))
    }

    /// Logs assignments and revocations and keeps ``ConsumerReadiness`` up to date; calls `onReady` at the first
    /// assignment.
    private func watchPartitions() async {
        var ready = false
        for await event in consumer.events {
            switch event {
            case .partitionsAssigned(let partitions):
                logger.info("partitions assigned", metadata: ["kafka.partitions": "\(partitions.map(\.description).sorted())"])
                readiness.assign(partitions)
                if !ready {
                    ready = true
                    onReady()
                }
            case .partitionsRevoked(let partitions):
                logger.info("partitions revoked", metadata: ["kafka.partitions": "\(partitions.map(\.description).sorted())"])
                readiness.revoke(partitions)
            }
        }
    }
}
