import Foundation

/// A WAN link on loopback (this kernel has no netem): `Tests/Fixtures/delay_proxy.py` accepts connections on a free
/// port and passes every byte on to `127.0.0.1:targetPort` after a one-way delay in each direction, optionally
/// paced to a bandwidth. A round trip through it takes twice the delay.
public final class DelayingProxy: Sendable {
    /// The port to connect to (127.0.0.1).
    public let port: Int
    private let process: BackgroundProcess

    /// Starts the proxy and waits until it listens.
    /// - Parameters:
    ///   - targetPort: where connections go (127.0.0.1).
    ///   - oneWayDelay: how long bytes are held in each direction.
    ///   - bandwidthMbit: a rate each direction of each connection is paced to; `nil` for none.
    public init(to targetPort: Int, oneWayDelay: Duration, bandwidthMbit: Double? = nil) async throws {
        port = try freeLoopbackPort()
        process = try BackgroundProcess("python3", [packageRoot() + "/Tests/Fixtures/delay_proxy.py", "\(port)", "\(targetPort)",
                                                    "\(oneWayDelay.timeInterval * 1000)"] + (bandwidthMbit.map { ["\($0)"] } ?? []))
        let line = try await withTimeout(.seconds(20), "the delaying proxy to listen") { await self.process.nextLine() }
        guard line == "ready" else { throw FixtureUnavailable(what: "the delaying proxy did not start: \(process.stderr)") }
    }

    /// Stops the proxy (its connections drop).
    public func stop() async {
        _ = await process.stop()
    }
}
