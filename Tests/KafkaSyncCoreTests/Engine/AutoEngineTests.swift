import Foundation
import Logging
import Synchronization
import Testing
import TestSupport
@testable import KafkaSyncCore

/// `engine = "auto"` against real sshd servers: an RSA-only server (which the native engine cannot negotiate with)
/// is served through lftp, and the choice is kept; a server the native engine speaks stays native.
@Suite(.timeLimit(.minutes(2))) struct AutoEngineTests {
    let logger = Logger(label: "test.auto-engine")

    /// Counts the transfers it passes on to a real engine (a spy, not a fake: the transfer is real).
    final class Counting: TransferEngine {
        let engine: any TransferEngine
        let calls = Atomic<Int>(0)
        init(_ engine: any TransferEngine) { self.engine = engine }
        func transfer(_ request: TransferRequest, progress: @escaping @Sendable (TransferProgress) -> Void)
            async throws(TransferFailure) -> StagedTransfer
        {
            calls.add(1, ordering: .relaxed)
            return try await engine.transfer(request, progress: progress)
        }
        func shutdown() async { await engine.shutdown() }
    }

    private func remote(_ server: SSHServerFixture) -> RemoteConfig {
        RemoteConfig(name: "box", host: "127.0.0.1", port: server.port, username: server.username,
                     privateKey: server.clientKey, knownHosts: server.knownHosts)
    }

    private func request(_ name: String, _ server: SSHServerFixture, into directory: TemporaryDirectory) throws -> TransferRequest {
        TransferRequest(job: try TransferJob(name: name, location: server.dataPath(""), kind: .file), remote: remote(server),
                        stagedPath: directory.file("\(name).partial"), parallelism: 2, segmentThreshold: 64 << 20)
    }

    @Test func anRSAOnlyServerIsServedThroughLftpAndTheChoiceIsKept() async throws {
        try await withSSHServer(hostKeyType: "rsa") { server in
            let directory = try TemporaryDirectory(prefix: "kafkasync-auto")
            defer { directory.remove() }
            try server.serve("one.bin", Data("first file".utf8))
            try server.serve("two.bin", Data("second file".utf8))
            let native = Counting(NativeEngine(poolSize: 2, logger: logger)), lftp = Counting(LftpEngine(logger: logger))
            let auto = AutoEngine(native: native, lftp: lftp, logger: logger)
            defer { Task { await native.shutdown() } }

            let first = try await auto.transfer(try request("one.bin", server, into: directory)) { _ in }
            #expect(FileManager.default.contents(atPath: first.path) == Data("first file".utf8))
            #expect(auto.remotesOnLftp == ["box"])
            let second = try await auto.transfer(try request("two.bin", server, into: directory)) { _ in }
            #expect(FileManager.default.contents(atPath: second.path) == Data("second file".utf8))
            #expect(native.calls.load(ordering: .relaxed) == 1, "the native engine was tried once, then left alone")
            #expect(lftp.calls.load(ordering: .relaxed) == 2)
        }
    }

    @Test func aPassphraseProtectedKeyIsUsedThroughLftp() async throws {
        try await withSSHServer { server in
            let directory = try TemporaryDirectory(prefix: "kafkasync-auto")
            defer { directory.remove() }
            try server.serve("one.bin", Data("first file".utf8))
            // The fixture's authorized key, protected by a passphrase (as `ssh-keygen -N` writes it).
            let key = directory.file("id_protected")
            try FileManager.default.copyItem(atPath: server.clientKey, toPath: key)
            let protected = try await runProcess("ssh-keygen", ["-q", "-p", "-P", "", "-N", "s3cret words", "-f", key])
            #expect(protected.status == 0, "\(protected.stderr)")
            var request = try request("one.bin", server, into: directory)
            request.remote.privateKey = key
            request.remote.privateKeyPassphrase = Secret("s3cret words")
            let native = NativeEngine(poolSize: 2, logger: logger)
            defer { Task { await native.shutdown() } }
            let auto = AutoEngine(native: native, lftp: LftpEngine(logger: logger), logger: logger)
            let staged = try await auto.transfer(request) { _ in }
            #expect(FileManager.default.contents(atPath: staged.path) == Data("first file".utf8))
            #expect(auto.remotesOnLftp == ["box"], "the native engine cannot decrypt it: unsupported_key")

            // A wrong passphrase fails the transfer; it never waits for a prompt.
            request.remote.privateKeyPassphrase = Secret("wrong")
            request.stagedPath = directory.file("again.partial")
            await #expect(throws: TransferFailure.self) { _ = try await auto.transfer(request) { _ in } }
        }
    }

    @Test func withoutLftpTheNativeEnginesReasonIsReported() async throws {
        try await withSSHServer(hostKeyType: "rsa") { server in
            let directory = try TemporaryDirectory(prefix: "kafkasync-auto")
            defer { directory.remove() }
            try server.serve("one.bin", Data("first file".utf8))
            let native = NativeEngine(poolSize: 2, logger: logger)
            defer { Task { await native.shutdown() } }
            let auto = AutoEngine(native: native, lftp: LftpEngine(logger: logger), lftpInstalled: false, logger: logger)
            let failure = await #expect(throws: TransferFailure.self) {
                _ = try await auto.transfer(try request("one.bin", server, into: directory)) { _ in }
            }
            #expect(failure?.code == .noCommonAlgorithm, "\(String(describing: failure))")
            #expect(auto.remotesOnLftp.isEmpty)
        }
    }

    @Test func aServerTheNativeEngineSpeaksStaysNative() async throws {
        try await withSSHServer { server in
            let directory = try TemporaryDirectory(prefix: "kafkasync-auto")
            defer { directory.remove() }
            try server.serve("one.bin", Data("first file".utf8))
            let native = Counting(NativeEngine(poolSize: 2, logger: logger)), lftp = Counting(LftpEngine(logger: logger))
            defer { Task { await native.shutdown() } }
            let auto = AutoEngine(native: native, lftp: lftp, logger: logger)
            let staged = try await auto.transfer(try request("one.bin", server, into: directory)) { _ in }
            #expect(FileManager.default.contents(atPath: staged.path) == Data("first file".utf8))
            #expect(auto.remotesOnLftp.isEmpty && lftp.calls.load(ordering: .relaxed) == 0)
        }
    }
}
