/// The Kafka headers KafkaSync puts on jobs it sends to `<topic>.retry` and `<topic>.dlq`.
public enum JobHeader {
    /// The attempt the receiver makes (1 is the first; a retry record carries 2 or more).
    public static let attempt = "kafkasync-attempt"
    /// Epoch milliseconds before which a retry must not start.
    public static let notBefore = "kafkasync-not-before"
    /// The reason code of the last failure (`no_such_file`, `invalid_json`, `attempts_exhausted`, …).
    public static let reason = "kafkasync-reason"
    /// `permanent` or `transient`.
    public static let errorClass = "kafkasync-error-class"
    /// The last failure's message.
    public static let error = "kafkasync-error"
    /// Where the job was first published.
    public static let originalTopic = "kafkasync-original-topic"
    /// Its partition there.
    public static let originalPartition = "kafkasync-original-partition"
    /// Its offset there.
    public static let originalOffset = "kafkasync-original-offset"
    /// ISO 8601 time of the first failure.
    public static let firstFailure = "kafkasync-first-failure"
    /// ISO 8601 time of the last failure.
    public static let lastFailure = "kafkasync-last-failure"
}
