import Foundation
import KafkaClient
import KafkaSyncCore
import TestSupport
import Testing

/// `kafkasync producer` driven as a subprocess against the embedded cluster, checked with kcat.
@Suite(.timeLimit(.minutes(2))) struct ProducerCLITests {
    @Test func flagsSendOneJobThatKcatReads() async throws {
        let fixture = try CLIFixture()
        defer { fixture.remove() }
        let result = try await fixture.kafkasync([
            "producer", "--name", "movie.mkv", "--location", "/data/in/", "--hash", "abc123",
            "--checksum", "sha256:" + String(repeating: "a", count: 64), "--size", "42", "--destination", "films",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("Sent job abc123"))
        #expect(result.stdout.contains("offset 0"))
        let lines = try await fixture.kcatRead(1)
        #expect(lines.count == 1)
        let parts = lines[0].split(separator: "\t", maxSplits: 1).map(String.init)
        #expect(parts.first == "movie.mkv", "keyed by name like the original")
        let json = try #require(JSONSerialization.jsonObject(with: Data(parts[1].utf8)) as? [String: Any])
        #expect(json["name"] as? String == "movie.mkv")
        #expect(json["location"] as? String == "/data/in/")
        #expect(json["info_hash"] as? String == "abc123")
        #expect(json["size"] as? Int == 42)
        #expect(json["destination"] as? String == "films")
    }

    @Test func invalidFlagsAreRefusedAndNothingIsSent() async throws {
        let fixture = try CLIFixture()
        defer { fixture.remove() }
        let traversal = try await fixture.kafkasync(["producer", "--name", "../etc/passwd", "--location", "/"])
        #expect(traversal.status == 1)
        #expect(traversal.stderr.contains("path_traversal"))
        let missing = try await fixture.kafkasync(["publish", "--name", "x"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("--location"))
        let jobs = try await fixture.kafkasync(["producer", "--name", "ok", "--location", "/r"])
        #expect(jobs.status == 0)
        #expect(jobs.stdout.contains("offset 0"), "the refused jobs never reached the topic")
    }

    @Test func interactivePromptsThroughAPipe() async throws {
        let fixture = try CLIFixture()
        defer { fixture.remove() }
        let result = try await fixture.kafkasync(["producer"], stdin: "h1\nfirst.mkv\n/remote/a/\n\nsecond.bin\n/remote/b\n")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("🔢 Enter hash: "))
        #expect(result.stdout.contains("📄 Enter file name: "))
        #expect(result.stdout.contains("🌐 Enter remote location: "))
        #expect(result.stdout.components(separatedBy: "✅ Sent job").count == 3)
        let jobs = try await fixture.consumeJobs(2).sorted { $0.name < $1.name }
        #expect(jobs.map(\.name) == ["first.mkv", "second.bin"])
        #expect(jobs[0].id == "h1")
        #expect(jobs[0].location == "/remote/a/")
        #expect(jobs[1].infoHash == nil, "an empty hash is no hash")
    }

    @Test func batchSendsValidLinesAndReportsInvalidOnesByNumber() async throws {
        let fixture = try CLIFixture()
        defer { fixture.remove() }
        let batch = try fixture.directory.write("jobs.jsonl", """
            {"info_hash": "1", "name": "a.txt", "location": "/x/"}
            {"name": "../../etc/shadow", "location": "/"}
            {"name": "b.txt", "location": "/x/", "checksum": "md5:\(String(repeating: "0", count: 32))"}
            not json

            {"info_hash": "3", "name": "c.txt", "location": "/y/", "kind": "file"}
            """)
        let result = try await fixture.kafkasync(["producer", "--batch", batch])
        #expect(result.status == 1, "invalid lines make the exit status 1")
        #expect(result.stderr.contains("line 2"))
        #expect(result.stderr.contains("line 4"))
        #expect(!result.stderr.contains("line 1:"))
        #expect(!result.stderr.contains("line 5"))
        let jobs = try await fixture.consumeJobs(3)
        #expect(Set(jobs.map(\.name)) == ["a.txt", "b.txt", "c.txt"])

        let piped = try await fixture.kafkasync(["producer", "--batch", "-"],
                                                stdin: "{\"name\": \"d.txt\", \"location\": \"/z\"}\n")
        #expect(piped.status == 0, "\(piped.stderr)")
        #expect(piped.stdout.contains("(d.txt)"))
    }

    @Test func kafkasyncReadsWhatKcatWroteInTheOriginalFormat() async throws {
        let fixture = try CLIFixture()
        defer { fixture.remove() }
        let original = #"{"info_hash": "12345abcdef", "name": "my-test-file.mkv", "location": "/path/to/remote/files/"}"#
        let result = try await runProcess("kcat", ["-b", fixture.cluster.bootstrapServers, "-P", "-t", fixture.topic,
                                                   "-K", "\t"], stdin: "my-test-file.mkv\t\(original)\n")
        #expect(result.status == 0, "\(result.stderr)")
        let jobs = try await fixture.consumeJobs(1)
        #expect(jobs.first?.id == "12345abcdef")
        #expect(jobs.first?.name == "my-test-file.mkv")
        #expect(jobs.first?.location == "/path/to/remote/files/")
        #expect(jobs.first?.kind == .auto)
    }

    @Test func embeddedWithoutARunningBrokerSaysHowToStartOne() async throws {
        let fixture = try CLIFixture()
        defer { fixture.remove() }
        EmbeddedBootstrapFile(configFile: fixture.configPath).remove()
        let result = try await fixture.kafkasync(["producer", "--name", "a", "--location", "/r"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("kafkasync broker"))
    }
}

extension ProducerCLITests {
    @Test func aStaleStateFileIsReportedNotWaitedOn() async throws {
        let fixture = try CLIFixture()
        defer { fixture.remove() }
        // A broker killed with SIGKILL leaves its state file behind; nothing listens there now.
        try EmbeddedBootstrapFile(configFile: fixture.configPath).write(bootstrapServers: "127.0.0.1:1")
        let result = try await fixture.kafkasync(["producer", "--name", "a", "--location", "/r"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("not running"))
    }
}
