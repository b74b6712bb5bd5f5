import CRdKafka
import Logging

/// A Kafka cluster inside this process: librdkafka's mock cluster, speaking the real Kafka wire protocol over
/// loopback TCP. For trying KafkaSync on one machine (`kafka_url = "embedded"`) and for tests.
///
/// Messages live in memory only and are gone when the cluster is closed. The cluster stops when
/// ``close()`` is called or the last reference is dropped.
public final class EmbeddedKafkaCluster: Sendable {
    /// A Kafka protocol request type, for fault injection.
    public struct API: Hashable, Sendable {
        let key: Int16
        /// Produce (0).
        public static let produce = API(key: 0)
        /// Fetch (1).
        public static let fetch = API(key: 1)
        /// Metadata (3).
        public static let metadata = API(key: 3)
        /// OffsetCommit (8).
        public static let offsetCommit = API(key: 8)
        /// OffsetFetch (9).
        public static let offsetFetch = API(key: 9)
        /// FindCoordinator (10).
        public static let findCoordinator = API(key: 10)
        /// JoinGroup (11).
        public static let joinGroup = API(key: 11)
        /// Heartbeat (12).
        public static let heartbeat = API(key: 12)
    }

    /// A broker-side error to inject into responses.
    public struct InjectedError: Hashable, Sendable {
        let code: rd_kafka_resp_err_t
        /// `NOT_LEADER_FOR_PARTITION` (retriable).
        public static let notLeaderForPartition = InjectedError(code: RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION)
        /// `REQUEST_TIMED_OUT` (retriable).
        public static let requestTimedOut = InjectedError(code: RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT)
        /// `NOT_ENOUGH_REPLICAS` (retriable).
        public static let notEnoughReplicas = InjectedError(code: RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS)
        /// `COORDINATOR_NOT_AVAILABLE` (retriable).
        public static let coordinatorNotAvailable = InjectedError(code: RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE)
        /// `TOPIC_AUTHORIZATION_FAILED` (permanent).
        public static let topicAuthorizationFailed = InjectedError(code: RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
    }

    private let handle: NativeHandle
    private let cluster: NativeHandle
    private let logSink: LogSink
    /// The number of brokers; their ids are `1...brokerCount`.
    public let brokerCount: Int
    /// The comma-separated `host:port` bootstrap list of the brokers (loopback, ephemeral ports).
    public let bootstrapServers: String

    /// Starts a cluster of `brokers` brokers listening on loopback.
    /// - Throws: ``KafkaError`` when librdkafka cannot start the mock cluster.
    public init(brokers: Int = 1, logger: Logger = Logger(label: "kafkasync.embedded-kafka")) throws(KafkaError) {
        guard (1...32).contains(brokers) else { throw .configuration("brokers must be 1...32, not \(brokers)") }
        logSink = LogSink(logger: logger)
        let conf = try NativeConfiguration.make([])
        rd_kafka_conf_set_log_cb(conf, kafkaLogCallback)
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(logSink).toOpaque())
        handle = NativeHandle(pointer: try NativeConfiguration.newHandle(RD_KAFKA_PRODUCER, conf))
        guard let mock = rd_kafka_mock_cluster_new(handle.pointer, Int32(brokers)) else {
            rd_kafka_destroy(handle.pointer)
            throw KafkaError(code: .other, message: "could not start the embedded Kafka cluster", isTransient: false)
        }
        cluster = NativeHandle(pointer: mock)
        brokerCount = brokers
        bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(mock))
    }

    deinit {
        rd_kafka_mock_cluster_destroy(cluster.pointer)
        rd_kafka_destroy(handle.pointer)
    }

    /// Creates a topic (an existing topic is left as it is).
    /// - Parameters:
    ///   - partitions: number of partitions, at least 1.
    ///   - replicationFactor: replicas per partition, at most the number of brokers.
    public func createTopic(_ name: String, partitions: Int, replicationFactor: Int = 1) throws(KafkaError) {
        guard partitions >= 1 else { throw .configuration("partitions must be at least 1, not \(partitions)") }
        guard (1...brokerCount).contains(replicationFactor) else {
            throw .configuration("replication factor must be 1...\(brokerCount), not \(replicationFactor)")
        }
        let err = rd_kafka_mock_topic_create(cluster.pointer, name, Int32(partitions), Int32(replicationFactor))
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, context: "could not create topic \(name)") }
    }

    // No "broker down": librdkafka's mock re-creates a downed broker's listener on the same port at once and aborts
    // the process when another socket took that port meanwhile.

    /// Makes the next `errors.count` requests of type `api` (to any broker) fail with these errors, in order.
    public func injectErrors(_ errors: [InjectedError], into api: API) {
        let codes = errors.map(\.code)
        codes.withUnsafeBufferPointer {
            rd_kafka_mock_push_request_errors_array(cluster.pointer, api.key, codes.count, $0.baseAddress)
        }
    }

    /// Moves the leadership of a partition to another broker.
    public func setPartitionLeader(topic: String, partition: Int32, brokerID: Int32) throws(KafkaError) {
        let err = rd_kafka_mock_partition_set_leader(cluster.pointer, topic, partition, brokerID)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, context: "\(topic)[\(partition)]") }
    }
}
