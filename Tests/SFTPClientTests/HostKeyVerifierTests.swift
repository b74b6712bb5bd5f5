import Foundation
import NIOSSH
import Synchronization
import TestSupport
import Testing
@testable import SFTPClient

/// Host keys made by ssh-keygen, known_hosts files written (and hashed) by ssh-keygen.
@Suite struct HostKeyVerifierTests {
    struct Keys {
        let directory: TemporaryDirectory
        let a: (line: String, key: NIOSSHPublicKey, fingerprint: String)
        let b: (line: String, key: NIOSSHPublicKey, fingerprint: String)
        let ecdsa: (line: String, key: NIOSSHPublicKey, fingerprint: String)
    }

    func makeKeys() async throws -> Keys {
        let directory = try TemporaryDirectory()
        func key(_ name: String, _ type: String) async throws -> (String, NIOSSHPublicKey, String) {
            let path = directory.file(name)
            _ = try await runProcess("ssh-keygen", ["-q", "-t", type, "-N", "", "-f", path])
            let line = try String(contentsOfFile: path + ".pub", encoding: .utf8).split(separator: " ").prefix(2)
                .joined(separator: " ")
            let printed = try await runProcess("ssh-keygen", ["-lf", path + ".pub"]).stdout.split(separator: " ")[1]
            return (line, try NIOSSHPublicKey(openSSHPublicKey: line), String(printed))
        }
        return Keys(directory: directory, a: try await key("a", "ed25519"), b: try await key("b", "ed25519"),
                    ecdsa: try await key("c", "ecdsa"))
    }

    func code(_ verifier: HostKeyVerifier, _ key: NIOSSHPublicKey) -> String {
        do {
            try verifier.verify(key)
            return "ok"
        } catch {
            return error.code.description
        }
    }

    @Test func fingerprintsAreWhatSSHKeygenPrints() async throws {
        let keys = try await makeKeys()
        defer { keys.directory.remove() }
        #expect(HostKeyVerifier.fingerprint(keys.a.key) == keys.a.fingerprint)
        #expect(HostKeyVerifier.fingerprint(keys.ecdsa.key) == keys.ecdsa.fingerprint)
    }

    @Test func plainAndHashedEntriesWithPorts() async throws {
        let keys = try await makeKeys()
        defer { keys.directory.remove() }
        let file = try keys.directory.write("known_hosts", """
            # a comment
            [127.0.0.1]:2222 \(keys.a.line)
            sftp.example.com,10.0.0.5 \(keys.b.line)
            """)
        let onPort = HostKeyVerifier(host: "127.0.0.1", port: 2222, knownHosts: file)
        #expect(code(onPort, keys.a.key) == "ok")
        #expect(code(onPort, keys.b.key) == "host_key_changed")
        #expect(code(HostKeyVerifier(host: "10.0.0.5", port: 22, knownHosts: file), keys.b.key) == "ok")
        #expect(code(HostKeyVerifier(host: "127.0.0.1", port: 22, knownHosts: file), keys.a.key) == "host_key_unknown",
                "port 22 is a different entry from [127.0.0.1]:2222")

