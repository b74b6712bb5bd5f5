import CRdKafka
import Logging
import Synchronization

/// Settings for a ``KafkaProducer``.
public struct KafkaProducerConfiguration: Sendable {
    /// Comma-separated `host:port` list of bootstrap brokers.
    public var bootstrapServers: String
    /// Extra librdkafka properties (SASL/SSL, tuning), applied before the producer's fixed guarantees.
    public var properties: [String: String]
    /// How long librdkafka keeps retrying one message before failing it, unless `properties` sets
    /// `message.timeout.ms`. Default 5 minutes.
    public var messageTimeout: Duration
    /// How long ``KafkaProducer/close()`` waits for queued messages to be delivered. Default 30 s.
    public var closeTimeout: Duration
    /// Topics the producer will send to. Their metadata is fetched as it starts: otherwise the first message to
    /// each waits for librdkafka's once-a-second scan of unknown topics.
    public var topics: [String]

    /// Creates a configuration.
    public init(bootstrapServers: String, properties: [String: String] = [:],
                messageTimeout: Duration = .seconds(300), closeTimeout: Duration = .seconds(30), topics: [String] = []) {
        self.bootstrapServers = bootstrapServers
        self.properties = properties
        self.messageTimeout = messageTimeout
        self.closeTimeout = closeTimeout
        self.topics = topics
    }
}

/// An idempotent Kafka producer (`enable.idempotence=true`, `acks=all`).
///
/// ``send(_:)`` suspends until the broker acknowledges the message and returns its partition and offset.
/// A dedicated thread serves librdkafka's delivery callbacks; the cooperative pool never blocks.
/// Call ``close()`` to flush; dropping the last reference also flushes, in the background.
public final class KafkaProducer: Sendable {
    private let core: ProducerCore

    /// Creates a producer and starts its delivery thread.
    /// - Throws: ``KafkaError/Code/configuration`` when a property is rejected.
    public init(configuration: KafkaProducerConfiguration, logger: Logger) throws(KafkaError) {
        core = try ProducerCore(configuration: configuration, logger: logger)
        let core = self.core
        startPollThread(name: "kafkasync-producer") { core.pollLoop() }
    }

    deinit { core.requestClose() }

    /// Sends one message and waits for the broker's acknowledgement.
    /// - Returns: where the message was stored.
    /// - Throws: ``KafkaError``: `closed` after ``close()``, `timedOut` when delivery did not succeed within
    ///   `messageTimeout`, and others from the broker. A full local queue is waited out, not thrown.
    public func send(_ message: KafkaOutgoingMessage) async throws(KafkaError) -> KafkaDeliveryReport {
        var backoff = Duration.milliseconds(1)
        while true {
            let result = await withCheckedContinuation { continuation in
                let box = DeliveryBox(continuation)
                if let error = core.enqueue(message, box) {
                    continuation.resume(returning: .failure(error))
                }
            }
            if case .failure(let error) = result, error.code == .queueFull {
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .milliseconds(100))
                continue
            }
            return try result.get()
        }
    }

    /// Flushes queued messages (up to `closeTimeout`), fails any still undelivered with `purged`,
    /// and releases the client. Idempotent.
    public func close() async {
        await core.close()
    }
}

/// Carries one message's continuation through librdkafka as its opaque pointer.
final class DeliveryBox: Sendable {
    let continuation: CheckedContinuation<Result<KafkaDeliveryReport, KafkaError>, Never>
    init(_ continuation: CheckedContinuation<Result<KafkaDeliveryReport, KafkaError>, Never>) {
        self.continuation = continuation
    }
}

/// Delivery report callback (`dr_msg_cb`), called on the producer's poll thread.
/// Each message's `_private` is a retained ``DeliveryBox``, released here exactly once.
func producerDeliveryCallback(_ rk: OpaquePointer?, _ message: UnsafePointer<rd_kafka_message_t>?,
                              _ opaque: UnsafeMutableRawPointer?) {
    guard let message, let boxPointer = message.pointee._private else { return }
    let box = Unmanaged<DeliveryBox>.fromOpaque(boxPointer).takeRetainedValue()
    let err = message.pointee.err
    if err == RD_KAFKA_RESP_ERR_NO_ERROR {
        let topic = String(cString: rd_kafka_topic_name(message.pointee.rkt))
        box.continuation.resume(returning: .success(
            KafkaDeliveryReport(topic: topic, partition: message.pointee.partition, offset: message.pointee.offset)))
    } else {
        box.continuation.resume(returning: .failure(KafkaError(err, context: "delivery failed")))
    }
}

/// Owns the producer's `rd_kafka_t` and its poll thread.
final class ProducerCore: Sendable {

    private let logger: Logger
    private let logSink: LogSink
    private let handle: NativeHandle
    private let closeTimeout: Duration
    private let topics: [String]
    private let state = Mutex(Lifecycle())

