import Foundation
import TestSupport
import Testing

/// The sshd fixture itself, checked with OpenSSH's own sftp client.
@Suite(.timeLimit(.minutes(1))) struct SSHServerFixtureTests {
    @Test func opensshSftpFetchesAServedFileWithTheClientKeyAndStrictHostKeys() async throws {
        try await withSSHServer { server in
        let contents = Data((0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let remote = try server.serve("dir with space/ü.bin", contents)
        let local = server.directory.file("fetched.bin")
        let batch = try server.directory.write("batch", "get \"\(remote)\" \(local)\n")
        let result = try await runProcess("sftp", [
            "-q", "-b", batch, "-i", server.clientKey, "-P", "\(server.port)",
            "-o", "UserKnownHostsFile=\(server.knownHosts)", "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes", "\(server.username)@127.0.0.1",
        ])
        #expect(result.status == 0, "\(result.stderr)\n\(server.log)")
        #expect(FileManager.default.contents(atPath: local) == contents)
        #expect(server.hostKeyFingerprint.hasPrefix("SHA256:") && server.hostKeyFingerprint.count == 50)
        #expect(server.hostPublicKey.hasPrefix("ssh-ed25519 "))
        }
    }
}
