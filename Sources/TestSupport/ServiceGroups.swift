import ServiceLifecycle

/// Runs `group` while `body` runs, then shuts it down gracefully (a no-op if the body did already) and waits for it
/// to stop, failing with ``TimedOut`` after `limit`. When the body throws, the group is cancelled and awaited
/// instead, and the body's error is rethrown.
public func withRunningGroup<T: Sendable>(_ group: ServiceGroup, stopWithin limit: Duration = .seconds(60),
                                          _ body: () async throws -> T) async throws -> T {
    let running = Task { try await group.run() }
    let result: T
    do {
        result = try await body()
    } catch {
        running.cancel()
        _ = try? await running.value
        throw error
    }
    await group.triggerGracefulShutdown()
    try await withTimeout(limit, "the services to stop") { try await running.value }
    return result
}
