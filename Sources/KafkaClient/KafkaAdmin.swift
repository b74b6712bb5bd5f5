import AsyncSupport
import CRdKafka
import Logging

/// A topic to ensure.
public struct TopicSpecification: Hashable, Sendable {
    /// The topic name.
    public var name: String
    /// Partitions to create it with (an existing topic keeps its own).
    public var partitions: Int
    /// Replication factor to create it with; `-1` lets the broker decide (`default.replication.factor`).
    public var replicationFactor: Int

    /// Creates a specification.
    public init(name: String, partitions: Int, replicationFactor: Int = -1) {
        self.name = name
        self.partitions = partitions
        self.replicationFactor = replicationFactor
    }
}

/// Cluster administration: the few operations KafkaSync needs.
public enum KafkaAdmin {
    /// Makes sure these topics exist, creating the missing ones.
    /// - Parameters:
    ///   - properties: extra librdkafka properties (SASL/SSL).
    ///   - timeout: for each request to the cluster.
    /// - Returns: the partition count of every topic, existing or created.
    /// - Throws: ``KafkaError`` when the cluster cannot be reached or refuses to create a topic.
    public static func ensureTopics(_ topics: [TopicSpecification], bootstrapServers: String,
                                    properties: [String: String] = [:], timeout: Duration = .seconds(30),
                                    logger: Logger) async throws(KafkaError) -> [String: Int] {
        try await withAdminHandle(bootstrapServers: bootstrapServers, properties: properties,
                                  logger: logger) { rk throws(KafkaError) -> [String: Int] in
            var counts = try partitionCounts(rk, timeout: timeout)
            let missing = topics.filter { counts[$0.name] == nil }
            if !missing.isEmpty {
                try create(rk, missing, timeout: timeout)
                logger.info("created topics", metadata: ["kafka.topics": "\(missing.map(\.name))"])
                for topic in missing { counts[topic.name] = topic.partitions }
            }
            return counts.filter { name, _ in topics.contains { $0.name == name } }
        }
    }

