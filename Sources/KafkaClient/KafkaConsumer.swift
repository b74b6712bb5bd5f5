import CRdKafka
import Foundation
import Logging
import ServiceLifecycle

/// Settings for a ``KafkaConsumer``.
public struct KafkaConsumerConfiguration: Sendable {
    /// Comma-separated `host:port` list of bootstrap brokers.
    public var bootstrapServers: String
    /// The consumer group (`group.id`).
    public var groupID: String
    /// Topics to subscribe to.
    public var topics: [String]
    /// Extra librdkafka properties (SASL/SSL, session timeouts, assignment strategy). Offset storage is
    /// always manual (`enable.auto.offset.store=false`) whatever these say.
    public var properties: [String: String]
    /// Where a group without committed offsets starts: `earliest` (default) or `latest`.
    public var autoOffsetReset: String
    /// How often marked offsets are committed in the background. Default 1 s.
    public var commitInterval: Duration
    /// Messages fetched ahead of the application; above this the consumer pauses fetching. Default 256.
    public var bufferCapacity: Int
    /// On revocation, how long to wait for handed-out messages of the revoked partitions to be marked done
    /// before committing and letting them go. Default 10 s.
    public var revocationDrainTimeout: Duration

    /// Creates a configuration.
    public init(bootstrapServers: String, groupID: String, topics: [String], properties: [String: String] = [:],
                autoOffsetReset: String = "earliest", commitInterval: Duration = .seconds(1),
                bufferCapacity: Int = 256, revocationDrainTimeout: Duration = .seconds(10)) {
        self.bootstrapServers = bootstrapServers
        self.groupID = groupID
        self.topics = topics
        self.properties = properties
        self.autoOffsetReset = autoOffsetReset
        self.commitInterval = commitInterval
        self.bufferCapacity = bufferCapacity
        self.revocationDrainTimeout = revocationDrainTimeout
    }
}

/// A change in the partitions this consumer owns.
public enum KafkaConsumerEvent: Sendable, Equatable {
    /// These partitions were assigned to this consumer.
    case partitionsAssigned([TopicPartition])
    /// These partitions are being taken away. Handed-out messages of them should be finished and marked
    /// done within `revocationDrainTimeout`; after that their offsets are committed and they are gone.
    case partitionsRevoked([TopicPartition])
}

/// A member of a consumer group with manual offset control.
///
/// Read ``messages`` (one reader at a time), process each message, then ``markDone(_:)`` it: only the
/// contiguous prefix of done offsets per partition is committed (every `commitInterval`, on revocation and on
/// close), so a crash redelivers unfinished messages rather than losing them. A dedicated thread polls
/// librdkafka; rebalance callbacks run there too. Fetching pauses when `bufferCapacity` messages wait unread.
public final class KafkaConsumer: Sendable, Service {
    private let core: ConsumerCore

    /// Creates a consumer, subscribes to the configured topics and starts polling.
    /// - Throws: ``KafkaError/Code/configuration`` when a property is rejected or the subscription fails.
    public init(configuration: KafkaConsumerConfiguration, logger: Logger) throws(KafkaError) {
        core = try ConsumerCore(configuration: configuration, logger: logger)
        let core = self.core
        startPollThread(name: "kafkasync-consumer") { core.pollLoop() }
    }

    deinit { core.requestClose() }

    /// The consumed messages. Ends when the consumer is closed or the reading task is cancelled.
    public var messages: KafkaConsumerMessages { KafkaConsumerMessages(core: core) }

    /// Partition assignment and revocation events (the newest 1,000 are kept if nobody reads them).
    public var events: AsyncStream<KafkaConsumerEvent> { core.events }

    /// The partitions currently assigned to this consumer.
    public var assignment: Set<TopicPartition> { core.state.withLock { $0.assignment } }

    /// Marks a handed-out message as processed; its offset becomes committable once every earlier message of
    /// its partition is done too. Marking a message of a partition no longer owned does nothing.
    public func markDone(_ message: KafkaMessage) {
        core.markDone(message.topicPartition, message.offset)
    }

    /// Stops fetching from these partitions until ``resume(_:)``.
    public func pause(_ partitions: [TopicPartition]) {
        core.state.withLock { $0.userPaused.formUnion(partitions) }
        core.applyPauseState()
    }

    /// Resumes fetching from these partitions.
    public func resume(_ partitions: [TopicPartition]) {
        core.state.withLock { $0.userPaused.subtract(partitions) }
        core.applyPauseState()
    }

    /// Commits every committable offset now and waits for the broker's answer.
    /// - Throws: ``KafkaError`` when the commit fails, or `closed`.
    public func commit() async throws(KafkaError) {
        try await core.commitNow()
    }

    /// Commits what is done, leaves the group and releases the client. Idempotent.
    public func close() async {
        await core.close()
    }

