/// A topic and partition.
public struct TopicPartition: Hashable, Sendable, CustomStringConvertible {
    /// The topic name.
    public var topic: String
    /// The partition number.
    public var partition: Int32

    /// Creates a topic-partition pair.
    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public var description: String { "\(topic)[\(partition)]" }
}

/// A record header: a name and an optional byte value.
public struct KafkaHeader: Hashable, Sendable {
    /// The header name.
    public var name: String
    /// The header value; `nil` is a null header.
    public var value: [UInt8]?

    /// Creates a header with a byte value.
    public init(name: String, value: [UInt8]?) {
        self.name = name
        self.value = value
    }

    /// Creates a header with a UTF-8 string value.
    public init(name: String, string: String) {
        self.init(name: name, value: Array(string.utf8))
    }
}

/// A message to produce.
public struct KafkaOutgoingMessage: Sendable {
    /// The destination topic.
    public var topic: String
    /// An explicit partition, or `nil` to let the partitioner choose from the key.
    public var partition: Int32?
    /// The message key (the job name, as the original producer did).
    public var key: [UInt8]?
    /// The message value.
    public var value: [UInt8]
    /// Record headers.
    public var headers: [KafkaHeader]

    /// Creates an outgoing message.
    public init(topic: String, partition: Int32? = nil, key: [UInt8]?, value: [UInt8], headers: [KafkaHeader] = []) {
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
        self.headers = headers
    }
}

/// Where a produced message was stored.
public struct KafkaDeliveryReport: Hashable, Sendable {
    /// The topic written to.
    public var topic: String
    /// The partition the message landed in.
    public var partition: Int32
    /// The offset assigned by the broker.
    public var offset: Int64
}

/// A consumed message, copied out of librdkafka's buffers.
public struct KafkaMessage: Sendable {
    /// The topic it came from.
    public var topic: String
    /// The partition it came from.
    public var partition: Int32
    /// Its offset in that partition.
    public var offset: Int64
    /// The key, if any.
    public var key: [UInt8]?
    /// The value (empty for a null value).
    public var value: [UInt8]
    /// Record headers.
    public var headers: [KafkaHeader]
    /// The record timestamp in milliseconds since the epoch, if known.
    public var timestampMilliseconds: Int64?

    /// The topic-partition pair of this message.
    public var topicPartition: TopicPartition { TopicPartition(topic: topic, partition: partition) }

    /// The first header with this name, decoded as UTF-8.
    public func header(_ name: String) -> String? {
        headers.first { $0.name == name }?.value.map { String(decoding: $0, as: UTF8.self) }
    }
}