    /// The offset after the last message of every partition of `topic` (its high watermark), or 0 for a
    /// partition holding no message: a reader that has reached these has read everything written so far.
    public static func endOffsets(of topic: String, bootstrapServers: String, properties: [String: String] = [:],
                                  timeout: Duration = .seconds(30), logger: Logger) async throws(KafkaError) -> [Int32: Int64] {
        try await withAdminHandle(bootstrapServers: bootstrapServers, properties: properties,
                                  logger: logger) { rk throws(KafkaError) -> [Int32: Int64] in
            guard let partitions = try partitionCounts(rk, timeout: timeout)[topic] else {
                throw KafkaError(RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, context: "topic \(topic) does not exist")
            }
            var ends: [Int32: Int64] = [:]
            for partition in 0..<Int32(partitions) {
                var low: Int64 = 0, high: Int64 = 0
                let err = rd_kafka_query_watermark_offsets(rk, topic, partition, &low, &high, timeout.milliseconds)
                guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                    throw KafkaError(err, context: "could not read the end of \(topic)[\(partition)]")
                }
                ends[partition] = high > low ? high : 0  // 0: nothing left to read (empty or all expired)
            }
            return ends
        }
    }

    /// The offsets consumer group `group` has committed on the partitions of `topic` (a partition without a
    /// commit is missing), read without joining the group.
    /// - Throws: ``KafkaError`` when the cluster cannot be reached or `topic` does not exist.
    public static func committedOffsets(group: String, topic: String, bootstrapServers: String,
                                        properties: [String: String] = [:], timeout: Duration = .seconds(30),
                                        logger: Logger) async throws(KafkaError) -> [Int32: Int64] {
        try await withAdminHandle(bootstrapServers: bootstrapServers, properties: properties, group: group,
                                  logger: logger) { rk throws(KafkaError) -> [Int32: Int64] in
            guard let partitions = try partitionCounts(rk, timeout: timeout)[topic] else {
                throw KafkaError(RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, context: "topic \(topic) does not exist")
            }
            let list = rd_kafka_topic_partition_list_new(Int32(partitions))!
            defer { rd_kafka_topic_partition_list_destroy(list) }
            for partition in 0..<Int32(partitions) { rd_kafka_topic_partition_list_add(list, topic, partition) }
            let err = rd_kafka_committed(rk, list, timeout.milliseconds)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw KafkaError(err, context: "could not read the offsets group \(group) committed on \(topic)")
            }
            var offsets: [Int32: Int64] = [:]
            for element in UnsafeBufferPointer(start: list.pointee.elems, count: Int(list.pointee.cnt))
            where element.offset >= 0 {
                offsets[element.partition] = element.offset
            }
            return offsets
        }
    }

    /// Reads the records of `topic` in the offset `ranges` of its partitions (a range starting before the oldest
    /// record kept starts there), without joining a group and without committing: for looking, not consuming.
    /// - Returns: the records, in offset order per partition.
    /// - Throws: ``KafkaError`` when the cluster cannot be reached, or `timedOut` when not every range was read
    ///   within `timeout`.
    public static func read(_ topic: String, ranges: [Int32: Range<Int64>], bootstrapServers: String,
                            properties: [String: String] = [:], timeout: Duration = .seconds(10),
                            logger: Logger) async throws(KafkaError) -> [KafkaMessage] {
        let wanted = ranges.filter { !$0.value.isEmpty }
        guard !wanted.isEmpty else { return [] }
        // A consumer handle needs a group id; it never joins it (assign, not subscribe) and commits nothing.
        let reader = properties.merging(["enable.auto.commit": "false", "enable.auto.offset.store": "false",
                                         "auto.offset.reset": "earliest", "enable.partition.eof": "true"]) { $1 }
        return try await withAdminHandle(bootstrapServers: bootstrapServers, properties: reader,
                                         group: "kafkasync-reader-\(UInt64.random(in: 0 ... .max))",
                                         logger: logger) { rk throws(KafkaError) -> [KafkaMessage] in
            let list = rd_kafka_topic_partition_list_new(Int32(wanted.count))!
            defer { rd_kafka_topic_partition_list_destroy(list) }
            for (partition, range) in wanted {
                rd_kafka_topic_partition_list_add(list, topic, partition).pointee.offset = range.lowerBound
            }
            let err = rd_kafka_assign(rk, list)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, context: "could not read \(topic)") }
            defer { rd_kafka_assign(rk, nil) }
            var remaining = wanted.mapValues(\.upperBound)
            var messages: [KafkaMessage] = []
            let deadline = ContinuousClock.now + timeout
            while !remaining.isEmpty && ContinuousClock.now < deadline {
                guard let message = rd_kafka_consumer_poll(rk, 100) else { continue }
                defer { rd_kafka_message_destroy(message) }
                let partition = message.pointee.partition
                guard let end = remaining[partition] else { continue }
                switch message.pointee.err {
                case RD_KAFKA_RESP_ERR_NO_ERROR:
                    if message.pointee.offset < end { messages.append(KafkaMessage(copying: message)) }
                    if message.pointee.offset + 1 >= end { remaining[partition] = nil }
                case RD_KAFKA_RESP_ERR__PARTITION_EOF:
                    remaining[partition] = nil  // the range ends past what the partition holds now
                default:
                    throw KafkaError(message.pointee.err, context: "could not read \(topic)[\(partition)]")
                }
            }
            guard remaining.isEmpty else {
                throw KafkaError(RD_KAFKA_RESP_ERR__TIMED_OUT, context: "reading \(topic) took longer than \(timeout)")
            }
            return messages
        }
    }

    /// Runs `body` off the cooperative pool with a short-lived client handle for cluster requests (a consumer
    /// handle of `group` that joins nothing, when a group is given).
    private static func withAdminHandle<Result: Sendable>(
        bootstrapServers: String, properties: [String: String], group: String? = nil, logger: Logger,
        _ body: @escaping @Sendable (OpaquePointer) throws(KafkaError) -> Result
    ) async throws(KafkaError) -> Result {
        let sink = LogSink(logger: logger)
        return try await runBlocking { () throws(KafkaError) -> Result in
            var settings = properties.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            settings.append(("bootstrap.servers", bootstrapServers))
            if let group { settings.append(("group.id", group)) }
            let conf = try NativeConfiguration.make(settings)
            rd_kafka_conf_set_log_cb(conf, kafkaLogCallback)
            rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(sink).toOpaque())
            let rk = try NativeConfiguration.newHandle(group == nil ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER, conf)
            defer { rd_kafka_destroy(rk) }
            return try body(rk)
        }
    }

    private static func partitionCounts(_ rk: OpaquePointer, timeout: Duration) throws(KafkaError) -> [String: Int] {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(rk, 1, nil, &metadata, timeout.milliseconds)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            throw KafkaError(err, context: "could not read cluster metadata")
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        var counts: [String: Int] = [:]
        for index in 0..<Int(metadata.pointee.topic_cnt) {
            let topic = metadata.pointee.topics[index]
            if topic.err == RD_KAFKA_RESP_ERR_NO_ERROR {
                counts[String(cString: topic.topic)] = Int(topic.partition_cnt)
            }
        }
        return counts
    }

    private static func create(_ rk: OpaquePointer, _ topics: [TopicSpecification],
                               timeout: Duration) throws(KafkaError) {
        var errstr = [CChar](repeating: 0, count: 512)
        var newTopics: [OpaquePointer?] = []
        defer { newTopics.forEach { rd_kafka_NewTopic_destroy($0) } }
        for topic in topics {
            guard let newTopic = rd_kafka_NewTopic_new(topic.name, Int32(topic.partitions),
                                                       Int32(topic.replicationFactor), &errstr, errstr.count) else {
                throw .configuration("topic \(topic.name): \(cString(errstr))")
            }
            newTopics.append(newTopic)
        }
        let queue = rd_kafka_queue_new(rk)
        defer { rd_kafka_queue_destroy(queue) }
        let options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS)
        defer { rd_kafka_AdminOptions_destroy(options) }
        rd_kafka_AdminOptions_set_request_timeout(options, timeout.milliseconds, &errstr, errstr.count)
        newTopics.withUnsafeMutableBufferPointer {
            rd_kafka_CreateTopics(rk, $0.baseAddress, $0.count, options, queue)
        }
        guard let event = rd_kafka_queue_poll(queue, timeout.milliseconds + 1000) else {
            throw KafkaError(RD_KAFKA_RESP_ERR__TIMED_OUT, context: "creating topics")
        }
        defer { rd_kafka_event_destroy(event) }
        let eventError = rd_kafka_event_error(event)
        if eventError != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(eventError, context: "creating topics")
        }
        var count = 0
        guard let result = rd_kafka_event_CreateTopics_result(event),
              let results = rd_kafka_CreateTopics_result_topics(result, &count) else { return }
        for index in 0..<count {
            let err = rd_kafka_topic_result_error(results[index])
            if err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS {
                let name = String(cString: rd_kafka_topic_result_name(results[index]))
                throw KafkaError(err, context: "could not create topic \(name)")
            }
        }
    }
}