        let hashing = try await runProcess("ssh-keygen", ["-H", "-f", file])
        #expect(hashing.status == 0, "\(hashing.stderr)")
        let hashed = try String(contentsOfFile: file, encoding: .utf8)
        #expect(hashed.contains("|1|") && !hashed.contains("127.0.0.1"))
        #expect(code(onPort, keys.a.key) == "ok")
        #expect(code(onPort, keys.b.key) == "host_key_changed")
        #expect(code(HostKeyVerifier(host: "sftp.example.com", port: 22, knownHosts: file), keys.b.key) == "ok")
    }

    @Test func wildcardsNegationsRevocationAndOtherKeyTypes() async throws {
        let keys = try await makeKeys()
        defer { keys.directory.remove() }
        let file = try keys.directory.write("known_hosts", """
            *.example.com,!evil.example.com \(keys.a.line)
            @revoked * \(keys.b.line)
            @cert-authority *.example.com \(keys.ecdsa.line)
            other.org \(keys.ecdsa.line)
            """)
        #expect(code(HostKeyVerifier(host: "files.example.com", port: 22, knownHosts: file), keys.a.key) == "ok")
        #expect(code(HostKeyVerifier(host: "evil.example.com", port: 22, knownHosts: file), keys.a.key) == "host_key_unknown")
        #expect(code(HostKeyVerifier(host: "files.example.com", port: 22, knownHosts: file), keys.b.key) == "host_key_revoked")
        #expect(code(HostKeyVerifier(host: "other.org", port: 22, knownHosts: file), keys.a.key) == "host_key_unknown",
                "only an ECDSA key is known: an ed25519 key is new, not changed")
    }

    @Test func strictRefusesUnknownKeysWithTheFingerprintAndTheFix() async throws {
        let keys = try await makeKeys()
        defer { keys.directory.remove() }
        let verifier = HostKeyVerifier(host: "127.0.0.1", port: 2222, knownHosts: keys.directory.file("none"))
        #expect { try verifier.verify(keys.a.key) } throws: { error in
            guard let error = error as? SFTPError else { return false }
            return error.code == .hostKeyUnknown && error.message.contains(keys.a.fingerprint)
                && error.message.contains("ssh-keyscan -p 2222 127.0.0.1") && error.message.contains("accept-new")
        }
        #expect(!FileManager.default.fileExists(atPath: keys.directory.file("none")))
    }

    @Test func acceptNewRecordsTheFirstKeyAndRefusesAChangedOne() async throws {
        let keys = try await makeKeys()
        defer { keys.directory.remove() }
        let file = keys.directory.file("fresh/.ssh/known_hosts")
        let verifier = HostKeyVerifier(host: "127.0.0.1", port: 2222, knownHosts: file, trust: .acceptNew)
        #expect(code(verifier, keys.a.key) == "ok")
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "[127.0.0.1]:2222 \(keys.a.line)\n")
        #expect(code(verifier, keys.a.key) == "ok")
        #expect(code(verifier, keys.b.key) == "host_key_changed", "accept-new never accepts a changed key")
        #expect(code(HostKeyVerifier(host: "127.0.0.1", port: 2222, knownHosts: file), keys.a.key) == "ok",
                "strict accepts what accept-new recorded")
        // OpenSSH reads what we recorded.
        let found = try await runProcess("ssh-keygen", ["-F", "[127.0.0.1]:2222", "-f", file])
        #expect(found.status == 0 && found.stdout.contains(keys.a.line))
    }

    @Test func aNonUTF8LineNeverMakesAcceptNewAcceptAChangedKey() async throws {
        let keys = try await makeKeys()
        defer { keys.directory.remove() }
        // A Latin-1 comment (0xE9, "é") before the host's old key: the file is not UTF-8.
        let file = keys.directory.file("latin1_known_hosts")
        let original = Data("# caf".utf8) + Data([0xE9]) + Data("\n[127.0.0.1]:2222 \(keys.a.line)\nbroken \u{FF}".utf8)
            + Data([0xFF, 0x0A])
        try original.write(to: URL(fileURLWithPath: file))
        let verifier = HostKeyVerifier(host: "127.0.0.1", port: 2222, knownHosts: file, trust: .acceptNew)
        #expect(code(verifier, keys.a.key) == "ok")
        #expect(code(verifier, keys.b.key) == "host_key_changed")
        #expect(try Data(contentsOf: URL(fileURLWithPath: file)) == original, "nothing was appended")
    }

    @Test func aServerPresentingAnotherKeyFailsUnderAcceptNewDespiteALatin1Comment() async throws {
        let keys = try await makeKeys()
        defer { keys.directory.remove() }
        try await withSSHServer { server in
            let file = server.directory.file("latin1_known_hosts")
            let original = Data("# Schl".utf8) + Data([0xFC]) + Data("ssel f".utf8) + Data([0xFC])
                + Data("r den Server\n[127.0.0.1]:\(server.port) \(keys.a.line)\n".utf8)
            try original.write(to: URL(fileURLWithPath: file))
            let key = try OpenSSHPrivateKey.parse(try String(contentsOfFile: server.clientKey, encoding: .utf8),
                                                  name: server.clientKey)
            let configuration = SSHConnectionConfiguration(
                host: "127.0.0.1", port: server.port, username: server.username,
                credentials: [.privateKey(key, path: server.clientKey)],
                hostKeyVerifier: HostKeyVerifier(host: "127.0.0.1", port: server.port, knownHosts: file, trust: .acceptNew))
            await #expect {
                _ = try await SSHConnection.connect(configuration, logger: KafkaFixtures.logger("kafkasync.test.hostkeys"))
            } throws: { ($0 as? SFTPError)?.code == .hostKeyChanged }
            #expect(try Data(contentsOf: URL(fileURLWithPath: file)) == original, "the server's key was not recorded")
        }
    }

    @Test func concurrentAcceptNewAppendsNeitherLoseNorSplitLines() async throws {
        let keys = try await makeKeys()
        defer { keys.directory.remove() }
        let file = keys.directory.file("shared/known_hosts")
        // Starts without a final newline: the first recorded line must still be a line of its own.
        try FileManager.default.createDirectory(atPath: keys.directory.file("shared"), withIntermediateDirectories: true)
        try Data("other.example.com \(keys.ecdsa.line)".utf8).write(to: URL(fileURLWithPath: file))
        let hosts = 32
        let results = await onThreads(hosts) { index in
            code(HostKeyVerifier(host: "10.0.0.\(index)", port: 2222, knownHosts: file, trust: .acceptNew), keys.a.key)
        }
        #expect(results == Array(repeating: "ok", count: hosts))
        let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == hosts + 2, "the old line, one line per host, and the final newline")
        #expect(Set(lines.dropFirst().dropLast()) == Set((0..<hosts).map { "[10.0.0.\($0)]:2222 \(keys.a.line)" }))
        for index in 0..<hosts {
            #expect(code(HostKeyVerifier(host: "10.0.0.\(index)", port: 2222, knownHosts: file), keys.a.key) == "ok")
        }
        #expect(code(HostKeyVerifier(host: "other.example.com", port: 22, knownHosts: file), keys.ecdsa.key) == "ok")
    }

    @Test func concurrentAcceptNewOfTwoKeysForOneHostRecordsOnlyOne() async throws {
        let keys = try await makeKeys()
        defer { keys.directory.remove() }
        let file = keys.directory.file("known_hosts")
        let results = await onThreads(32) { index in
            code(HostKeyVerifier(host: "127.0.0.1", port: 2222, knownHosts: file, trust: .acceptNew),
                 index.isMultiple(of: 2) ? keys.a.key : keys.b.key)
        }
        let recorded = try String(contentsOfFile: file, encoding: .utf8)
        let winner = recorded.contains(keys.a.line) ? 0 : 1
        #expect(recorded.split(separator: "\n").count == 1, "\(recorded)")
        for (index, result) in results.enumerated() {
            #expect(result == (index % 2 == winner ? "ok" : "host_key_changed"), "thread \(index)")
        }
    }

    /// Runs `body` on `count` threads at once (each a real thread, so they race for the file) and returns the
    /// results in order.
    func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> String) async -> [String] {
        let results = Mutex([String?](repeating: nil, count: count))
        let start = Mutex(false)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let remaining = Mutex(count)
            for index in 0..<count {
                Thread {
                    while !start.withLock({ $0 }) { sched_yield() }
                    let result = body(index)
                    results.withLock { $0[index] = result }
                    if remaining.withLock({ $0 -= 1; return $0 == 0 }) { continuation.resume() }
                }.start()
            }
            start.withLock { $0 = true }
        }
        return results.withLock { $0.map { $0 ?? "missing" } }
    }

    @Test func pinnedFingerprintsAcceptOnlyThatKey() async throws {
        let keys = try await makeKeys()
        defer { keys.directory.remove() }
        let pinned = HostKeyVerifier(host: "h", port: 22, knownHosts: "/nonexistent", pinnedFingerprint: keys.a.fingerprint)
        #expect(code(pinned, keys.a.key) == "ok")
        #expect { try pinned.verify(keys.b.key) } throws: { error in
            guard let error = error as? SFTPError else { return false }
            return error.code == .hostKeyChanged && error.message.contains(keys.b.fingerprint)
                && error.message.contains(keys.a.fingerprint)
        }
    }
}
