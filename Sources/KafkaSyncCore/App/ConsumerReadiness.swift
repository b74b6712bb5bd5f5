import KafkaClient
import Synchronization

/// Whether the consumer has work it can do: the partitions the group gave it, kept up to date by the
/// ``ConsumerDaemon`` from its rebalance events. Read by whatever reports readiness (the HTTP server's `/readyz`).
///
/// One value is shared by the daemon that writes it and the readers; it is `Sendable` (a lock box).
public final class ConsumerReadiness: Sendable {
    private let assigned = Mutex<Set<TopicPartition>>([])

    /// A readiness with no partitions (not ready).
    public init() {}

    /// The partitions assigned to this consumer now.
    public var partitions: Set<TopicPartition> { assigned.withLock { $0 } }

    /// Whether the consumer has joined its group and holds at least one partition.
    public var isReady: Bool { assigned.withLock { !$0.isEmpty } }

    /// Records an assignment.
    func assign(_ partitions: [TopicPartition]) { assigned.withLock { $0.formUnion(partitions) } }

    /// Records a revocation.
    func revoke(_ partitions: [TopicPartition]) { assigned.withLock { $0.subtract(partitions) } }

    /// Records that the consumer stopped: it holds nothing.
    func reset() { assigned.withLock { $0.removeAll() } }
}
