/// Waits until `condition` holds, checking every 20 ms, for a state that an event outside the test brings about
/// (a task's progress, a server's or a connection's reaction). The whole test run can keep the cooperative pool
/// busy for seconds, hence the generous default limit.
/// - Throws: ``TimedOut`` naming `what` when `condition` does not hold within `limit`.
public func waitUntil(_ what: String, within limit: Duration = .seconds(30),
                      _ condition: @escaping @Sendable () async -> Bool) async throws {
    try await withTimeout(limit, what) {
        while await !condition() { try await Task.sleep(for: .milliseconds(20)) }
    }
}