    /// Runs until graceful shutdown or cancellation, then closes (swift-service-lifecycle).
    public func run() async throws {
        try? await gracefulShutdown()
        await close()
    }
}

/// The messages of a ``KafkaConsumer`` as an `AsyncSequence`.
public struct KafkaConsumerMessages: AsyncSequence, Sendable {
    public typealias Element = KafkaMessage
    let core: ConsumerCore

    public func makeAsyncIterator() -> Iterator { Iterator(core: core) }

    /// Waits for the next message.
    public struct Iterator: AsyncIteratorProtocol {
        let core: ConsumerCore
        public mutating func next() async -> KafkaMessage? { await core.nextMessage() }
    }
}

struct ConsumerState {
    var buffer: [KafkaMessage] = []
    var waiter: CheckedContinuation<KafkaMessage?, Never>?
    var trackers: [TopicPartition: OffsetTracker] = [:]
    var assignment: Set<TopicPartition> = []
    var userPaused: Set<TopicPartition> = []
    /// What librdkafka has paused right now.
    var nativePaused: Set<TopicPartition> = []
    /// Fetching is paused because the buffer is full.
    var flowPaused = false
    var commitRequests: [CheckedContinuation<KafkaError?, Never>] = []
    var lifecycle = Lifecycle()

    /// Takes the next buffered message and records it as handed out.
    mutating func takeMessage() -> KafkaMessage? {
        guard !buffer.isEmpty else { return nil }
        let message = buffer.removeFirst()
        trackers[message.topicPartition, default: OffsetTracker()].handOut(message.offset)
        return message
    }
}

/// What librdkafka's callbacks need; the consumer handle's opaque. Created before the handle, kept alive by
/// ``ConsumerCore`` (and so by its poll thread) until after `rd_kafka_destroy`.
final class ConsumerContext: LoggingContext {
    let logger: Logger
    let state = ConditionLocked(ConsumerState())
    let eventSink: AsyncStream<KafkaConsumerEvent>.Continuation
    let drainTimeout: Duration

    init(logger: Logger, eventSink: AsyncStream<KafkaConsumerEvent>.Continuation, drainTimeout: Duration) {
        self.logger = logger
        self.eventSink = eventSink
        self.drainTimeout = drainTimeout
    }
}

/// Owns the consumer's `rd_kafka_t` and its poll thread.
final class ConsumerCore: Sendable {
    let context: ConsumerContext
    let events: AsyncStream<KafkaConsumerEvent>
    private let handle: NativeHandle
    private let bufferCapacity: Int

    var state: ConditionLocked<ConsumerState> { context.state }
    private var logger: Logger { context.logger }

