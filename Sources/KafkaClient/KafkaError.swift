import CRdKafka

/// An error from the Kafka client: a stable ``Code`` to compare, a human message, and whether retrying may help.
///
/// Compare ``code`` values, never message text. Raw librdkafka error codes never appear in the public API;
/// ``librdkafkaName`` is there for logs only.
public struct KafkaError: Error, Sendable, CustomStringConvertible {
    /// A stable error code. New codes may be added; switch with a `default` branch.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Sendable {
            case configuration, transport, timedOut, queueFull, messageTooLarge, unknownTopicOrPartition
            case authentication, authorization, closed, purged, fatal, embeddedBrokerNotRunning, other
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// A configuration property was rejected by librdkafka, or a configuration is unusable.
        public static let configuration = Code(.configuration)
        /// The brokers could not be reached or a connection failed.
        public static let transport = Code(.transport)
        /// An operation did not finish in time (including message delivery timeouts).
        public static let timedOut = Code(.timedOut)
        /// The local producer queue is full.
        public static let queueFull = Code(.queueFull)
        /// The message exceeds the broker's or the client's maximum size.
        public static let messageTooLarge = Code(.messageTooLarge)
        /// The topic or partition does not exist.
        public static let unknownTopicOrPartition = Code(.unknownTopicOrPartition)
        /// SASL or SSL authentication failed.
        public static let authentication = Code(.authentication)
        /// The broker refused the operation for this principal.
        public static let authorization = Code(.authorization)
        /// The client was closed before or during the operation.
        public static let closed = Code(.closed)
        /// The message was purged from the queue before delivery (the producer was closed with messages in flight).
        public static let purged = Code(.purged)
        /// librdkafka raised a fatal error; the client must be recreated.
        public static let fatal = Code(.fatal)
        /// `kafka_url = "embedded"` was configured but no embedded broker is running.
        public static let embeddedBrokerNotRunning = Code(.embeddedBrokerNotRunning)
        /// Any other failure.
        public static let other = Code(.other)

        public var description: String { value.rawValue }
    }

    /// What went wrong, as a stable code.
    public let code: Code
    /// A human-readable explanation.
    public let message: String
    /// Whether retrying the same operation later may succeed.
    public let isTransient: Bool
    /// librdkafka's symbolic name for the underlying error (e.g. `_MSG_TIMED_OUT`), for logs only.
    public let librdkafkaName: String?

    /// Creates an error. Use the static constructors inside this module.
    public init(code: Code, message: String, isTransient: Bool, librdkafkaName: String? = nil) {
        self.code = code
        self.message = message
        self.isTransient = isTransient
        self.librdkafkaName = librdkafkaName
    }

    public var description: String {
        if let librdkafkaName { return "\(message) [\(code), \(librdkafkaName)]" }
        return "\(message) [\(code)]"
    }

    static func closed(_ what: String) -> KafkaError {
        KafkaError(code: .closed, message: "\(what) is closed", isTransient: false)
    }

    static func configuration(_ message: String) -> KafkaError {
        KafkaError(code: .configuration, message: message, isTransient: false)
    }

    /// Maps a librdkafka response code to a ``KafkaError``.
    init(_ err: rd_kafka_resp_err_t, context: String? = nil) {
        let text = String(cString: rd_kafka_err2str(err))
        let name = String(cString: rd_kafka_err2name(err))
        let message = context.map { "\($0): \(text)" } ?? text
        let (code, transient) = Self.classify(err)
        self.init(code: code, message: message, isTransient: transient, librdkafkaName: name)
    }

    /// Maps an owned `rd_kafka_error_t` (which this call destroys).
    init(consuming error: OpaquePointer, context: String? = nil) {
        let err = rd_kafka_error_code(error)
        let retriable = rd_kafka_error_is_retriable(error) != 0
        let fatal = rd_kafka_error_is_fatal(error) != 0
        let text = String(cString: rd_kafka_error_string(error))
        rd_kafka_error_destroy(error)
        var base = KafkaError(err, context: context)
        if fatal {
            base = KafkaError(code: .fatal, message: base.message, isTransient: false, librdkafkaName: base.librdkafkaName)
        }
        let message = context.map { "\($0): \(text)" } ?? text
        self.init(code: base.code, message: message, isTransient: base.isTransient || retriable,
                  librdkafkaName: base.librdkafkaName)
    }

    private static func classify(_ err: rd_kafka_resp_err_t) -> (Code, Bool) {
        switch err {
        case RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, RD_KAFKA_RESP_ERR__RESOLVE,
             RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION, RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
             RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
             RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND, RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
             RD_KAFKA_RESP_ERR_NOT_COORDINATOR, RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
            return (.transport, true)
        case RD_KAFKA_RESP_ERR__TIMED_OUT, RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
             RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
            return (.timedOut, true)
        case RD_KAFKA_RESP_ERR__QUEUE_FULL:
            return (.queueFull, true)
        case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
            return (.messageTooLarge, false)
        case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
             RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
            return (.unknownTopicOrPartition, false)
        case RD_KAFKA_RESP_ERR__AUTHENTICATION, RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED,
             RD_KAFKA_RESP_ERR__SSL:
            return (.authentication, false)
        case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED,
             RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED, RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
            return (.authorization, false)
        case RD_KAFKA_RESP_ERR__PURGE_QUEUE, RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
            return (.purged, true)
        case RD_KAFKA_RESP_ERR__FATAL:
            return (.fatal, false)
        case RD_KAFKA_RESP_ERR__INVALID_ARG, RD_KAFKA_RESP_ERR__UNKNOWN_PROTOCOL:
            return (.configuration, false)
        default:
            return (.other, false)
        }
    }
}
