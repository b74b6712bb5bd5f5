import Dashboard
import Foundation
import KafkaClient
import KafkaSyncCore
import TestSupport
import Testing

/// Issue 15: `kafkasync consumer` uploads what it downloaded to a real S3 API (moto server, behind the counting,
/// fault-injecting proxy of ``S3Fixture``), at least once and resumably.
@Suite(.serialized, .timeLimit(.minutes(5))) struct UploadEndToEndTests {
    /// A distinctive secret: it must never appear in a log line.
    static let secret = "kafkasync-test-secret-4c9e1f"
    static let environment = ["KS_TEST_ACCESS_KEY": "AKIDKAFKASYNCTEST", "KS_TEST_SECRET_KEY": secret]

    /// The `[uploads.NAME]` tables of the tests: `s3` (SHA-256 checksums), `plain` (none, keep_local off) and
    /// `crc` (CRC32C).
    func uploadsConfig(_ s3: S3Fixture, partSize: String = "5MiB", concurrency: Int = 4, extra: String = "") -> String {
        ["s3", "plain", "crc"].map { name in
            """
            [uploads.\(name)]
            endpoint = "\(s3.endpoint)"
            bucket = "\(s3.bucket)"
            prefix = "\(name == "s3" ? "in/{destination}" : name)"
            access_key_id_env = "KS_TEST_ACCESS_KEY"
            secret_access_key_env = "KS_TEST_SECRET_KEY"
            part_size = "\(partSize)"
            concurrency = \(concurrency)
            checksum = "\(["s3": "sha256", "plain": "none", "crc": "crc32c"][name]!)"
            keep_local = \(name != "plain")
            \(extra)

            """
        }.joined(separator: "\n")
    }

    func serveRandom(_ fixture: ConsumerFixture, _ name: String, bytes: Int) async throws -> Data {
        let path = fixture.server.dataPath(name)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        let made = try await runProcess("sh", ["-c", "head -c \(bytes) /dev/urandom > '\(path)' && chmod 644 '\(path)'"])
        try #require(made.status == 0, "\(made.stderr)")
        return try Data(contentsOf: URL(fileURLWithPath: path))
    }

    func sha256(_ data: Data) async throws -> String {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("x")
        try data.write(to: URL(fileURLWithPath: path))
        return String(try await runProcess("sha256sum", [path]).stdout.prefix(64))
    }

    @Test func smallLargeAndDirectoryJobsLandInTheBucketWithTheirContentAndChecksum() async throws {
        try await withS3Fixture { s3 in
            try await withConsumerFixture(extraConfig: uploadsConfig(s3)) { fixture in
                let small = try await serveRandom(fixture, "small.txt", bytes: 1000)
                let large = try await serveRandom(fixture, "large.bin", bytes: (15 << 20) + 12_345)  // 4 parts of 5 MiB
                var tree: [String: Data] = [:]
                for name in ["a.txt", "sub/b.txt", "sub/deeper/c.txt"] {
                    tree[name] = try await serveRandom(fixture, "tree/" + name, bytes: 3000)
                }
                try await fixture.withConsumer(environment: Self.environment) { consumer, dashboard in
                    try await fixture.publish([
                        fixture.job("small.txt", extra: #", "upload": "s3", "destination": "reports""#),
                        fixture.job("large.bin", hash: "job-large", extra: #", "upload": "s3""#),
                        fixture.job("tree", extra: #", "upload": "s3", "kind": "directory""#),
                        fixture.job("small.txt", hash: "crc-job", extra: #", "upload": "crc""#),
                    ])
                    let done = try await fixture.read(fixture.topics.done, count: 4, within: .seconds(120))
                    #expect(try done.map { try DoneEvent.decode($0.value).status } == ["completed", "completed", "completed", "completed"])
                    #expect(try await s3.object("crc/small.txt") == small, "sent with x-amz-checksum-crc32c")
                    #expect(try await s3.keys() == ["crc/small.txt", "in/large.bin", "in/reports/small.txt", "in/tree/a.txt",
                                                    "in/tree/sub/b.txt", "in/tree/sub/deeper/c.txt"])
                    #expect(try await s3.object("in/reports/small.txt") == small)
                    #expect(try await s3.object("in/large.bin") == large)
                    for (name, data) in tree { #expect(try await s3.object("in/tree/" + name) == data, "\(name)") }
                    #expect(try await s3.metadata("in/large.bin")?["sha256"] == (try await sha256(large)),
                            "the whole file's SHA-256 is the object's metadata (never its ETag)")
                    #expect(try await s3.metadata("in/reports/small.txt")?["sha256"] == (try await sha256(small)))
                    let counts = try await s3.counts()
                    #expect(counts["CreateMultipartUpload"] == 1 && counts["UploadPart"] == 4, "\(counts)")
                    #expect(counts["PutObject"] == 5, "one request per small file: \(counts)")
                    #expect(try await s3.openUploads().isEmpty)
                    #expect(fixture.landedFiles().contains("large.bin"), "keep_local is on by default")
                    // The lineage shows the upload.
                    let page = try #require(dashboard.map { DashboardPage($0).url })
                    let lineage = try await httpRequest(page + "api/transfers/job-large")
                    let uploads = try #require((try JSONSerialization.jsonObject(with: lineage.body) as? [String: Any])?["uploads"]
                        as? [[String: Any]], "\(lineage.text)")
                    #expect(uploads.first?["state"] as? String == "completed" && uploads.first?["parts"] as? Int == 4)
                    #expect(uploads.first?["object"] as? String == "s3://\(s3.bucket)/in/large.bin")
                    #expect(!consumer.stderr.contains(Self.secret), "the secret never reaches the log")
                    // The same job again: its result is complete, nothing is sent.
                    try await fixture.publish([fixture.job("large.bin", hash: nil, extra: #", "id": "again", "upload": "s3""#)])
                    _ = try await fixture.read(fixture.topics.done, count: 5, within: .seconds(60))
                    let after = try await s3.counts()
                    #expect(after["UploadPart"] == 4 && after["CreateMultipartUpload"] == 1,
                            "an identical object at the key is a skip: \(after)")
                }
                let listed = try await runProcess(try kafkasyncExecutable(), ["uploads", "list", "--all", "--config", fixture.configPath],
                                                  environment: Self.environment)
                #expect(listed.status == 0, "\(listed.stderr)")
                #expect(listed.stdout.contains("completed") && listed.stdout.contains("s3://\(s3.bucket)/in/large.bin"), "\(listed.stdout)")
            }
        }
    }

    /// The upload of the object whose key ends with `suffix`, as the dashboard's `/api/status` shows it.
    static func shownUpload(_ url: String, _ suffix: String) async -> RunningUpload? {
        let status = try? await httpRequest(url + "api/status").json(StatusResponse.self)
        return status?.uploads.first { $0.object.hasSuffix(suffix) }
    }

    @Test func aConsumerKilledMidUploadResumesTheSameUploadWithoutResendingParts() async throws {
        try await withS3Fixture { s3 in
            try await withConsumerFixture(extraConfig: uploadsConfig(s3, concurrency: 1)) { fixture in
                let data = try await serveRandom(fixture, "resume.bin", bytes: (20 << 20) + 7)  // 5 parts
                try await s3.control("hold-parts-after/2")
                try await fixture.withConsumer(environment: Self.environment) { consumer, dashboard in
                    try await fixture.publish([fixture.job("resume.bin", extra: #", "upload": "s3""#)])
                    try await TestSupport.waitUntil("two parts acknowledged and the third held", within: .seconds(90)) {
                        ((try? await s3.counts())?["UploadPart"] ?? 0) >= 3
                    }
                    #expect(try await s3.acknowledgedParts() == [1, 2])
                    // The dashboard shows the upload in progress: two parts of five acknowledged.
                    let url = DashboardPage(try #require(dashboard, "the consumer prints the dashboard URL")).url
                    try await TestSupport.waitUntil("the dashboard to show the acknowledged parts") {
                        await Self.shownUpload(url, "/in/resume.bin")?.bytesUploaded == 10 << 20
                    }
                    let upload = await Self.shownUpload(url, "/in/resume.bin")
                    #expect(upload?.state == "uploading" && upload?.size == (20 << 20) + 7, "\(String(describing: upload))")
                    #expect(upload?.object == "s3://\(s3.bucket)/in/resume.bin" && upload?.upload == "s3")
                    _ = await consumer.stop(signal: SIGKILL)
                }
                try await s3.control("release")
                try await TestSupport.waitUntil("the held part reached the store") {
                    ((try? await s3.acknowledgedParts())?.count ?? 0) == 3
                }
                #expect(try await s3.object("resume.bin") == nil, "not complete before the restart")
                try await fixture.withConsumer(environment: Self.environment) { consumer in
                    let done = try await fixture.read(fixture.topics.done, count: 1, within: .seconds(120))
                    #expect(try DoneEvent.decode(done[0].value).status == "completed")
                    #expect(consumer.stderr.contains("resuming a multipart upload"), "\(consumer.stderr.suffix(3000))")
                }
                #expect(try await s3.object("in/resume.bin") == data)
                let counts = try await s3.counts()
                #expect(counts["CreateMultipartUpload"] == 1, "the same upload id was completed: \(counts)")
                #expect(try await s3.acknowledgedParts() == [1, 2, 3, 4, 5], "no part was sent twice")
                #expect(try await s3.openUploads().isEmpty)
            }
        }
    }

    @Test func checksumHeadersAreLeftOutForServersThatRejectThemAndRefusalsAreDeadLettered() async throws {
        try await withS3Fixture { s3 in
            try await withConsumerFixture(consumerConfig: "max_attempts = 2", extraConfig: uploadsConfig(s3)) { fixture in
                _ = try await serveRandom(fixture, "strict.txt", bytes: 100)
                let plain = try await serveRandom(fixture, "plain.txt", bytes: 100)
                try await s3.control("reject-checksums/on")
                try await fixture.withConsumer(environment: Self.environment) { _ in
                    try await fixture.publish([fixture.job("strict.txt", extra: #", "upload": "s3""#),
                                               fixture.job("plain.txt", extra: #", "upload": "plain""#)])
                    let letters = try await fixture.read(fixture.topics.deadLetter, count: 1, within: .seconds(60))
                    #expect(letters[0].header(JobHeader.reason) == "upload_rejected", "\(letters[0].header(JobHeader.error) ?? "")")
                    #expect(letters[0].header(JobHeader.error)?.contains("InvalidArgument") == true)
                    _ = try await fixture.read(fixture.topics.done, count: 1, within: .seconds(60))
                    #expect(try await s3.object("plain/plain.txt") == plain, "checksum = \"none\" sends no checksum header")
                    #expect(fixture.landedFiles() == ["strict.txt"], "keep_local = false removed plain.txt once uploaded")
                    // Its job again: the result is uploaded (though gone here), so nothing is downloaded or sent.
                    let puts = try await s3.counts()["PutObject"]
                    try await fixture.publish([fixture.job("plain.txt", hash: "plain-again", extra: #", "id": "plain-job", "upload": "plain""#)])
                    try await fixture.publish([fixture.job("plain.txt", hash: "plain-again", extra: #", "id": "plain-job", "upload": "plain""#)])
                    let done = try await fixture.read(fixture.topics.done, count: 3, within: .seconds(60))
                    #expect(try done.map { try DoneEvent.decode($0.value).status }.sorted() == ["completed", "completed", "skipped"])
                    #expect(try await s3.counts()["PutObject"] == puts.map { $0 + 1 }, "the second delivery sent nothing")
                    #expect(fixture.landedFiles() == ["strict.txt"])
                }
            }
        }
    }

    @Test func a403IsDeadLetteredAndA503IsRepeated() async throws {
        try await withS3Fixture { s3 in
            try await withConsumerFixture(extraConfig: uploadsConfig(s3)) { fixture in
                _ = try await serveRandom(fixture, "denied.txt", bytes: 100)
                let slow = try await serveRandom(fixture, "slow.txt", bytes: 100)
                try await fixture.withConsumer(environment: Self.environment) { consumer in
                    try await s3.control("fail/1/403")
                    try await fixture.publish([fixture.job("denied.txt", extra: #", "upload": "s3""#)])
                    let letters = try await fixture.read(fixture.topics.deadLetter, count: 1, within: .seconds(60))
                    #expect(letters[0].header(JobHeader.reason) == "upload_denied")
                    #expect(letters[0].header(JobHeader.errorClass) == "permanent")
                    #expect(letters[0].header(JobHeader.error)?.contains(Self.secret) == false)
                    try await s3.control("fail/2/503")
                    try await fixture.publish([fixture.job("slow.txt", extra: #", "upload": "s3""#)])
                    let done = try await fixture.read(fixture.topics.done, count: 1, within: .seconds(60))
                    #expect(try DoneEvent.decode(done[0].value).status == "completed")
                    let object = try await s3.object("in/slow.txt"), keys = try await s3.keys()
                    #expect(object == slow, "two 503s were repeated past: \(object?.count ?? -1) bytes; keys \(keys)")
                    #expect(consumer.stderr.contains("object store request failed; repeating it"))
                }
            }
        }
    }

    @Test func abandonedUploadsAreAbortedByTheCommandAndTheJanitorAndTheirJobsStillComplete() async throws {
        try await withS3Fixture { s3 in
            try await withConsumerFixture(extraConfig: uploadsConfig(s3, concurrency: 1, extra: #"abort_after = "1s""#)) { fixture in
                let first = try await serveRandom(fixture, "first.bin", bytes: 12 << 20)  // 3 parts each
                let second = try await serveRandom(fixture, "second.bin", bytes: 12 << 20)
                try await s3.control("hold-parts-after/2")
                try await fixture.withConsumer(environment: Self.environment) { consumer in
                    try await fixture.publish([fixture.job("first.bin", hash: "job-first", extra: #", "upload": "s3""#),
                                               fixture.job("second.bin", hash: "job-second", extra: #", "upload": "s3""#)])
                    try await TestSupport.waitUntil("both uploads open, two parts through, two held", within: .seconds(90)) {
                        let counts = (try? await s3.counts()) ?? [:]
                        return counts["CreateMultipartUpload"] == 2 && counts["UploadPart"] ?? 0 >= 4
                    }
                    _ = await consumer.stop(signal: SIGKILL)
                }
                try await s3.control("release")
                #expect(try await s3.openUploads().count == 2)
                let kafkasync = try kafkasyncExecutable()
                let listed = try await runProcess(kafkasync, ["uploads", "list", "--config", fixture.configPath],
                                                  environment: Self.environment)
                #expect(listed.stdout.contains("uploading") && listed.stdout.contains("in/first.bin"), "\(listed.stdout)\(listed.stderr)")
                let status = try await runProcess(kafkasync, ["status", "--config", fixture.configPath], environment: Self.environment)
                #expect(status.stdout.contains("Uploads not finished (2; kafkasync uploads list):"), "\(status.stdout)")
                let aborted = try await runProcess(kafkasync, ["uploads", "abort", "--job", "job-first", "--config", fixture.configPath],
                                                   environment: Self.environment)
                #expect(aborted.status == 0, "\(aborted.stderr)")
                #expect(aborted.stdout.contains("1 upload(s) aborted."), "\(aborted.stdout)")
                #expect(try await s3.openUploads().count == 1, "the command freed the first upload's parts")
                #expect(!aborted.stdout.contains(Self.secret) && !aborted.stderr.contains(Self.secret))
                try await Task.sleep(for: .seconds(1.5))  // the second is now older than abort_after
                try await fixture.withConsumer(environment: Self.environment) { consumer in
                    let done = try await fixture.read(fixture.topics.done, count: 2, within: .seconds(120))
                    #expect(try done.map { try DoneEvent.decode($0.value).status } == ["completed", "completed"])
                    #expect(consumer.stderr.contains("aborted an abandoned upload"), "the janitor ran at start")
                }
                #expect(try await s3.object("in/first.bin") == first)
                #expect(try await s3.object("in/second.bin") == second)
                #expect(try await s3.openUploads().isEmpty)
                #expect(try await s3.counts()["CreateMultipartUpload"] == 4, "aborted uploads start over")
            }
        }
    }
}
