import Foundation
import TestSupport
import Testing
@testable import SFTPClient

/// A server that stops answering, produced for real: the sshd session process serving the connection is stopped
/// with `SIGSTOP` (the kernel still accepts what the client sends, nothing comes back), as a hung server does.
@Suite(.timeLimit(.minutes(2))) struct SilentServerTests {
    let logger = KafkaFixtures.logger("kafkasync.test.silent")

    func pool(_ server: SSHServerFixture, stallTimeout: Duration,
              keepaliveInterval: Duration = .seconds(20)) throws -> SFTPConnectionPool {
        let key = try OpenSSHPrivateKey.parse(try String(contentsOfFile: server.clientKey, encoding: .utf8),
                                              name: server.clientKey)
        let configuration = SSHConnectionConfiguration(
            host: "127.0.0.1", port: server.port, username: server.username,
            credentials: [.privateKey(key, path: server.clientKey)],
            hostKeyVerifier: HostKeyVerifier(host: "127.0.0.1", port: server.port, knownHosts: server.knownHosts),
            stallTimeout: stallTimeout)
        return SFTPConnectionPool(configuration: configuration, size: 2, keepaliveInterval: keepaliveInterval,
                                  logger: logger)
    }

    /// Downloads `remote` on a pooled session and stops the sshd session serving it once 1 MB has arrived.
    /// Returns the download's error (or `nil`) and when the server was stopped. If the download is still running
    /// `watchdog` after the stop, the stopped processes are killed (ending the download with a lost connection)
    /// and an issue is recorded: without that, a download that never notices would hang the test.
    func downloadStoppingAfter1MB(_ server: SSHServerFixture, pool: SFTPConnectionPool, remote: String,
                                  stopped: StoppedProcesses, watchdog: Duration,
                                  whileStopped: (Task<Void, any Error>) async throws -> Void = { _ in })
        async throws -> SFTPError?
    {
        let download = Task {
            try await pool.withSession { session throws(SFTPError) in
                guard let file = try await session.lookUp(remote).file else { throw SFTPError(.failure, "not a file") }
                let pids = await server.processes(holdingOpen: remote)
                _ = try await session.download(file, to: server.directory.file("out.bin")) { received in
                    stopped.progressed()
                    if received >= 1 << 20 { stopped.stop(pids) }
                }
            }
        }
        try await withTimeout(.seconds(30), "1 MB to arrive") {
            while stopped.since == nil { try await Task.sleep(for: .milliseconds(5)) }
        }
        try await whileStopped(download)
        let watch = Task {
            try await Task.sleep(for: watchdog)
            Issue.record("the download was still waiting \(watchdog) after the server stopped answering")
            stopped.kill()
        }
        defer { watch.cancel() }
        do {
            try await download.value
            return nil
        } catch {
            return error as? SFTPError
        }
    }

    @Test func aServerThatStopsAnsweringFailsTheDownloadAsTimedOutAndTheNextLeaseWorks() async throws {
        try await withSSHServer { server in
            let remote = try server.serve("big.bin", Data(repeating: 0xA5, count: 64 << 20))
            let pool = try pool(server, stallTimeout: .seconds(2))
            let stopped = StoppedProcesses()
            defer { stopped.resume() }
            let error = try await downloadStoppingAfter1MB(server, pool: pool, remote: remote, stopped: stopped,
                                                           watchdog: .seconds(15))
            let failedAt = ContinuousClock.now
            let sinceStop = failedAt - (stopped.since ?? failedAt)
            let sinceLastData = failedAt - max(stopped.since ?? failedAt, stopped.lastProgress ?? failedAt)
            #expect(error?.code == .timedOut, "\(String(describing: error))")
            #expect(error?.isTransient == true)
            #expect(error?.message.contains("stopped answering") == true, "\(String(describing: error))")
            // Not before the stall timeout; soon after the data in flight stopped arriving (draining it took a loaded
            // CI machine 8 s once, so the bound is on the time since the last data, not since the stop).
            #expect(sinceStop >= .milliseconds(1900), "failed \(sinceStop) after the server stopped")
            #expect(sinceLastData < .seconds(6), "failed \(sinceLastData) after the last data arrived")
            #expect(await pool.connectionCount == 0, "the silent connection is dropped")

            // The server's other sessions are fine: a new lease opens a new connection and works.
            let size = try await pool.withSession { session throws(SFTPError) in try await session.attributes(remote).size }
            #expect(size == 64 << 20)
            #expect(await pool.connectionCount == 1)
            await pool.close()
        }
    }

    @Test func aCancelledDownloadOnAStoppedServerReturnsPromptlyAndItsConnectionIsNotReused() async throws {
        try await withSSHServer { server in
            let remote = try server.serve("big.bin", Data(repeating: 0x5A, count: 64 << 20))
            let pool = try pool(server, stallTimeout: .seconds(60))
            let stopped = StoppedProcesses()
            defer { stopped.resume() }
            var cancelledAt: ContinuousClock.Instant?
            let error = try await downloadStoppingAfter1MB(server, pool: pool, remote: remote, stopped: stopped,
                                                           watchdog: .seconds(10)) { download in
                // Wait until the data in flight has drained and the download waits on the silent server.
                let local = server.directory.file("out.bin")
                try await withTimeout(.seconds(10), "the download to stall") {
                    var last = -1
                    while true {
                        try await Task.sleep(for: .milliseconds(300))
                        let size = (try? FileManager.default.attributesOfItem(atPath: local)[.size] as? Int) ?? 0
                        if size == last { return }
                        last = size
                    }
                }
                cancelledAt = .now
                download.cancel()
            }
            let returnedAfter = ContinuousClock.now - (cancelledAt ?? .now)
            #expect(error?.code == .cancelled, "\(String(describing: error))")
            #expect(returnedAfter < .seconds(6), "returned \(returnedAfter) after the cancellation (the stall limit is 60 s)")
            #expect(await pool.connectionCount == 0, "a connection with unanswered requests is not reused")
            let size = try await pool.withSession { session throws(SFTPError) in try await session.attributes(remote).size }
            #expect(size == 64 << 20, "a new connection serves the next lease")
            await pool.close()
        }
    }

    @Test func aCancelledLeaseWaitingForAStoppedServerReturnsPromptlyAndTheConnectionIsStillOpened() async throws {
        try await withSSHServer { server in
            let pool = try pool(server, stallTimeout: .seconds(60))
            let stopped = StoppedProcesses()
            defer { stopped.resume() }
            stopped.stop([server.listenerProcess])
            let lease = Task { try await pool.lease() }
            try await withTimeout(.seconds(10), "the lease to start connecting") {
                while await pool.connectionCount == 0 { try await Task.sleep(for: .milliseconds(20)) }
            }
            let cancelled = ContinuousClock.now
            lease.cancel()
            let result = await lease.result
            // Promptly: far below the 20 s handshake limit (a loaded CI machine took 2.7 s once).
            #expect(ContinuousClock.now - cancelled < .seconds(6), "returned \(ContinuousClock.now - cancelled) after the cancellation")
            #expect(throws: SFTPError(.cancelled, "cancelled while waiting for the server")) { try result.get() }

            // The server comes back: the connection that was being opened serves the next lease.
            stopped.resume()
            let home = try await pool.withSession { session throws(SFTPError) in try await session.realPath(".") }
            #expect(home.hasPrefix("/"))
            #expect(await pool.connectionCount == 1)
            await pool.close()
        }
    }

    @Test func anIdleConnectionToAStoppedServerIsFoundByTheKeepaliveAndDropped() async throws {
        try await withSSHServer { server in
            let remote = try server.serve("f.txt", Data("f".utf8))
            let pool = try pool(server, stallTimeout: .seconds(1), keepaliveInterval: .milliseconds(300))
            // A file left open keeps the session process findable by its open file.
            try await pool.withSession { session throws(SFTPError) in _ = try await session.lookUp(remote) }
            let stopped = StoppedProcesses()
            defer { stopped.resume() }
            stopped.stop(await server.processes(holdingOpen: remote))
            #expect(stopped.since != nil, "the session process holding the file was found")
            try await withTimeout(.seconds(10), "the keepalive to drop the silent connection") {
                while await pool.connectionCount > 0 { try await Task.sleep(for: .milliseconds(50)) }
            }
            await pool.close()
        }
    }
}