    init(configuration: KafkaProducerConfiguration, logger: Logger) throws(KafkaError) {
        self.logger = logger
        self.logSink = LogSink(logger: logger)
        self.closeTimeout = configuration.closeTimeout
        self.topics = configuration.topics
        var properties = configuration.properties.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        if configuration.properties["message.timeout.ms"] == nil {
            properties.append(("message.timeout.ms", String(configuration.messageTimeout.milliseconds)))
        }
        properties += [
            ("bootstrap.servers", configuration.bootstrapServers),
            ("enable.idempotence", "true"),
            ("acks", "all"),
        ]
        let conf = try NativeConfiguration.make(properties)
        rd_kafka_conf_set_dr_msg_cb(conf, producerDeliveryCallback)
        rd_kafka_conf_set_log_cb(conf, kafkaLogCallback)
        // Unretained: `logSink` is a stored property, so it outlives the handle destroyed in `pollLoop`.
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(logSink).toOpaque())
        handle = NativeHandle(pointer: try NativeConfiguration.newHandle(RD_KAFKA_PRODUCER, conf))
    }

    /// Enqueues a message under the lock (so the handle cannot be destroyed meanwhile).
    /// - Returns: an error when the message was not enqueued; then `box` was not retained.
    func enqueue(_ message: KafkaOutgoingMessage, _ box: DeliveryBox) -> KafkaError? {
        state.withLock { lifecycle -> KafkaError? in
            if lifecycle.closing { return .closed("the producer") }
            let opaque = Unmanaged.passRetained(box).toOpaque()
            let headers = makeHeaders(message.headers)
            let error = message.topic.withCString { topic in
                message.value.withUnsafeBytes { value in
                    withOptionalBytes(message.key) { key in
                        var args: [rd_kafka_vu_t] = []
                        args.append(vu(RD_KAFKA_VTYPE_TOPIC) { $0.u.cstr = topic })
                        args.append(vu(RD_KAFKA_VTYPE_VALUE) {
                            $0.u.mem.ptr = UnsafeMutableRawPointer(mutating: value.baseAddress)
                            $0.u.mem.size = value.count
                        })
                        if let key {
                            args.append(vu(RD_KAFKA_VTYPE_KEY) {
                                $0.u.mem.ptr = UnsafeMutableRawPointer(mutating: key.baseAddress)
                                $0.u.mem.size = key.count
                            })
                        }
                        if let partition = message.partition {
                            args.append(vu(RD_KAFKA_VTYPE_PARTITION) { $0.u.i32 = partition })
                        }
                        if let headers { args.append(vu(RD_KAFKA_VTYPE_HEADERS) { $0.u.headers = headers }) }
                        args.append(vu(RD_KAFKA_VTYPE_MSGFLAGS) { $0.u.i = RD_KAFKA_MSG_F_COPY })
                        args.append(vu(RD_KAFKA_VTYPE_OPAQUE) { $0.u.ptr = opaque })
                        return rd_kafka_produceva(handle.pointer, args, args.count)
                    }
                }
            }
            guard let error else { return nil }
            Unmanaged<DeliveryBox>.fromOpaque(opaque).release()
            if let headers { rd_kafka_headers_destroy(headers) }
            return KafkaError(consuming: error, context: "could not enqueue message for \(message.topic)")
        }
    }

    /// Serves delivery callbacks until closed, then flushes, purges and destroys the handle.
    func pollLoop() {
        loadTopicMetadata()
        while !state.withLock({ $0.closing }) {
            rd_kafka_poll(handle.pointer, 100)
        }
        let flushed = rd_kafka_flush(handle.pointer, closeTimeout.milliseconds)
        if flushed != RD_KAFKA_RESP_ERR_NO_ERROR {
            logger.info("producer closed with undelivered messages; failing them",
                        metadata: ["kafka.queued": "\(rd_kafka_outq_len(handle.pointer))"])
            rd_kafka_purge(handle.pointer, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
            rd_kafka_poll(handle.pointer, 0)
        }
        let waiters = state.withLock { lifecycle in
            rd_kafka_destroy(handle.pointer)
            return lifecycle.markClosed()
        }
        waiters.forEach { $0.resume() }
    }

    /// Asks the brokers for the configured topics' partitions and leaders (messages sent meanwhile wait in
    /// librdkafka's queue, as they would for the scan). A failure only costs that first wait.
    private func loadTopicMetadata() {
        for name in topics {
            guard let topic = rd_kafka_topic_new(handle.pointer, name, nil) else { continue }
            defer { rd_kafka_topic_destroy(topic) }
            var metadata: UnsafePointer<rd_kafka_metadata>?
            let err = rd_kafka_metadata(handle.pointer, 0, topic, &metadata, 5000)
            if let metadata { rd_kafka_metadata_destroy(metadata) }
            if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                logger.debug("no metadata for \(name) yet", metadata: ["error": "\(KafkaError(err, context: "metadata"))"])
            }
        }
    }

    func requestClose() {
        state.withLock { $0.requestClose() }
    }

    func close() async {
        await withCheckedContinuation { continuation in
            if state.withLock({ $0.awaitClosed(continuation) }) { continuation.resume() }
        }
    }
}

private func vu(_ type: rd_kafka_vtype_t, _ fill: (inout rd_kafka_vu_t) -> Void) -> rd_kafka_vu_t {
    var value = rd_kafka_vu_t()
    value.vtype = type
    fill(&value)
    return value
}

private func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
    guard let bytes else { return body(nil) }
    return bytes.withUnsafeBytes { body($0) }
}

/// Builds a C header list, or `nil` for no headers. Ownership passes to librdkafka on a successful produce.
private func makeHeaders(_ headers: [KafkaHeader]) -> OpaquePointer? {
    guard !headers.isEmpty else { return nil }
    let list = rd_kafka_headers_new(headers.count)!
    for header in headers {
        if let value = header.value {
            value.withUnsafeBytes { _ = rd_kafka_header_add(list, header.name, -1, $0.baseAddress, $0.count) }
        } else {
            _ = rd_kafka_header_add(list, header.name, -1, nil, 0)
        }
    }
    return list
}
