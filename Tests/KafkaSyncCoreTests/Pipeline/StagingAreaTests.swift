import Crypto
import Foundation
import TestSupport
import Testing
@testable import KafkaSyncCore

/// The staging area on a real file system: verification, placement under each conflict policy, quarantine.
@Suite struct StagingAreaTests {
    let directory: TemporaryDirectory
    let staging: StagingArea

    init() throws {
        directory = try TemporaryDirectory(prefix: "kafkasync-staging")
        staging = StagingArea(locations: Locations(incompletes: directory.file("incompletes"),
                                                   completes: directory.file("completes"),
                                                   quarantine: directory.file("quarantine")))
    }

    /// Stages `contents` for a job as an engine would and returns what the engine reports.
    func stage(_ job: TransferJob, _ contents: String) throws -> StagedTransfer {
        try FileManager.default.createDirectory(atPath: directory.file("incompletes"), withIntermediateDirectories: true)
        let path = staging.stagedPath(for: job)
        try Data(contents.utf8).write(to: URL(fileURLWithPath: path))
        return StagedTransfer(kind: .file, path: path, files: ["": Int64(contents.utf8.count)], bytesTransferred: 0)
    }

    func contents(_ path: String) -> String? {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
    }

    @Test func theStagingFolderIsStablePerJobAndSafeForAnyID() throws {
        let a = try TransferJob(name: "f", location: "/r", id: "../../etc")
        let b = try TransferJob(name: "f", location: "/r", id: "../../etc")
        #expect(staging.stagedPath(for: a) == staging.stagedPath(for: b))
        #expect((staging.stagedPath(for: a) as NSString).deletingLastPathComponent == directory.file("incompletes"))
        #expect(staging.finalPath(for: try TransferJob(name: "x/y.bin", location: "/r", destination: "d"))
                == directory.file("completes/d/x/y.bin"))
    }

    @Test func verifyChecksSizeAndChecksum() async throws {
        let digest = SHA256.hash(data: Data("hello".utf8)).map { String(format: "%02x", $0) }.joined()
        let good = try TransferJob(name: "a.txt", location: "/r", checksum: "sha256:\(digest)", size: 5)
        try await staging.verify(try stage(good, "hello"), job: good)

        let wrongSize = try TransferJob(name: "b.txt", location: "/r", size: 6)
        await #expect(throws: TransferFailure.self) { try await staging.verify(try stage(wrongSize, "hello"), job: wrongSize) }
        let wrongSum = try TransferJob(name: "c.txt", location: "/r", checksum: "md5:" + String(repeating: "0", count: 32))
        do {
            try await staging.verify(try stage(wrongSum, "hello"), job: wrongSum)
            Issue.record("a wrong checksum passed")
        } catch let error as TransferFailure {
            #expect(error.code == "checksum_mismatch" && error.errorClass == .permanent)
            #expect(error.message.contains("5d41402abc4b2a76b9719d911017c592"), "names the actual md5")
        }
    }

    @Test func quarantineKeepsTheFileAndClearsStaging() throws {
        let job = try TransferJob(name: "bad.bin", location: "/r")
        let kept = try #require(staging.quarantine(try stage(job, "corrupt"), job: job))
        #expect(kept.hasPrefix(directory.file("quarantine/")) && kept.hasSuffix("-bad.bin"))
        #expect(contents(kept) == "corrupt")
        #expect(!FileManager.default.fileExists(atPath: staging.stagedPath(for: job)))
    }

    @Test func placementFollowsTheConflictPolicy() async throws {
        let job = try TransferJob(name: "r.csv", location: "/r", id: "1", destination: "in")
        let first = try await staging.complete(try stage(job, "v1"), job: job, policy: .rename)
        #expect(first.disposition == .moved && contents(first.path) == "v1")
        #expect(!FileManager.default.fileExists(atPath: staging.stagedPath(for: job)), "staging is cleared")

        let same = try await staging.complete(try stage(job, "v1"), job: job, policy: .fail)
        #expect(same.disposition == .identical && same.path == first.path)

        let renamed = try await staging.complete(try stage(job, "v2"), job: job, policy: .rename)
        #expect(renamed.disposition == .renamed && renamed.path == directory.file("completes/in/r.1.csv"))
        #expect(contents(first.path) == "v1" && contents(renamed.path) == "v2")

        let renamedAgain = try await staging.complete(try stage(job, "v3"), job: job, policy: .rename)
        #expect(renamedAgain.path == directory.file("completes/in/r.2.csv"))

        do {
            _ = try await staging.complete(try stage(job, "v4"), job: job, policy: .fail)
            Issue.record("fail policy placed a file")
        } catch let error as TransferFailure {
            #expect(error.code == "name_conflict" && error.errorClass == .permanent)
        }
        #expect(contents(first.path) == "v1")

        let replaced = try await staging.complete(try stage(job, "v5"), job: job, policy: .overwrite)
        #expect(replaced.disposition == .overwritten && contents(first.path) == "v5")
    }

    @Test func aDirectoryMergesFileByFileIntoAnExistingOne() async throws {
        let job = try TransferJob(name: "tree", location: "/r", kind: .directory)
        func stageTree(_ files: [String: String]) throws -> StagedTransfer {
            let root = staging.stagedPath(for: job)
            for (relative, text) in files {
                try FileManager.default.createDirectory(atPath: ((root + "/" + relative) as NSString).deletingLastPathComponent,
                                                        withIntermediateDirectories: true)
                try Data(text.utf8).write(to: URL(fileURLWithPath: root + "/" + relative))
            }
            return StagedTransfer(kind: .directory, path: root, files: files.mapValues { Int64($0.utf8.count) },
                                  bytesTransferred: 0)
        }
        let first = try await staging.complete(try stageTree(["a": "1", "s/b": "2"]), job: job, policy: .rename)
        #expect(first.disposition == .moved)
        let second = try await staging.complete(try stageTree(["a": "1", "s/b": "changed", "s/c": "3"]), job: job,
                                                policy: .rename)
        #expect(second.disposition != .identical)
        #expect(contents(directory.file("completes/tree/s/b")) == "2")
        #expect(contents(directory.file("completes/tree/s/b.1")) == "changed")
        #expect(contents(directory.file("completes/tree/s/c")) == "3")
        #expect(!FileManager.default.fileExists(atPath: directory.file("completes/tree/a.1")), "identical file not copied")
    }

    @Test func retryDelaysGrowExponentiallyWithJitterUpToTheMaximum() {
        var settings = ConsumerSettings()
        settings.backoffInitial = .seconds(2)
        settings.backoffMax = .seconds(60)
        let policy = RetryPolicy(settings)
        #expect(policy.delay(afterAttempt: 1, jitter: 1) == .seconds(2))
        #expect(policy.delay(afterAttempt: 3, jitter: 1) == .seconds(8))
        #expect(policy.delay(afterAttempt: 10, jitter: 1) == .seconds(60))
        #expect(policy.delay(afterAttempt: 3, jitter: 0.5) == .seconds(4))
        #expect(policy.delay(afterAttempt: 100, jitter: 1) == .seconds(60), "no overflow")
        let random = policy.delay(afterAttempt: 2)
        #expect(random >= .seconds(2) && random <= .seconds(4))
    }
}
