import Dashboard
import Foundation
import KafkaClient
import KafkaSyncCore
import TestSupport
import Testing

/// `kafkasync consumer` end to end: the binary as a subprocess, an embedded cluster, a real sshd, SQLite.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ConsumerEndToEndTests {
    /// Runs `body` with a started consumer and kills it afterwards if the body left it running.
    func withConsumer(_ fixture: ConsumerFixture, environment: [String: String] = [:],
                      _ body: (BackgroundProcess) async throws -> Void) async throws {
        try await fixture.withConsumer(environment: environment, body)
    }

    @Test func manySmallFilesLargeFilesAndADirectoryLandExactlyOnce() async throws {
        try await withConsumerFixture(consumerConfig: "concurrency = 8") { fixture in
            var expected: [String: Data] = [:]
            for index in 0..<500 {
                let name = String(format: "small-%03d.txt", index)
                expected[name] = Data("file \(index) ".utf8 + Data(repeating: UInt8(index % 251), count: index * 20))
                try fixture.server.serve(name, expected[name]!)
            }
            for index in 0..<2 {
                let name = "large-\(index).bin"
                expected[name] = Data((0..<(6_000_000 + index)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) })
                try fixture.server.serve(name, expected[name]!)
            }
            for name in ["tree/a.txt", "tree/sub dir/b c.txt", "tree/sub dir/ünï 🌍.txt"] {
                expected[name] = Data(name.utf8)
                try fixture.server.serve(name, expected[name]!)
            }
            var jobs = (0..<500).map { fixture.job(String(format: "small-%03d.txt", $0)) }
            jobs += ["large-0.bin", "large-1.bin", "tree"].map { fixture.job($0) }

            try await withConsumer(fixture) { consumer in
                try await fixture.publish(jobs)
                let done = try await fixture.read(fixture.topics.done, count: jobs.count, within: .seconds(120))
                #expect(Set(fixture.landedFiles()) == Set(expected.keys), "exactly the published files, no extras")
                for (name, contents) in expected {
                    #expect(FileManager.default.contents(atPath: fixture.completes + "/" + name) == contents, "\(name)")
                }
                let events = try done.map { try DoneEvent.decode($0.value) }
                #expect(Set(events.map(\.name)).count == jobs.count, "one completion event per job")
                #expect(events.allSatisfy { $0.status == "completed" })
                #expect(events.first { $0.name == "tree" }?.files == 3)
                #expect(events.first { $0.name == "large-1.bin" }?.bytes == 6_000_001)

                let history = try await runProcess(try kafkasyncExecutable(), [
                    "history", "--config", fixture.configPath, "--json", "--limit", "1000", "--status", "completed",
                ])
                #expect(history.stdout.split(separator: "\n").count == jobs.count, "the store agrees with the events")
                #expect((try? FileManager.default.contentsOfDirectory(atPath: fixture.incompletes))?.isEmpty ?? true,
                        "nothing left in staging")
                let logins = fixture.server.log.components(separatedBy: "Accepted publickey").count - 1
                #expect((1...4).contains(logins), "505 jobs over at most num_threads pooled connections, not \(logins)")
                #expect(await consumer.stop(signal: SIGTERM) == 0)
            }
        }
    }

    @Test func theConsumerServesHealthAndStatusOnTheURLItPrints() async throws {
        try await withConsumerFixture { fixture in
            try fixture.server.serve("status.txt", Data("counted".utf8))
            try await fixture.withConsumer { consumer, dashboard in
                let page = try #require(dashboard, "no dashboard line")
                // The page URL carries the write token in its fragment (no token is configured).
                #expect(DashboardPage(page).token?.count ?? 0 >= 40, "\(page)")
                let url = DashboardPage(page).url
                #expect(url.hasPrefix("http://127.0.0.1:") && url.hasSuffix("/") && !url.hasSuffix(":0/"), "\(url)")
                #expect(try await httpRequest(url + "healthz").status == 200)
                #expect(try await httpRequest(url + "readyz").status == 200, "it printed that it listens: it has partitions")
                try await fixture.publish([fixture.job("status.txt")])
                let completed = try await withTimeout(.seconds(60), "the status to count the job") {
                    while true {
                        let status = try await httpRequest(url + "api/status").json(StatusResponse.self)
                        if status.counts["completed"] == 1 { return status }
                        try await Task.sleep(for: .milliseconds(100))
                    }
                }
                #expect(completed.counts.values.reduce(0, +) == 1)
                #expect(await consumer.stop(signal: SIGTERM) == 0)
            }
        }
    }

    @Test func anEmptyListenStartsNoServer() async throws {
        try await withConsumerFixture(httpConfig: "listen = \"\"") { fixture in
            try await fixture.withConsumer { consumer, dashboard in
                #expect(dashboard == nil)
                #expect(await consumer.stop(signal: SIGTERM) == 0)
            }
        }
    }

    @Test func poisonMessagesAreDeadLetteredWithTheirReasonAndGoodJobsStillFlow() async throws {
        try await withConsumerFixture { fixture in
            try fixture.server.serve("good.txt", Data("good".utf8))
            let location = fixture.server.dataPath("")
            let poison: [(String, String)] = [
                ("not json at all", "invalid_json"),
                ("{\"name\": \"../../etc/passwd\", \"location\": \"\(location)\"}", "path_traversal"),
                ("{\"location\": \"\(location)\"}", "missing_field"),
                ("{\"name\": \"good.txt\", \"location\": \"\(location)\", \"remote\": \"nowhere\"}", "unknown_remote"),
                ("{\"name\": \"missing.bin\", \"location\": \"\(location)\"}", "no_such_file"),
                ("{\"name\": \"good.txt\", \"location\": \"\(location)\", \"size\": 99}", "size_mismatch"),
            ]
            try await withConsumer(fixture) { consumer in
                try await fixture.publish(poison.map(\.0))
                let dead = try await fixture.read(fixture.topics.deadLetter, count: poison.count)
                let reasons = Dictionary(uniqueKeysWithValues: dead.map {
                    (String(decoding: $0.value, as: UTF8.self), $0.header(JobHeader.reason) ?? "")
                })
                for (value, reason) in poison { #expect(reasons[value] == reason, "\(value)") }
                for record in dead {
                    #expect(record.header(JobHeader.errorClass) == "permanent")
                    #expect(record.header(JobHeader.attempt) == "1")
                    #expect(record.header(JobHeader.originalTopic) == fixture.topics.jobs)
                    #expect(record.header(JobHeader.originalOffset) != nil)
                    #expect(record.header(JobHeader.firstFailure) != nil)
                    #expect(!(record.header(JobHeader.error) ?? "").isEmpty)
                }
                #expect(consumer.isRunning, "the daemon survives every poison message")
                try await fixture.publish([fixture.job("good.txt")])
                _ = try await fixture.read(fixture.topics.done, count: 1)
                #expect(FileManager.default.contents(atPath: fixture.completes + "/good.txt") == Data("good".utf8))

                // `dlq list` shows them; once the missing file exists, `dlq replay` gets it done.
                let listed = try await runProcess(try kafkasyncExecutable(), ["dlq", "list", "--json", "--config", fixture.configPath])
                let lines = try listed.stdout.split(separator: "\n").map {
                    try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
                }
                #expect(Set(lines.compactMap { $0["reason"] as? String }) == Set(poison.map(\.1)), "\(listed.stderr)")
                let missing = try #require(lines.first { $0["reason"] as? String == "no_such_file" })
                #expect(missing["name"] as? String == "missing.bin" && missing["attempts"] as? Int == 1)
                let table = try await runProcess(try kafkasyncExecutable(), ["dlq", "list", "--config", fixture.configPath])
                #expect(table.stdout.contains("path_traversal") && table.stdout.contains("6 dead letter(s)"))

                try fixture.server.serve("missing.bin", Data("found".utf8))
                let replay = try await runProcess(try kafkasyncExecutable(), [
                    "dlq", "replay", "--id", try #require(missing["position"] as? String), "--config", fixture.configPath,
                ])
                #expect(replay.status == 0 && replay.stdout.contains("replayed 1 of 1"), "\(replay.stdout)\(replay.stderr)")
                _ = try await fixture.read(fixture.topics.done, count: 2)
                #expect(FileManager.default.contents(atPath: fixture.completes + "/missing.bin") == Data("found".utf8))
                let wrong = try await runProcess(try kafkasyncExecutable(), ["dlq", "replay", "--id", "9:999", "--config", fixture.configPath])
                #expect(wrong.status == 1 && wrong.stderr.contains("no dead letter has position or job id 9:999"))
            }
        }
    }

    @Test func anUnreachableServerSendsJobsThroughTheRetryTopicUntilItIsBack() async throws {
        try await withConsumerFixture(consumerConfig: "max_attempts = 20") { fixture in
            try fixture.server.serve("later.bin", Data(repeating: 7, count: 100_000))
            try await withConsumer(fixture) { consumer in
                await fixture.server.kill()
                try await fixture.publish([fixture.job("later.bin")])
                let retries = try await fixture.read(fixture.topics.retry, count: 2)
                #expect(retries.compactMap { $0.header(JobHeader.attempt) }.sorted() == ["2", "3"])
                #expect(retries.allSatisfy { $0.header(JobHeader.errorClass) == "transient" && $0.header(JobHeader.notBefore) != nil })
                try await fixture.server.restart()
                _ = try await fixture.read(fixture.topics.done, count: 1)
                #expect(FileManager.default.contents(atPath: fixture.completes + "/later.bin") == Data(repeating: 7, count: 100_000))
            }
        }
    }

    @Test func transientFailuresAreDeadLetteredAfterTheLastAttempt() async throws {
        try await withConsumerFixture(consumerConfig: "max_attempts = 2") { fixture in
            try await withConsumer(fixture) { _ in
                await fixture.server.kill()
                try await fixture.publish([fixture.job("x.bin")])
                let dead = try await fixture.read(fixture.topics.deadLetter, count: 1)
                #expect(dead[0].header(JobHeader.reason) == "attempts_exhausted")
                #expect(dead[0].header(JobHeader.attempt) == "2")
                #expect(dead[0].header(JobHeader.errorClass) == "transient")
                #expect(dead[0].header(JobHeader.originalPartition) != nil)
            }
        }
    }

    @Test func sigtermFinishesTheRunningJobAndExitsZero() async throws {
        try await withConsumerFixture { fixture in
            let contents = Data((0..<40_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
            try fixture.server.serve("big.bin", contents)
            try await withConsumer(fixture) { consumer in
                try await fixture.publish([fixture.job("big.bin")])
                try await fixture.waitUntil("the transfer to start") { consumer.stderr.contains("transfer started") }
                let started = ContinuousClock.now
                #expect(await consumer.stop(signal: SIGTERM) == 0, "\(consumer.stderr.suffix(2000))")
                #expect(ContinuousClock.now - started < .seconds(20), "within the grace period")
                #expect(consumer.stderr.contains("transfer completed"), "the running job finished first")
                #expect(FileManager.default.contents(atPath: fixture.completes + "/big.bin") == contents)

                // Its offset was committed: a new consumer of the group does not do it again.
                let again = try await fixture.startConsumer()
                try await Task.sleep(for: .seconds(3))
                #expect(!again.stderr.contains("job received"), "\(again.stderr)")

                // A second signal aborts at once; the partial download stays in incompletes to resume.
                #expect(try await runProcess("sh", ["-c", "head -c 300000000 /dev/urandom > '\(fixture.server.dataPath("huge.bin"))' && chmod 644 '\(fixture.server.dataPath("huge.bin"))'"]).status == 0)
                try await fixture.publish([fixture.job("huge.bin")])
                try await fixture.waitUntil("the huge transfer to start") { again.stderr.contains("transfer started") }
                kill(again.processIdentifier, SIGTERM)
                try await Task.sleep(for: .milliseconds(300))
                let aborted = ContinuousClock.now
                #expect(await again.stop(signal: SIGTERM) == 130, "\(again.stderr.suffix(1500))")
                #expect(ContinuousClock.now - aborted < .seconds(5), "aborted at once")
                #expect(!FileManager.default.fileExists(atPath: fixture.completes + "/huge.bin"), "nothing half-done in completes")
            }
        }
    }

    @Test func killedConsumerIsRestartedAndEveryFileLandsOnceAndWhole() async throws {
        try await withConsumerFixture { fixture in
            var expected: [String: Data] = [:]
            for index in 0..<4 {
                let name = "part-\(index).bin"
                expected[name] = Data((0..<12_000_000).map { UInt8(truncatingIfNeeded: $0 &* (index + 3)) })
                try fixture.server.serve(name, expected[name]!)
            }
            for index in 0..<100 {
                let name = "s-\(index).txt"
                expected[name] = Data("small \(index)".utf8)
                try fixture.server.serve(name, expected[name]!)
            }
            let total = expected.count
            let first = try await fixture.startConsumer()
            try await fixture.publish(expected.keys.sorted().map { fixture.job($0) })
            try await fixture.waitUntil("some work to be done") { first.stderr.components(separatedBy: "transfer completed").count > 5 }
            #expect(await first.stop(signal: SIGKILL) == SIGKILL)

            try await withConsumer(fixture) { second in
                try await fixture.waitUntil("every file to land", within: .seconds(120)) {
                    fixture.landedFiles().count >= total
                }
                try await Task.sleep(for: .seconds(1))
                #expect(Set(fixture.landedFiles()) == Set(expected.keys), "no partial, renamed or duplicated file")
                for (name, contents) in expected {
                    #expect(FileManager.default.contents(atPath: fixture.completes + "/" + name) == contents, "\(name)")
                }
            }
        }
    }

    @Test func twoConsumersInOneGroupShareTheWork() async throws {
        try await withConsumerFixture { fixture in
            let names = (0..<200).map { "shared-\($0).txt" }
            for name in names { try fixture.server.serve(name, Data(name.utf8)) }
            let a = try await fixture.startConsumer()
            let b = try await fixture.startConsumer()
            defer {
                Task {
                    _ = await a.stop(signal: SIGKILL)
                    _ = await b.stop(signal: SIGKILL)
                }
            }
            // Let the group settle with both members before publishing.
            try await fixture.waitUntil("a rebalance onto both consumers") {
                a.stderr.components(separatedBy: "partitions assigned").count > 2
                    || b.stderr.components(separatedBy: "partitions assigned").count > 1
            }
            try await Task.sleep(for: .seconds(2))
            try await fixture.publish(names.map { fixture.job($0) })
            _ = try await fixture.read(fixture.topics.done, count: names.count)
            func completed(_ log: String) -> [String] {
                log.split(separator: "\n").filter { $0.contains("transfer completed") }.compactMap { line in
                    line.split(separator: " ").first { $0.hasPrefix("job.name=") }.map { String($0.dropFirst(9)) }
                }
            }
            let byA = completed(a.stderr), byB = completed(b.stderr)
            #expect(!byA.isEmpty && !byB.isEmpty, "both consumers worked: \(byA.count) + \(byB.count)\nA:\(a.stderr.prefix(3000))\nB:\(b.stderr.prefix(3000))")
            #expect(byA.count + byB.count == names.count, "no file was downloaded twice")
            #expect(Set(byA + byB) == Set(names))
            #expect(Set(fixture.landedFiles()) == Set(names))
        }
    }

    @Test func aRepeatedJobIsSkippedAndACollisionKeepsBothFiles() async throws {
        try await withConsumerFixture(consumerConfig: "log_format = \"json\"") { fixture in
            try fixture.server.serve("report.csv", Data("v1".utf8))
            try await withConsumer(fixture) { _ in
                try await fixture.publish([fixture.job("report.csv", hash: "same-job")])
                _ = try await fixture.read(fixture.topics.done, count: 1)
                try await fixture.publish([fixture.job("report.csv", hash: "same-job")])
                let events = try await fixture.read(fixture.topics.done, count: 2).map { try DoneEvent.decode($0.value) }
                #expect(events.map(\.status).sorted() == ["completed", "skipped"])

                // Another job, same name, different content: kept beside it with a numbered suffix.
                try fixture.server.serve("report.csv", Data("v2".utf8))
                try await fixture.publish([fixture.job("report.csv", hash: "another-job")])
                let third = try await fixture.read(fixture.topics.done, count: 3).map { try DoneEvent.decode($0.value) }
                #expect(third.first { $0.id == "another-job" }?.path == fixture.completes + "/report.1.csv")
                #expect(FileManager.default.contents(atPath: fixture.completes + "/report.csv") == Data("v1".utf8))
                #expect(FileManager.default.contents(atPath: fixture.completes + "/report.1.csv") == Data("v2".utf8))

                // log_format = "json": every line of consumer.log is an object with the job's fields.
                let log = try String(contentsOfFile: fixture.directory.file("consumer.log"), encoding: .utf8)
                let objects = try log.split(separator: "\n").map {
                    try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String], "\($0)")
                }
                #expect(objects.contains { $0["message"] == "transfer completed" && $0["job.name"] == "report.csv" })
                #expect(objects.allSatisfy { $0["time"] != nil && $0["level"] != nil })
            }
        }
    }

    @Test func theLftpEngineFetchesFilesAndDirectoriesWithAPasswordNobodyCanSeeInPs() async throws {
        try #require(getuid() == 0, "password authentication needs the root-only test user; CI runs as root")
        try await withConsumerFixture(remoteConfig: { server in
            """
            host = "127.0.0.1:\(server.port)"
            username = "\(server.username)"
            password_env = "KAFKASYNC_TEST_LFTP_PASSWORD"
            known_hosts = "\(server.knownHosts)"
            engine = "lftp"
            """
        }) { fixture in
            let password = try #require(fixture.server.password)
            let big = Data((0..<30_000_000).map { UInt8(truncatingIfNeeded: $0 &* 11) })
            try fixture.server.serve("lftp big.bin", big)
            try fixture.server.serve("folder/x.txt", Data("x".utf8))
            try fixture.server.serve("folder/sub/y z.txt", Data("yz".utf8))
            try await withConsumer(fixture, environment: ["KAFKASYNC_TEST_LFTP_PASSWORD": password]) { consumer in
                let watching = Task {
                    var seen: [String] = []
                    while !Task.isCancelled {
                        guard let ps = try? await runProcess("ps", ["-eo", "args"]) else { continue }
                        seen += ps.stdout.split(separator: "\n").filter { $0.contains(password) }.map(String.init)
                        if ps.stdout.contains("lftp") { seen.append("(lftp was running)") }
                        try? await Task.sleep(for: .milliseconds(30))
                    }
                    return seen
                }
                try await fixture.publish([fixture.job("lftp big.bin"), fixture.job("folder", extra: ", \"kind\": \"directory\"")])
                _ = try await fixture.read(fixture.topics.done, count: 2)
                watching.cancel()
                let seen = await watching.value
                #expect(seen.contains("(lftp was running)"), "ps was sampled while lftp ran")
                #expect(seen.filter { $0 != "(lftp was running)" }.isEmpty, "the password appeared in ps: \(seen)")
                #expect(FileManager.default.contents(atPath: fixture.completes + "/lftp big.bin") == big)
                #expect(FileManager.default.contents(atPath: fixture.completes + "/folder/sub/y z.txt") == Data("yz".utf8))
                #expect(FileManager.default.contents(atPath: fixture.completes + "/folder/x.txt") == Data("x".utf8))
                #expect(!consumer.stderr.contains(password), "the password appeared in the log")
            }
        }
    }
}
