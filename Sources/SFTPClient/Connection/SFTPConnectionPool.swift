import CoreMetrics
import Logging
import NIOCore
import NIOPosix

/// Persistent SFTP sessions to one server, shared by many transfers: a transfer borrows the least busy
/// session (SFTP answers requests by id, so several transfers can share one), and a new connection is opened
/// only while every open one is busy and fewer than ``size`` exist. Dead connections are dropped and replaced
/// on the next use; idle ones are pinged every ``keepaliveInterval`` and closed after ``idleTimeout``.
///
/// A silent server cannot hold a transfer: each connection fails the requests waiting on a server silent for the
/// configuration's `stallTimeout` with `timedOut` and closes itself, and the idle pings have the same limit, so
/// a dead peer is found within ``keepaliveInterval`` plus `stallTimeout` even when nothing else is sent (the
/// ping is an SFTP request the server must answer, the SFTP-level equivalent of OpenSSH's
/// `keepalive@openssh.com`, which swift-nio-ssh 0.15 cannot send; TCP keepalive covers a vanished host).
public actor SFTPConnectionPool {
    /// The most connections open at once.
    public let size: Int
    /// How long an unused connection stays open.
    public let idleTimeout: Duration
    /// How often an unused connection is checked with a cheap request.
    public let keepaliveInterval: Duration
    private let configuration: SSHConnectionConfiguration
    private let logger: Logger
    private var entries: [Int: Entry] = [:] {
        didSet { if entries.count != oldValue.count { connectionsGauge?.record(entries.count) } }
    }
    private let connectionsGauge: Gauge?
    private var nextID = 0
    private var sweeper: Task<Void, Never>?
    private var closed = false

    private struct Entry {
        let opening: EventLoopFuture<Live>
        var live: Live?
        var leases = 0
        var lastUsed = ContinuousClock.now
        /// Takes no new leases; closed when the last one comes back.
        var retired = false
    }

    struct Live: Sendable {
        let connection: SSHConnection
        let session: SFTPSession
    }

    /// A borrowed session; give it back with ``release(_:healthy:)``, or use ``withSession(_:)``.
    public struct Lease: Sendable {
        fileprivate let id: Int
        /// The session to use.
        public let session: SFTPSession
        fileprivate let connection: SSHConnection
    }

    /// A pool for one server; nothing connects before the first use.
    /// - Parameter metricsLabel: the server's name for the `kafkasync_sftp_connections` gauge (none when nil).
    public init(configuration: SSHConnectionConfiguration, size: Int, idleTimeout: Duration = .seconds(60),
                keepaliveInterval: Duration = .seconds(20), metricsLabel: String? = nil, logger: Logger) {
        connectionsGauge = metricsLabel.map { Gauge(label: "kafkasync_sftp_connections", dimensions: [("remote", $0)]) }
        self.configuration = configuration
        self.size = max(1, size)
        self.idleTimeout = idleTimeout
        self.keepaliveInterval = keepaliveInterval
        self.logger = logger
    }

    /// The number of connections open or being opened (for tests and the dashboard).
    public var connectionCount: Int { entries.count }

    /// Borrows a session, connecting when every open one is busy and the pool is not full.
    /// - Throws: the ``SFTPError`` of connecting (`connectionFailed`, `authenticationFailed`, …), or `cancelled`
    ///   when the task is cancelled while a connection is opening.
    public func lease() async throws(SFTPError) -> Lease {
        guard !closed else { throw SFTPError(.connectionLost, "the connection pool is closed") }
        startSweeper()
        for (id, entry) in entries where entry.leases == 0 && entry.live.map({ !$0.connection.isActive }) == true {
            entries[id] = nil
        }
        let id: Int
        if let (leastBusy, entry) = entries.filter({ !$0.value.retired }).min(by: { $0.value.leases < $1.value.leases }),
           entry.leases == 0 || entries.count >= size {
            id = leastBusy
        } else {
            id = nextID
            nextID += 1
            let (configuration, logger) = (self.configuration, self.logger)
            let opened = MultiThreadedEventLoopGroup.singleton.any().makePromise(of: Live.self)
            opened.completeWithTask {
                let connection = try await SSHConnection.connect(configuration, logger: logger)
                do {
                    return Live(connection: connection, session: try await connection.openSFTP())
                } catch {
                    await connection.close()
                    throw error
                }
            }
            entries[id] = Entry(opening: opened.futureResult)
        }
        entries[id]!.leases += 1
        let opening = entries[id]!.opening
        do {
            let live = try await opening.sftpValue()
            entries[id]?.live = live
            return Lease(id: id, session: live.session, connection: live.connection)
        } catch where error.code == .cancelled {
            // Only this caller gives up (at once, even if the server is silent): the opening goes on for the next.
            entries[id]?.leases -= 1
            throw error
        } catch {
            entries[id] = nil
            throw error
        }
    }

    /// Gives a session back. A connection that is not `healthy` (it lost its connection, timed out, or its
    /// transfer was cancelled while waiting for the server) takes no new leases and is closed once no other
    /// transfer uses it, so the next lease opens a fresh one.
    public func release(_ lease: Lease, healthy: Bool) async {
        guard var entry = entries[lease.id] else { return }
        entry.leases -= 1
        entry.lastUsed = .now
        entry.retired = entry.retired || !healthy || !lease.connection.isActive || closed
        if entry.retired && entry.leases == 0 {
            entries[lease.id] = nil
            await lease.connection.close()
        } else {
            entries[lease.id] = entry
        }
    }

    /// Closes every connection; later leases fail.
    public func close() async {
        closed = true
        sweeper?.cancel()
        let all = entries.values.map(\.opening)
        entries = [:]
        for opening in all {
            if let live = try? await opening.get() { await live.connection.close() }
        }
    }

    private func startSweeper() {
        guard sweeper == nil else { return }
        let interval = min(keepaliveInterval, idleTimeout)
        sweeper = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                guard let self else { return }
                await self.sweep()
            }
        }
    }

    /// Closes connections idle longer than ``idleTimeout`` and pings the other idle ones.
    private func sweep() async {
        let now = ContinuousClock.now
        for (id, entry) in entries where entry.leases == 0 {
            guard let live = entry.live else { continue }
            if now - entry.lastUsed >= idleTimeout || !live.connection.isActive {
                entries[id] = nil
                logger.debug("closing an idle SFTP connection", metadata: ["kafkasync.remote": "\(configuration.host)"])
                await live.connection.close()
            } else if now - entry.lastUsed >= keepaliveInterval {
                // A cheap request keeps NAT and firewalls from dropping the connection and finds dead ones early.
                if (try? await live.session.realPath(".")) == nil {
                    entries[id] = nil
                    await live.connection.close()
                }
            }
        }
    }
}

extension SFTPConnectionPool {
    /// Runs `body` with a borrowed session and gives it back, retiring the connection when the error says it is
    /// broken or the task was cancelled (requests may still be waiting on it).
    public func withSession<Result: Sendable>(
        _ body: (SFTPSession) async throws(SFTPError) -> Result
    ) async throws(SFTPError) -> Result {
        let lease = try await lease()
        do {
            let result = try await body(lease.session)
            await release(lease, healthy: true)
            return result
        } catch {
            let broken: [SFTPError.Code] = [.connectionLost, .timedOut, .protocolError, .cancelled]
            await release(lease, healthy: !Task.isCancelled && !broken.contains(error.code))
            throw error
        }
    }
}
