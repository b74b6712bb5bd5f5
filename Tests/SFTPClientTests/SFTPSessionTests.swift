import Crypto
import Foundation
import NIOSSH
import TestSupport
import Testing
@testable import SFTPClient

/// The native engine against a real OpenSSH sshd on loopback.
@Suite(.timeLimit(.minutes(2))) struct SFTPSessionTests {
    let logger = KafkaFixtures.logger("kafkasync.test.sftp")

    func configuration(_ server: SSHServerFixture, credentials: [SSHCredential]? = nil,
                       verifier: HostKeyVerifier? = nil) throws -> SSHConnectionConfiguration {
        let key = try OpenSSHPrivateKey.parse(try String(contentsOfFile: server.clientKey, encoding: .utf8),
                                              name: server.clientKey)
        return SSHConnectionConfiguration(
            host: "127.0.0.1", port: server.port, username: server.username,
            credentials: credentials ?? [.privateKey(key, path: server.clientKey)],
            hostKeyVerifier: verifier ?? HostKeyVerifier(host: "127.0.0.1", port: server.port, knownHosts: server.knownHosts))
    }

    func randomData(_ count: Int) -> Data {
        var generator = SystemRandomNumberGenerator()
        var data = Data(capacity: count + 8)
        while data.count < count {
            withUnsafeBytes(of: generator.next()) { data.append(contentsOf: $0) }
        }
        return data.prefix(count)
    }

    @Test func downloadsEmptySmallAndMultiChunkFilesIntact() async throws {
        try await withSSHServer { server in
            let connection = try await SSHConnection.connect(try configuration(server), logger: logger)
            let session = try await connection.openSFTP()
            #expect(session.maximumReadLength > 32 * 1024, "limits@openssh.com raised the read size")
            for (name, size) in [("empty", 0), ("small", 1000), ("multi chunk ü.bin", 3_000_000 + 17)] {
                let contents = randomData(size)
                let remote = try server.serve(name, contents)
                let local = server.directory.file("out-\(size)")
                let looked = try #require(try await session.lookUp(remote).file)
                #expect(try await session.download(looked, to: local) == Int64(size))
                #expect(FileManager.default.contents(atPath: local) == contents, "\(name)")
                // A server that gave no size: FSTAT, then one more READ confirms the end.
                let unsized = SFTPFileAttributes(size: nil, permissions: nil, modificationTime: nil, isDirectory: false,
                                                 isRegularFile: true)
                try FileManager.default.removeItem(atPath: local)
                #expect(try await session.download(try await session.open(remote, attributes: unsized), to: local) == Int64(size))
                #expect(FileManager.default.contents(atPath: local) == contents, "\(name), size unknown")
            }
            let home = try await session.realPath(".")
            #expect(home.hasPrefix("/"))
            let attributes = try await session.attributes(server.dataPath("small"))
            #expect(attributes.size == 1000 && attributes.isRegularFile && !attributes.isDirectory)
            await session.close()
            await connection.close()
        }
    }

    @Test func listsDirectoriesWithSpacesUnicodeAndSubfolders() async throws {
        try await withSSHServer { server in
            try server.serve("tree/a file.txt", Data("a".utf8))
            try server.serve("tree/ünïcødé 名前.bin", Data(count: 300))
            try server.serve("tree/sub dir/deep.txt", Data("deep".utf8))
            for index in 0..<150 { try server.serve("tree/many/file-\(index)", Data()) }
            let connection = try await SSHConnection.connect(try configuration(server), logger: logger)
            let session = try await connection.openSFTP()
            let entries = try await session.listDirectory(server.dataPath("tree"))
            #expect(Set(entries.map(\.name)) == ["a file.txt", "ünïcødé 名前.bin", "sub dir", "many"])
            #expect(entries.first { $0.name == "sub dir" }?.attributes.isDirectory == true)
            #expect(entries.first { $0.name == "ünïcødé 名前.bin" }?.attributes.size == 300)
            #expect(try await session.listDirectory(server.dataPath("tree/many")).count == 150, "several READDIR rounds")
            await #expect {
                _ = try await session.listDirectory(server.dataPath("missing"))
            } throws: { ($0 as? SFTPError)?.code == .noSuchFile }
            await connection.close()
        }
    }

    @Test func lookUpOpensRegularFilesWithTheirStatAndEveryHandleIsClosed() async throws {
        try await withSSHServer { server in
            let contents = randomData(10_240)
            let remote = try server.serve("one.bin", contents)
            let shrinking = try server.serve("shrinking.bin", contents)
            try server.serve("folder/inside.txt", Data("x".utf8))
            let connection = try await SSHConnection.connect(try configuration(server), logger: logger)
            let session = try await connection.openSFTP()

            let (attributes, file) = try await session.lookUp(remote)
            #expect(attributes.size == 10_240 && attributes.isRegularFile)
            let local = server.directory.file("one.out")
            #expect(try await session.download(try #require(file), to: local) == 10_240)
            #expect(FileManager.default.contents(atPath: local) == contents)

            let folder = try await session.lookUp(server.dataPath("folder"))
            #expect(folder.attributes.isDirectory && folder.file == nil, "a folder is not handed out as a file")
            await #expect {
                _ = try await session.lookUp(server.dataPath("missing"))
            } throws: { ($0 as? SFTPError)?.code == .noSuchFile }
            session.close(try #require(try await session.lookUp(remote).file))  // looked up, then not wanted
            let listed = try await session.open(remote, attributes: attributes)
            #expect(try await session.download(listed, to: local, offset: 4096) == 10_240, "resumes from the local file")
            #expect(FileManager.default.contents(atPath: local) == contents)

            // The file shrinks after its lookup: its one READ comes back short, and its CLOSE is already on the way.
            let opened = try #require(try await session.lookUp(shrinking).file)
            #expect(truncate(shrinking, 3000) == 0)
            let shortLocal = server.directory.file("shrinking.out")
            #expect(try await session.download(opened, to: shortLocal) == 3000, "the caller sees fewer bytes than the size")
            #expect(FileManager.default.contents(atPath: shortLocal) == contents.prefix(3000))

            // Every handle the server opened (files, and the folder opened with its lookup) gets closed, though no
            // CLOSE is awaited: the server process holds none of them open once the answers are in.
            #expect(try await session.realPath(".").hasPrefix("/"), "a round trip after the last CLOSE")
            #expect(await server.openDataFiles() == [])
            await connection.close()
        }
    }

    @Test func resumesFromAPartialFile() async throws {
        try await withSSHServer { server in
            let contents = randomData(1_000_000)
            let remote = try server.serve("resume.bin", contents)
            let local = server.directory.file("partial.bin")
            try contents.prefix(400_000).write(to: URL(fileURLWithPath: local))
            let connection = try await SSHConnection.connect(try configuration(server), logger: logger)
            let session = try await connection.openSFTP()
            let reported = ProgressLog()
            let file = try #require(try await session.lookUp(remote).file)
            let total = try await session.download(file, to: local, offset: 400_000) { reported.record($0) }
            #expect(total == 1_000_000)
            #expect(FileManager.default.contents(atPath: local) == contents)
            #expect(reported.last == 600_000, "progress counts the bytes fetched now")
            await connection.close()
        }
    }

    @Test func missingFilesAndPermissionsAreTypedErrors() async throws {
        try await withSSHServer { server in
            let connection = try await SSHConnection.connect(try configuration(server), logger: logger)
            let session = try await connection.openSFTP()
            await #expect {
                _ = try await session.lookUp(server.dataPath("nope.bin"))
            } throws: { ($0 as? SFTPError)?.code == .noSuchFile && !($0 as! SFTPError).isTransient }
            let secret = try server.serve("secret.bin", Data([1, 2, 3]))
            try FileManager.default.setAttributes([.posixPermissions: 0o000], ofItemAtPath: secret)
            if getuid() == 0 {
                // As root the tests log in as an unprivileged user, so permissions apply.
                await #expect {
                    _ = try await session.lookUp(secret)
                } throws: { ($0 as? SFTPError)?.code == .permissionDenied }
            }
            await connection.close()
        }
    }

    @Test func hostKeysAreCheckedBeforeAuthentication() async throws {
        try await withSSHServer { server in
            let unknown = HostKeyVerifier(host: "127.0.0.1", port: server.port, knownHosts: server.directory.file("empty"))
            await #expect {
                _ = try await SSHConnection.connect(try configuration(server, verifier: unknown), logger: logger)
            } throws: { error in
                guard let error = error as? SFTPError else { return false }
                return error.code == .hostKeyUnknown && error.message.contains(server.hostKeyFingerprint)
            }
            #expect(!server.log.contains("Accepted publickey"), "no credential was sent to an unverified host")

            let pinned = HostKeyVerifier(host: "127.0.0.1", port: server.port, knownHosts: "/nonexistent",
                                         pinnedFingerprint: server.hostKeyFingerprint)
            let connection = try await SSHConnection.connect(try configuration(server, verifier: pinned), logger: logger)
            await connection.close()

            let wrongPin = HostKeyVerifier(host: "127.0.0.1", port: server.port, knownHosts: "/nonexistent",
                                           pinnedFingerprint: "SHA256:" + String(repeating: "A", count: 43))
            await #expect {
                _ = try await SSHConnection.connect(try configuration(server, verifier: wrongPin), logger: logger)
            } throws: { ($0 as? SFTPError)?.code == .hostKeyChanged }

            let learned = server.directory.file("tofu/known_hosts")
            let tofu = HostKeyVerifier(host: "127.0.0.1", port: server.port, knownHosts: learned, trust: .acceptNew)
            await try SSHConnection.connect(try configuration(server, verifier: tofu), logger: logger).close()
            #expect(try String(contentsOfFile: learned, encoding: .utf8).contains(server.hostPublicKey))
        }
    }

    @Test func wrongCredentialsSayWhichMethodFailedWithoutTheSecret() async throws {
        try await withSSHServer { server in
            let otherKey = NIOSSHPrivateKey(ed25519Key: .init())
            var credentials: [SSHCredential] = [.privateKey(otherKey, path: "/keys/other")]
            if server.password != nil { credentials.append(.password("wrong-password-8675309")) }
            await #expect {
                _ = try await SSHConnection.connect(try configuration(server, credentials: credentials), logger: logger)
            } throws: { error in
                guard let error = error as? SFTPError else { return false }
                return error.code == .authenticationFailed && error.message.contains("public key /keys/other")
                    && !error.message.contains("wrong-password-8675309")
            }
            if let password = server.password {
                let connection = try await SSHConnection.connect(try configuration(server, credentials: [.password(password)]),
                                                                 logger: logger)
                await connection.close()
            }
            #expect(!server.log.contains("wrong-password-8675309"))
        }
    }

    @Test func aDeadServerIsATransientErrorNotAHang() async throws {
        try await withSSHServer { server in
            let contents = randomData(40_000_000)
            let remote = try server.serve("big.bin", contents)
            let connection = try await SSHConnection.connect(try configuration(server), logger: logger)
            let session = try await connection.openSFTP()
            let progress = ProgressLog()
            await #expect {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        let file = try #require(try await session.lookUp(remote).file)
                        _ = try await session.download(file, to: server.directory.file("big.out"), window: 1) {
                            progress.record($0)
                        }
                    }
                    group.addTask {
                        while (progress.last ?? 0) < 1_000_000 { try await Task.sleep(for: .milliseconds(5)) }
                        await server.kill()
                    }
                    try await group.waitForAll()
                }
            } throws: { error in
                guard let error = error as? SFTPError else { return false }
                return error.isTransient
            }
            await connection.close()
        }
    }

    @Test func anRSAOnlyServerNamesTheProblemAndSuggestsLftp() async throws {
        try await withSSHServer(hostKeyType: "rsa") { server in
            await #expect {
                _ = try await SSHConnection.connect(try configuration(server), logger: logger)
            } throws: { error in
                guard let error = error as? SFTPError else { return false }
                return error.code == .noCommonAlgorithm && error.message.contains("engine = \"lftp\"")
            }
        }
    }

    @Test func nothingListeningIsAConnectionFailure() async throws {
        let configuration = SSHConnectionConfiguration(
            host: "127.0.0.1", port: 1, username: "u", credentials: [],
            hostKeyVerifier: HostKeyVerifier(host: "127.0.0.1", port: 1))
        await #expect {
            _ = try await SSHConnection.connect(configuration, logger: logger)
        } throws: { ($0 as? SFTPError)?.code == .connectionFailed && ($0 as! SFTPError).isTransient }
    }
}

/// Records progress callbacks (called from the download task).
final class ProgressLog: Sendable {
    private let values = Mutex<[Int64]>([])
    func record(_ value: Int64) { values.withLock { $0.append(value) } }
    var last: Int64? { values.withLock { $0.last } }
    var all: [Int64] { values.withLock { $0 } }
}

import Synchronization
