import Foundation
import KafkaClient
import KafkaSyncCore
import TestSupport
import Testing

/// `kafkasync consumer` when jobs repeat and the disk, the store or the broker fail: for real, with a tmpfs filled
/// up (tests run as root), a SQLite store on a full disk, a producer limit the outcome record exceeds.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ConsumerFailureTests {
    /// Writes `bytes` random bytes to a file the sshd serves and returns its SHA-256.
    func serveRandom(_ fixture: ConsumerFixture, _ name: String, bytes: Int) async throws -> String {
        let path = fixture.server.dataPath(name)
        let made = try await runProcess("sh", ["-c", "head -c \(bytes) /dev/urandom > '\(path)' && chmod 644 '\(path)'"])
        try #require(made.status == 0, "\(made.stderr)")
        return try await sha256(path)
    }

    func sha256(_ path: String) async throws -> String {
        let result = try await runProcess("sha256sum", [path])
        try #require(result.status == 0, "\(result.stderr)")
        return String(result.stdout.prefix(64))
    }

    /// Fills the file system at `folder` (a tmpfs) with a file until `leave` bytes are free.
    func fill(_ folder: String, leaving leave: Int) async throws -> String {
        var info = statvfs()
        try #require(statvfs(folder, &info) == 0)
        let free = Int(info.f_bavail) * Int(info.f_frsize)
        let filler = (folder as NSString).appendingPathComponent("filler")
        let blocks = max(0, (free - leave) / 4096)
        // dd fails once the disk is full when nothing is to be left: that is the point.
        _ = try await runProcess("dd", ["if=/dev/zero", "of=\(filler)", "bs=4096", "count=\(blocks)"])
        return filler
    }

    /// Item 7 of issue 12: two deliveries of one job at once never share its staging file.
    @Test func theSameJobPublishedTwiceAtOnceLandsOnceAndWhole() async throws {
        try await withConsumerFixture(consumerConfig: "concurrency = 2") { fixture in
            let digest = try await serveRandom(fixture, "twice.bin", bytes: 100 << 20)
            let job = fixture.job("twice.bin")
            try await fixture.withConsumer { consumer in
                try await fixture.publish([job, job])
                let done = try await fixture.read(fixture.topics.done, count: 2, within: .seconds(180))
                let statuses = try done.map { try DoneEvent.decode($0.value).status }.sorted()
                #expect(statuses == ["completed", "skipped"], "one download, one duplicate")
                #expect(fixture.landedFiles() == ["twice.bin"], "no numbered copy")
                #expect(try await sha256(fixture.completes + "/twice.bin") == digest)
                #expect(!consumer.stderr.contains("transfer failed"), "neither delivery broke the other")
                #expect(consumer.stderr.contains("another delivery of this job is running; waiting for it"))
            }
        }
    }

    /// Item 10 of issue 12: a full disk is a transient `disk_full`; the partial files stay, and once there is
    /// room every job completes.
    @Test func aFullDiskSendsJobsToRetryAsDiskFullAndTheyCompleteOnceThereIsRoom() async throws {
        let mount = try await TemporaryMount.tmpfs(bytes: 24 << 20)
        try await mount.unmount {
            try await withConsumerFixture(consumerConfig: "max_attempts = 100", extraConfig: """
                [locations]
                incompletes = "\(mount.file("incompletes"))"
                completes = "completes"
                """) { fixture in
                var digests: [String: String] = [:]
                for index in 0..<3 { digests["full-\(index).bin"] = try await serveRandom(fixture, "full-\(index).bin", bytes: 4 << 20) }
                try FileManager.default.createDirectory(atPath: mount.file("incompletes"), withIntermediateDirectories: true)
                let filler = try await fill(mount.path, leaving: 3 << 19)
                try await fixture.withConsumer { consumer in
                    try await fixture.publish(digests.keys.sorted().map { fixture.job($0) })
                    let retries = try await fixture.read(fixture.topics.retry, count: 2)
                    for retry in retries {
                        #expect(retry.header(JobHeader.reason) == "disk_full", "\(retry.header(JobHeader.error) ?? "")")
                        #expect(retry.header(JobHeader.errorClass) == "transient")
                    }
                    let partials = try FileManager.default.contentsOfDirectory(atPath: mount.file("incompletes"))
                        .filter { !$0.hasSuffix(".lock") }
                        .compactMap { (try? FileManager.default.attributesOfItem(atPath: mount.file("incompletes/" + $0)))?[.size] as? NSNumber }
                        .map(\.intValue)
                    #expect(partials.contains { $0 > 0 }, "what was written before the disk filled up is kept")
                    #expect(consumer.stderr.contains("[disk_full]"), "the log names it")

                    try FileManager.default.removeItem(atPath: filler)
                    let done = try await fixture.read(fixture.topics.done, count: 3, within: .seconds(120))
                    #expect(Set(try done.map { try DoneEvent.decode($0.value).name }) == Set(digests.keys))
                    for (name, digest) in digests {
                        #expect(try await sha256(fixture.completes + "/" + name) == digest, "\(name)")
                    }
                    let history = try await runProcess(try kafkasyncExecutable(), [
                        "history", "--config", fixture.configPath, "--json", "--status", "completed",
                    ])
                    #expect(history.stdout.split(separator: "\n").count == 3, "\(history.stdout)\(history.stderr)")
                }
            }
        }
    }

    /// Item 11 of issue 12: a completed transfer the store cannot record is retried, not reported done.
    @Test func aStoreThatCannotWriteSendsTheJobToRetryInsteadOfDone() async throws {
        let mount = try await TemporaryMount.tmpfs(bytes: 4 << 20)
        try await mount.unmount {
            try await withConsumerFixture(consumerConfig: "max_attempts = 100", extraConfig: """
                [store]
                url = "sqlite://\(mount.file("kafkasync.db"))"
                """) { fixture in
                try fixture.server.serve("recorded.txt", Data("recorded".utf8))
                try await fixture.withConsumer { _ in
                    // The store exists now; a full disk makes its next write fail (SQLITE_FULL).
                    let filler = try await fill(mount.path, leaving: 0)
                    try await fixture.publish([fixture.job("recorded.txt")])
                    let retry = try await fixture.read(fixture.topics.retry, count: 1)
                    #expect(retry[0].header(JobHeader.reason) == "store_failed", "\(retry[0].header(JobHeader.error) ?? "")")
                    #expect(retry[0].header(JobHeader.errorClass) == "transient")

                    try FileManager.default.removeItem(atPath: filler)
                    let done = try await fixture.read(fixture.topics.done, count: 1)
                    #expect(try DoneEvent.decode(done[0].value).name == "recorded.txt")
                    let history = try await runProcess(try kafkasyncExecutable(), [
                        "history", "--config", fixture.configPath, "--json", "--status", "completed",
                    ])
                    #expect(history.stdout.contains("recorded.txt"), "the record is there: \(history.stdout)\(history.stderr)")
                }
            }
        }
    }

    /// Item 11 of issue 12: an outcome record the broker can never take (here: over the producer's
    /// `message.max.bytes`, librdkafka's MSG_SIZE_TOO_LARGE) becomes a trimmed dead letter; the partition goes on.
    @Test func anOutcomeTooLargeForTheBrokerBecomesATrimmedDeadLetter() async throws {
        try await withConsumerFixture(partitions: 1, kafkaProperties: ["message.max.bytes": "1000"]) { fixture in
            let name = (0..<3).map { String(repeating: "\($0)", count: 200) }.joined(separator: "/") + ".bin"
            try fixture.server.serve(name, Data("long".utf8))
            try fixture.server.serve("after.txt", Data("after".utf8))
            try await fixture.withConsumer { consumer in
                try await fixture.publish([fixture.job(name)])
                try await fixture.publish([fixture.job("after.txt")])
                let dead = try await fixture.read(fixture.topics.deadLetter, count: 1)
                #expect(dead[0].header(JobHeader.reason) == "outcome_too_large")
                #expect(dead[0].header(JobHeader.originalTopic) == fixture.topics.jobs)
                #expect(dead[0].header(JobHeader.originalOffset) == "0")
                #expect(dead[0].value.isEmpty, "no huge value")
                let done = try await fixture.read(fixture.topics.done, count: 1)
                #expect(try DoneEvent.decode(done[0].value).name == "after.txt", "the next job of the partition flowed")
                #expect(FileManager.default.contents(atPath: fixture.completes + "/" + name) == Data("long".utf8))
                let stopped = ContinuousClock.now
                #expect(await consumer.stop(signal: SIGTERM) == 0)
                #expect(ContinuousClock.now - stopped < .seconds(15), "no publish left hanging")
            }
        }
    }
}
