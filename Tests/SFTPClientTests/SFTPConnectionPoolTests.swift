import Foundation
import TestSupport
import Testing
@testable import SFTPClient

/// The connection pool against a real sshd: reuse, growth up to its size, replacement of dead connections,
/// idle close.
@Suite(.timeLimit(.minutes(2))) struct SFTPConnectionPoolTests {
    func pool(_ server: SSHServerFixture, size: Int, idleTimeout: Duration = .seconds(60)) throws -> SFTPConnectionPool {
        let key = try OpenSSHPrivateKey.parse(try String(contentsOfFile: server.clientKey, encoding: .utf8),
                                              name: server.clientKey)
        let configuration = SSHConnectionConfiguration(
            host: "127.0.0.1", port: server.port, username: server.username,
            credentials: [.privateKey(key, path: server.clientKey)],
            hostKeyVerifier: HostKeyVerifier(host: "127.0.0.1", port: server.port, knownHosts: server.knownHosts))
        return SFTPConnectionPool(configuration: configuration, size: size, idleTimeout: idleTimeout,
                                  keepaliveInterval: .milliseconds(200), logger: KafkaFixtures.logger())
    }

    func logins(_ server: SSHServerFixture) -> Int { server.log.components(separatedBy: "Accepted publickey").count - 1 }

    @Test func sequentialUsesShareOneConnectionAndConcurrentOnesGrowToTheSize() async throws {
        try await withSSHServer { server in
            try server.serve("f.txt", Data("f".utf8))
            let pool = try pool(server, size: 3)
            for _ in 0..<20 {
                _ = try await pool.withSession { session throws(SFTPError) in try await session.attributes(server.dataPath("f.txt")) }
            }
            #expect(await pool.connectionCount == 1)
            #expect(logins(server) == 1, "twenty uses, one login")

            // Ten at once: the pool opens at most three connections and shares them.
            let leases = try await withThrowingTaskGroup(of: SFTPConnectionPool.Lease.self) { group in
                for _ in 0..<10 { group.addTask { try await pool.lease() } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(await pool.connectionCount == 3)
            for lease in leases { await pool.release(lease, healthy: true) }
            #expect(logins(server) == 3)
            await pool.close()
        }
    }

    @Test func aDeadConnectionIsReplacedOnTheNextUse() async throws {
        try await withSSHServer { server in
            try server.serve("f.txt", Data("f".utf8))
            let pool = try pool(server, size: 2)
            _ = try await pool.withSession { session throws(SFTPError) in try await session.attributes(server.dataPath("f.txt")) }
            await server.kill()
            try await server.restart()
            // The pool finds the connection dead (its keepalive sweep, every 200 ms here) and drops it.
            try await waitUntil("the dead connection to be dropped") { await pool.connectionCount == 0 }
            let attributes = try await pool.withSession { session throws(SFTPError) in
                try await session.attributes(server.dataPath("f.txt"))
            }
            #expect(attributes.size == 1, "served after the server came back")
            #expect(await pool.connectionCount == 1)
            #expect(logins(server) == 1, "by a new connection: one login on the restarted server")
            await pool.close()
        }
    }

    @Test func idleConnectionsAreClosed() async throws {
        try await withSSHServer { server in
            let pool = try pool(server, size: 2, idleTimeout: .milliseconds(500))
            _ = try await pool.withSession { session throws(SFTPError) in try await session.realPath(".") }
            #expect(await pool.connectionCount == 1)
            try await waitUntil("the idle connection to be closed") { await pool.connectionCount == 0 }
            await pool.close()
        }
    }
}
