/// Thrown by ``withTimeout(_:_:_:)`` when the work did not finish in time.
public struct TimedOut: Error, CustomStringConvertible {
    /// What was being waited for.
    public let what: String
    public var description: String { "timed out waiting for \(what)" }
}

/// Runs `body`, failing with ``TimedOut`` if it takes longer than `limit` (`body` is then cancelled: it must
/// observe cancellation to end).
public func withTimeout<T: Sendable>(_ limit: Duration, _ what: String,
                                     _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw TimedOut(what: what)
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}
