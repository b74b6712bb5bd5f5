import Foundation
import TestSupport
import Testing

/// `kafkasync get` against a real sshd.
@Suite(.timeLimit(.minutes(2))) struct GetCLITests {
    func get(_ server: SSHServerFixture, _ path: String, to folder: String, knownHosts: String? = nil,
             extra: [String] = []) async throws -> ProcessResult {
        try await runProcess(try kafkasyncExecutable(), [
            "get", "sftp://\(server.username)@127.0.0.1:\(server.port)\(path)", "--to", folder,
            "--identity", server.clientKey, "--known-hosts", knownHosts ?? server.knownHosts,
        ] + extra)
    }

    @Test func downloadsAFileAndADirectoryTree() async throws {
        try await withSSHServer { server in
            let contents = Data((0..<2_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
            try server.serve("one file.bin", contents)
            try server.serve("tree/a.txt", Data("a".utf8))
            try server.serve("tree/sub/ü.txt", Data("ü".utf8))
            let out = server.directory.file("out")
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)

            let file = try await get(server, server.dataPath("one%20file.bin"), to: out)
            #expect(file.status == 0, "\(file.stderr)")
            #expect(file.stdout.contains("one file.bin: 2000000 bytes in"))
            #expect(FileManager.default.contents(atPath: out + "/one file.bin") == contents)

            let tree = try await get(server, server.dataPath("tree"), to: out)
            #expect(tree.status == 0, "\(tree.stderr)")
            #expect(FileManager.default.contents(atPath: out + "/tree/a.txt") == Data("a".utf8))
            #expect(FileManager.default.contents(atPath: out + "/tree/sub/ü.txt") == Data("ü".utf8))
        }
    }

    @Test func resumesAPartialDownload() async throws {
        try await withSSHServer { server in
            let contents = Data((0..<1_000_000).map { UInt8(truncatingIfNeeded: $0 &* 13) })
            try server.serve("big.bin", contents)
            let out = server.directory.file("out")
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            try contents.prefix(300_000).write(to: URL(fileURLWithPath: out + "/.big.bin.partial"))
            let result = try await get(server, server.dataPath("big.bin"), to: out)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains("700000 bytes"), "only the missing part was fetched")
            #expect(FileManager.default.contents(atPath: out + "/big.bin") == contents)
        }
    }

    @Test func failuresExitNonZeroWithTheReason() async throws {
        try await withSSHServer { server in
            let out = server.directory.file("out")
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let missing = try await get(server, server.dataPath("nope"), to: out)
            #expect(missing.status == 1)
            #expect(missing.stderr.contains("does not exist"))

            let unknown = try await get(server, server.dataPath("nope"), to: out, knownHosts: server.directory.file("none"))
            #expect(unknown.status == 1)
            #expect(unknown.stderr.contains(server.hostKeyFingerprint))

            let learned = server.directory.file("learned_hosts")
            try server.serve("x.txt", Data("x".utf8))
            let tofu = try await get(server, server.dataPath("x.txt"), to: out, knownHosts: learned,
                                     extra: ["--host-key-policy", "accept-new"])
            #expect(tofu.status == 0, "\(tofu.stderr)")
            #expect(try String(contentsOfFile: learned, encoding: .utf8).contains(server.hostPublicKey))

            let badURL = try await runProcess(try kafkasyncExecutable(), ["get", "http://x/y"])
            #expect(badURL.status != 0)
            #expect(badURL.stderr.contains("sftp://"))
        }
    }
}
