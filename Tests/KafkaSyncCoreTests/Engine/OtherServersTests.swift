import Foundation
import Logging
import Testing
import TestSupport
@testable import KafkaSyncCore

/// The native engine against SFTP servers other than OpenSSH, started by the tests: ProFTPD's mod_sftp (Debian),
/// asyncssh's SFTP server and paramiko's (PyPI). A file, a file in parallel segments, and a directory tree each land whole.
/// An RSA-only ProFTPD (the appliance case) is served through lftp by `engine = "auto"` with no setting.
@Suite(.timeLimit(.minutes(3))) struct OtherServersTests {
    let logger = Logger(label: "test.other-servers")

    enum Server: String, CaseIterable, Sendable {
        case proftpd, asyncssh, paramiko
    }

    /// What a test needs of a server: write a file there, and a remote for it.
    struct Served: Sendable {
        let serve: @Sendable (String, Data) throws -> String
        let remote: RemoteConfig
        let log: @Sendable () -> String
    }

    private func with(_ kind: Server, _ body: (Served) async throws -> Void) async throws {
        switch kind {
        case .proftpd:
            try await withProFTPDServer { server in
                try await body(Served(serve: { try server.serve($0, $1) }, remote: server.remote(), log: { server.log }))
            }
        case .asyncssh, .paramiko:
            let server = try await ScriptedSFTPServer(implementation: kind == .asyncssh ? .asyncssh : .paramiko)
            do {
                try await body(Served(serve: { try server.serve($0, $1) }, remote: server.remote(), log: { server.log }))
                await server.stop()
            } catch {
                await server.stop()
                throw error
            }
        }
    }

    private static func bytes(_ count: Int, seed: UInt8) -> Data {
        Data((0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) })
    }

    @Test(arguments: Server.allCases)
    func theNativeEngineFetchesAFileSegmentsAndATree(_ kind: Server) async throws {
        try await with(kind) { server in
            let directory = try TemporaryDirectory(prefix: "kafkasync-other-\(kind)")
            defer { directory.remove() }
            var remote = server.remote
            remote.engine = .native
            let engine = NativeEngine(poolSize: 4, logger: logger)
            defer { Task { await engine.shutdown() } }
            let small = Self.bytes(70_000, seed: 1), large = Self.bytes(6 << 20, seed: 2)
            _ = try server.serve("files/small.bin", small)
            _ = try server.serve("files/large.bin", large)
            _ = try server.serve("tree/a.txt", Data("a".utf8))
            _ = try server.serve("tree/sub/b.bin", Self.bytes(300_000, seed: 3))
            _ = try server.serve("tree/sub/deeper/c.txt", Data("c".utf8))

            func fetch(_ name: String, in location: String, kind: TransferJob.Kind) async throws -> StagedTransfer {
                let request = TransferRequest(job: try TransferJob(name: name, location: location, kind: kind), remote: remote,
                                              stagedPath: directory.file("\(name).partial"), parallelism: 4,
                                              segmentThreshold: 1 << 20)
                do {
                    return try await engine.transfer(request) { _ in }
                } catch {
                    Issue.record("server log:\n\(server.log())")
                    throw error
                }
            }
            let one = try await fetch("small.bin", in: "/files", kind: .file)
            #expect(FileManager.default.contents(atPath: one.path) == small)
            let segmented = try await fetch("large.bin", in: "/files", kind: .file)
            #expect(FileManager.default.contents(atPath: segmented.path) == large, "6 MiB in 1 MiB segments")
            let tree = try await fetch("tree", in: "/", kind: .auto)
            #expect(tree.kind == .directory)
            #expect(tree.files.count == 3)
            #expect(FileManager.default.contents(atPath: tree.path + "/sub/b.bin") == Self.bytes(300_000, seed: 3))
            #expect(FileManager.default.contents(atPath: tree.path + "/sub/deeper/c.txt") == Data("c".utf8))
        }
    }

    /// An sshd that offers only one cipher and MAC (no AES-GCM), rekeying every 256 KiB: the native engine
    /// negotiates AES-CTR with HMAC-SHA2 (with and without encrypt-then-MAC) and carries its counters across
    /// packets and new keys.
    @Test(arguments: [("aes128-ctr", "hmac-sha2-256"), ("aes256-ctr", "hmac-sha2-256"),
                      ("aes128-ctr", "hmac-sha2-256-etm@openssh.com"), ("aes256-ctr", "hmac-sha2-256-etm@openssh.com")])
    func aServerWithoutAESGCMIsServedWithCTRAndHMAC(_ cipher: String, _ mac: String) async throws {
        try await withSSHServer(extraConfig: "Ciphers \(cipher)\nMACs \(mac)\nRekeyLimit 256K") { server in
            let directory = try TemporaryDirectory(prefix: "kafkasync-ctr")
            defer { directory.remove() }
            let contents = Self.bytes(3 << 20, seed: 5)
            try server.serve("ctr.bin", contents)
            var remote = RemoteConfig(name: "ctr", host: "127.0.0.1", port: server.port, username: server.username,
                                      privateKey: server.clientKey, knownHosts: server.knownHosts)
            remote.engine = .native
            let engine = NativeEngine(poolSize: 2, logger: logger)
            defer { Task { await engine.shutdown() } }
            let request = TransferRequest(job: try TransferJob(name: "ctr.bin", location: server.dataPath(""), kind: .file),
                                          remote: remote, stagedPath: directory.file("ctr.partial"), parallelism: 2,
                                          segmentThreshold: 1 << 20)
            let staged: StagedTransfer
            do {
                staged = try await engine.transfer(request) { _ in }
            } catch {
                Issue.record("sshd log:\n\(server.log.suffix(2000))")
                throw error
            }
            #expect(FileManager.default.contents(atPath: staged.path) == contents)
        }
    }

    @Test func anRSAOnlyProFTPDIsServedWithNoEngineSetting() async throws {
        try await withProFTPDServer(hostKeyType: "rsa") { server in
            let directory = try TemporaryDirectory(prefix: "kafkasync-other-rsa")
            defer { directory.remove() }
            let contents = Self.bytes(100_000, seed: 4)
            try server.serve("appliance/export.csv", contents)
            let remote = server.remote()
            #expect(remote.engine == .auto, "the default")
            let native = NativeEngine(poolSize: 2, logger: logger)
            defer { Task { await native.shutdown() } }
            let auto = AutoEngine(native: native, lftp: LftpEngine(logger: logger), logger: logger)
            let request = TransferRequest(job: try TransferJob(name: "export.csv", location: "/appliance", kind: .file),
                                          remote: remote, stagedPath: directory.file("export.partial"), parallelism: 2,
                                          segmentThreshold: 64 << 20)
            let staged: StagedTransfer
            do {
                staged = try await auto.transfer(request) { _ in }
            } catch {
                Issue.record("server log:\n\(server.log)")
                throw error
            }
            #expect(FileManager.default.contents(atPath: staged.path) == contents)
            #expect(auto.remotesOnLftp == [remote.name])
        }
    }
}
