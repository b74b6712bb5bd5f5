import Foundation
import KafkaClient
import KafkaSyncCore
import TestSupport
import Testing

/// `kafkasync consumer` with `engine = "lftp"` against hostile jobs and servers: the binary as a subprocess, an
/// embedded cluster, a real sshd and Debian's lftp.
@Suite(.serialized, .timeLimit(.minutes(5))) struct LftpEndToEndTests {
    /// The fixture's key-based login, served by lftp.
    static func lftpRemote(_ server: SSHServerFixture) -> String {
        """
        host = "127.0.0.1:\(server.port)"
        username = "\(server.username)"
        private_key = "\(server.clientKey)"
        known_hosts = "\(server.knownHosts)"
        engine = "lftp"
        """
    }

    /// Runs `body` with a started consumer, killed afterwards (its log is shown when `body` fails).
    func withLftpConsumer(_ body: (ConsumerFixture, BackgroundProcess) async throws -> Void) async throws {
        try await withConsumerFixture(remoteConfig: Self.lftpRemote) { fixture in
            let consumer = try await fixture.startConsumer()
            do {
                try await body(fixture, consumer)
                _ = await consumer.stop(signal: SIGKILL)
            } catch {
                _ = await consumer.stop(signal: SIGKILL)
                Issue.record("consumer log:\n\(consumer.stderr.suffix(4000))")
                throw error
            }
        }
    }

    @Test func aJobOnAnRSAOnlyServerLandsWithNoEngineSetting() async throws {
        // The fixture's remote names no engine: "auto".
        try await withConsumerFixture(hostKeyType: "rsa") { fixture in
            try fixture.server.serve("from-the-appliance.bin", Data("served over an RSA host key".utf8))
            try fixture.server.serve("second.bin", Data("and again".utf8))
            try await fixture.withConsumer { consumer in
                try await fixture.publish([fixture.job("from-the-appliance.bin")])
                let done = try await fixture.read(fixture.topics.done, count: 1)
                #expect(try DoneEvent.decode(done[0].value).name == "from-the-appliance.bin")
                try await fixture.publish([fixture.job("second.bin")])
                _ = try await fixture.read(fixture.topics.done, count: 2)
                #expect(FileManager.default.contents(atPath: fixture.completes + "/from-the-appliance.bin")
                        == Data("served over an RSA host key".utf8))
                #expect(FileManager.default.contents(atPath: fixture.completes + "/second.bin") == Data("and again".utf8))
                let switched = consumer.stderr.components(separatedBy: "uses lftp from now on").count - 1
                #expect(switched == 1, "the choice is logged once: \(consumer.stderr.suffix(3000))")
            }
            let history = try await runProcess(try kafkasyncExecutable(), ["history", "--json", "--config", fixture.configPath])
            #expect(history.stdout.components(separatedBy: "\"engine\":\"lftp\"").count - 1 == 2,
                    "the store records which engine downloaded each: \(history.stdout)")
        }
    }

    @Test func aLocationThatLftpWouldReadAsAnOptionOrAURLIsDeadLetteredAndNothingIsWritten() async throws {
        let target = "/tmp/x-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: target) }
        try await withLftpConsumer { fixture, consumer in
            try fixture.server.serve("a.bin", Data("a".utf8))
            let hostile = [
                #"{"name": "a.bin", "location": "-O\#(target)", "kind": "file"}"#,
                #"{"name": "a.bin", "location": "-O\#(target)", "kind": "directory"}"#,
                #"{"name": "passwd", "location": "file:/etc", "kind": "file"}"#,
                #"{"name": "passwd", "location": "sftp://127.0.0.1:\#(fixture.server.port)/etc"}"#,
            ]
            try await fixture.publish(hostile)
            let dead = try await fixture.read(fixture.topics.deadLetter, count: hostile.count)
            for record in dead {
                #expect(record.header(JobHeader.reason) == "invalid_path", "\(String(decoding: record.value, as: UTF8.self))")
            }
            #expect(!FileManager.default.fileExists(atPath: target), "nothing under \(target)")
            #expect(fixture.landedFiles().isEmpty, "no local or foreign file reached completes: \(fixture.landedFiles())")
            #expect(consumer.isRunning)
        }
    }

    @Test func aMirroredTreeNeverBringsASymlink() async throws {
        try await withLftpConsumer { fixture, _ in
            try fixture.server.serve("tree/x.txt", Data("x".utf8))
            try fixture.server.serve("tree/sub/y.txt", Data("y".utf8))
            try FileManager.default.createSymbolicLink(atPath: fixture.server.dataPath("tree/link"), withDestinationPath: "x.txt")
            try FileManager.default.createSymbolicLink(atPath: fixture.server.dataPath("tree/sub/etc"), withDestinationPath: "/etc")
            try await fixture.publish([fixture.job("tree", extra: #", "kind": "directory""#)])
            _ = try await fixture.read(fixture.topics.done, count: 1)
            #expect(fixture.landedFiles() == ["tree/sub/y.txt", "tree/x.txt"])
            for path in ["tree/link", "tree/sub/etc"] {
                var info = stat()
                #expect(lstat(fixture.completes + "/" + path, &info) == -1, "\(path) must not exist in completes")
            }
        }
    }
}

/// A consumer that needs lftp where there is none refuses to start, naming the remote and the program.
@Suite struct LftpMissingTests {
    @Test func aMissingLftpStopsTheConsumerAndConfigCheckWithAClearError() async throws {
        let directory = try TemporaryDirectory(prefix: "kafkasync-nolftp")
        defer { directory.remove() }
        let config = try directory.write("config.toml", """
            kafka_url = "localhost:1"
            [remoteDetails]
            host = "127.0.0.1:2222"
            username = "u"
            password = "pw"
            [remotes.mirror-eu]
            host = "127.0.0.1:2223"
            username = "u"
            password = "pw"
            engine = "lftp"
            [locations]
            incompletes = "./incompletes/"
            completes = "./completes/"
            """)
        // PATH without lftp: the consumer must not start at all (it would otherwise fail every job of mirror-eu).
        for command in [["consumer"], ["config", "check"]] {
            let result = try await withTimeout(.seconds(30), "kafkasync \(command)") {
                try await runProcess(try kafkasyncExecutable(), command + ["--config", config],
                                     environment: ["PATH": directory.path])
            }
            #expect(result.status == 1, "\(command): \(result.stderr)")
            #expect(result.stderr.contains("\"mirror-eu\"") && result.stderr.contains("lftp is not installed"),
                    "\(command): \(result.stderr)")
            #expect(!result.stderr.contains("remoteDetails"), "the native remote is fine")
        }
    }
}