    init(configuration: KafkaConsumerConfiguration, logger: Logger) throws(KafkaError) {
        guard !configuration.topics.isEmpty else { throw .configuration("a consumer needs at least one topic") }
        guard configuration.bufferCapacity > 0 else { throw .configuration("bufferCapacity must be at least 1") }
        let (events, eventSink) = AsyncStream.makeStream(of: KafkaConsumerEvent.self,
                                                         bufferingPolicy: .bufferingNewest(1000))
        self.events = events
        self.bufferCapacity = configuration.bufferCapacity
        context = ConsumerContext(logger: logger, eventSink: eventSink,
                                  drainTimeout: configuration.revocationDrainTimeout)
        var properties = [("auto.offset.reset", configuration.autoOffsetReset)]
        properties += configuration.properties.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        properties += [
            ("bootstrap.servers", configuration.bootstrapServers),
            ("group.id", configuration.groupID),
            ("enable.auto.offset.store", "false"),
            ("enable.auto.commit", "true"),
            ("auto.commit.interval.ms", String(configuration.commitInterval.milliseconds)),
        ]
        let conf = try NativeConfiguration.make(properties)
        rd_kafka_conf_set_log_cb(conf, kafkaLogCallback)
        rd_kafka_conf_set_rebalance_cb(conf, consumerRebalanceCallback)
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(context).toOpaque())
        handle = NativeHandle(pointer: try NativeConfiguration.newHandle(RD_KAFKA_CONSUMER, conf))
        rd_kafka_poll_set_consumer(handle.pointer)
        let topics = rd_kafka_topic_partition_list_new(Int32(configuration.topics.count))!
        defer { rd_kafka_topic_partition_list_destroy(topics) }
        for topic in configuration.topics {
            rd_kafka_topic_partition_list_add(topics, topic, RD_KAFKA_PARTITION_UA)
        }
        let err = rd_kafka_subscribe(handle.pointer, topics)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            rd_kafka_destroy(handle.pointer)
            throw KafkaError(err, context: "could not subscribe to \(configuration.topics.joined(separator: ", "))")
        }
    }

    // MARK: Reading

    func nextMessage() async -> KafkaMessage? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<KafkaMessage?, Never>) in
                let immediate = state.withLock { state -> KafkaMessage?? in
                    if let message = state.takeMessage() { return .some(message) }
                    // Cancellation is flagged before `onCancel` runs, so checking it under the lock cannot miss it.
                    if state.lifecycle.closing || Task.isCancelled { return .some(nil) }
                    state.waiter = continuation
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let waiter = state.withLock { state in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: nil)
        }
    }

    /// Hands a polled message to a waiting reader, or buffers it.
    private func deliver(_ message: KafkaMessage) {
        let handOver = state.withLock { state -> (CheckedContinuation<KafkaMessage?, Never>, KafkaMessage?)? in
            guard state.assignment.contains(message.topicPartition) else { return nil }
            state.buffer.append(message)
            guard let waiter = state.waiter else { return nil }
            state.waiter = nil
            // The oldest buffered message goes first, to keep each partition in order.
            return (waiter, state.takeMessage())
        }
        if let (waiter, next) = handOver { waiter.resume(returning: next) }
    }

    // MARK: Offsets

    func markDone(_ partition: TopicPartition, _ offset: Int64) {
        state.withLock { state in
            guard !state.lifecycle.closed, let position = state.trackers[partition]?.markDone(offset) else { return }
            // Under the lock so the handle cannot be destroyed meanwhile; offsets_store does not block.
            let list = makePartitionList([partition], offsets: [partition: position])
            defer { rd_kafka_topic_partition_list_destroy(list) }
            let err = rd_kafka_offsets_store(handle.pointer, list)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                logger.debug("could not store offset", metadata: [
                    "kafka.partition": "\(partition)", "kafka.offset": "\(position)",
                    "kafka.error": "\(KafkaError(err))",
                ])
            }
        }
    }

    func commitNow() async throws(KafkaError) {
        let error = await withCheckedContinuation { (continuation: CheckedContinuation<KafkaError?, Never>) in
            let refused = state.withLock { state -> Bool in
                if state.lifecycle.closing { return true }
                state.commitRequests.append(continuation)
                return false
            }
            if refused { continuation.resume(returning: .closed("the consumer")) }
        }
        if let error { throw error }
    }

    /// Synchronously commits the stored offsets. Poll thread only.
    private func commitStored() -> KafkaError? {
        let err = rd_kafka_commit(handle.pointer, nil, 0)
        if err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET { return nil }
        return KafkaError(err, context: "offset commit failed")
    }

    // MARK: Flow control

    /// Makes librdkafka's paused set match what the application and the buffer ask for.
    func applyPauseState() {
        state.withLock { state in
            guard !state.lifecycle.closed else { return }
            if state.buffer.count >= bufferCapacity {
                state.flowPaused = true
            } else if state.buffer.count <= bufferCapacity / 2 {
                state.flowPaused = false
            }
            let wanted = state.flowPaused ? state.assignment : state.userPaused.intersection(state.assignment)
            let toPause = wanted.subtracting(state.nativePaused)
            let toResume = state.nativePaused.subtracting(wanted)
            // Under the lock so the handle cannot be destroyed meanwhile; both calls are asynchronous.
            if !toPause.isEmpty {
                let list = makePartitionList(toPause)
                rd_kafka_pause_partitions(handle.pointer, list)
                rd_kafka_topic_partition_list_destroy(list)
            }
            if !toResume.isEmpty {
                let list = makePartitionList(toResume)
                rd_kafka_resume_partitions(handle.pointer, list)
                rd_kafka_topic_partition_list_destroy(list)
            }
            state.nativePaused = wanted
        }
    }

    // MARK: Poll thread

    func pollLoop() {
        while true {
            let (closing, commitRequests) = state.withLock { state in
                defer { state.commitRequests = [] }
                return (state.lifecycle.closing, state.commitRequests)
            }
            if !commitRequests.isEmpty {
                let error = commitStored()
                commitRequests.forEach { $0.resume(returning: error) }
            }
            if closing { break }
            applyPauseState()
            guard let message = rd_kafka_consumer_poll(handle.pointer, 100) else { continue }
            defer { rd_kafka_message_destroy(message) }
            let err = message.pointee.err
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                if err != RD_KAFKA_RESP_ERR__PARTITION_EOF {
                    logger.info("consumer error", metadata: ["kafka.error": "\(KafkaError(err))"])
                }
                continue
            }
            deliver(KafkaMessage(copying: message))
        }
        if let error = commitStored() {
            logger.info("final commit failed", metadata: ["kafka.error": "\(error)"])
        }
        // Serves the final revocation and leaves the group.
        rd_kafka_consumer_close(handle.pointer)
        let (waiter, closeWaiters) = state.withLock { state in
            rd_kafka_destroy(handle.pointer)
            defer {
                state.waiter = nil
                state.buffer = []
            }
            return (state.waiter, state.lifecycle.markClosed())
        }
        context.eventSink.finish()
        waiter?.resume(returning: nil)
        closeWaiters.forEach { $0.resume() }
    }

    func requestClose() {
        state.withLock { $0.lifecycle.requestClose() }
    }

    func close() async {
        await withCheckedContinuation { continuation in
            if state.withLock({ $0.lifecycle.awaitClosed(continuation) }) { continuation.resume() }
        }
    }
}

