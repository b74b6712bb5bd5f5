import Foundation
import TestSupport
import Testing
@testable import SFTPClient

/// The scripted (lying) SFTP server fixture itself: both the native client and OpenSSH's `sftp` can use it, and an
/// empty script makes it honest.
@Suite(.timeLimit(.minutes(2))) struct ScriptedSFTPServerTests {
    let logger = KafkaFixtures.logger("kafkasync.test.scripted")

    @Test func servesItsFolderToTheNativeClientAndToOpenSSH() async throws {
        try await withScriptedSFTPServer { server in
            let contents = Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
            let remote = try server.serve("tree/big.bin", contents)
            try server.serve("tree/small.txt", Data("small".utf8))

            let connection = try await SSHConnection.connect(try server.connectionConfiguration(), logger: logger)
            let session = try await connection.openSFTP()
            let entries = try await session.listDirectory("/tree")
            #expect(Set(entries.map(\.name)) == ["big.bin", "small.txt"])
            let local = server.directory.file("big.out")
            let file = try #require(try await session.lookUp(remote).file)
            #expect(try await session.download(file, to: local) == 300_000)
            #expect(FileManager.default.contents(atPath: local) == contents)
            await connection.close()

            let batch = try server.directory.write("batch", "get /tree/small.txt \(server.directory.file("small.out"))\n")
            let sftp = try await runProcess("sftp", [
                "-b", batch, "-P", "\(server.port)", "-i", server.clientKey, "-o", "UserKnownHostsFile=\(server.knownHosts)",
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "\(server.username)@127.0.0.1",
            ])
            #expect(sftp.status == 0, "\(sftp.stderr)")
            #expect(FileManager.default.contents(atPath: server.directory.file("small.out")) == Data("small".utf8))
        }
    }

    @Test func liesAsScripted() async throws {
        let script = SFTPServerScript(
            dirs: ["/crafted": .init([.init("x", size: 7), .init("link", type: "symlink")], generate: .init(count: 250))],
            deep: ["/deep": 3],
            files: ["/lying.bin": .init(times: 1, statSize: 10)])
        try await withScriptedSFTPServer(script) { server in
            try server.serve("lying.bin", Data(count: 100))
            let connection = try await SSHConnection.connect(try server.connectionConfiguration(), logger: logger)
            let session = try await connection.openSFTP()
            let crafted = try await session.listDirectory("/crafted")
            #expect(crafted.count == 252, "two crafted and 250 generated names over several READDIRs")
            #expect(crafted.first?.attributes.size == 7)
            #expect(crafted.contains { $0.name == "link" && !$0.attributes.isRegularFile && !$0.attributes.isDirectory })
            #expect(try await session.listDirectory("/deep/d/d").map(\.name) == ["d"])
            #expect(try await session.listDirectory("/deep/d/d/d").isEmpty)
            #expect(try await session.attributes("/lying.bin").size == 10, "STAT lies")
            let (_, file) = try await session.lookUp("/lying.bin")
            session.close(try #require(file))  // the one lying OPEN is used up
            #expect(try await session.attributes("/lying.bin").size == 100, "then the truth")
            await connection.close()
        }
    }
}