/// Rebalance callback (`rebalance_cb`), called on the consumer's poll thread inside `rd_kafka_consumer_poll`
/// or `rd_kafka_consumer_close`. The opaque is the ``ConsumerContext``.
func consumerRebalanceCallback(_ rk: OpaquePointer?, _ err: rd_kafka_resp_err_t,
                               _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?,
                               _ opaque: UnsafeMutableRawPointer?) {
    guard let rk, let opaque else { return }
    let context = Unmanaged<ConsumerContext>.fromOpaque(opaque).takeUnretainedValue()
    context.rebalance(rk, err, partitions)
}

extension ConsumerContext {
    func rebalance(_ rk: OpaquePointer, _ err: rd_kafka_resp_err_t,
                   _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?) {
        let list = topicPartitions(partitions)
        let cooperative = String(cString: rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE"
        switch err {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            if cooperative {
                if let error = rd_kafka_incremental_assign(rk, partitions) {
                    logger.info("incremental assign failed", metadata: ["kafka.error": "\(KafkaError(consuming: error))"])
                }
            } else {
                rd_kafka_assign(rk, partitions)
            }
            state.withLock { state in
                state.assignment.formUnion(list)
                for partition in list { state.trackers[partition] = OffsetTracker() }
            }
            logger.debug("partitions assigned", metadata: ["kafka.partitions": "\(list)"])
            eventSink.yield(.partitionsAssigned(list))
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            revoke(list)
            if cooperative {
                if let error = rd_kafka_incremental_unassign(rk, partitions) {
                    logger.info("incremental unassign failed", metadata: ["kafka.error": "\(KafkaError(consuming: error))"])
                }
            } else {
                rd_kafka_assign(rk, nil)
            }
        default:
            logger.info("rebalance error", metadata: ["kafka.error": "\(KafkaError(err))"])
            revoke(Array(state.withLock { $0.assignment }), commit: false)
            rd_kafka_assign(rk, nil)
        }

        func revoke(_ revoked: [TopicPartition], commit: Bool = true) {
            let revokedSet = Set(revoked)
            eventSink.yield(.partitionsRevoked(revoked))
            let closing = state.withLock { state in
                state.buffer.removeAll { revokedSet.contains($0.topicPartition) }
                return state.lifecycle.closing
            }
            if !closing {
                let deadline = Date().addingTimeInterval(Double(drainTimeout.milliseconds) / 1000)
                let drained = state.wait(until: { state in
                    revoked.allSatisfy { state.trackers[$0]?.isDrained ?? true }
                }, deadline: deadline)
                if !drained { logger.info("revocation drain timed out; unfinished messages will be redelivered") }
            }
            if commit && rd_kafka_assignment_lost(rk) == 0 {
                let err = rd_kafka_commit(rk, nil, 0)
                if err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET {
                    logger.info("commit on revocation failed", metadata: ["kafka.error": "\(KafkaError(err))"])
                }
            }
            state.withLock { state in
                state.assignment.subtract(revoked)
                state.nativePaused.subtract(revoked)
                for partition in revoked { state.trackers[partition] = nil }
            }
            logger.debug("partitions revoked", metadata: ["kafka.partitions": "\(revoked)"])
        }
    }
}

extension KafkaMessage {
    /// Copies a C message into Swift values (before the C message is destroyed).
    init(copying message: UnsafeMutablePointer<rd_kafka_message_t>) {
        let m = message.pointee
        topic = String(cString: rd_kafka_topic_name(m.rkt))
        partition = m.partition
        offset = m.offset
        key = m.key.map { Array(UnsafeRawBufferPointer(start: $0, count: m.key_len)) }
        value = m.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: m.len)) } ?? []
        var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let timestamp = rd_kafka_message_timestamp(message, &timestampType)
        timestampMilliseconds = timestampType == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : timestamp
        headers = []
        var list: OpaquePointer?
        if rd_kafka_message_headers(message, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list {
            var index = 0
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var size = 0
            while rd_kafka_header_get_all(list, index, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                let bytes = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) }
                headers.append(KafkaHeader(name: name.map { String(cString: $0) } ?? "", value: bytes))
                index += 1
            }
        }
    }
}
