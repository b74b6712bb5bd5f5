import Crypto
import Foundation
import Synchronization
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
    func stage(_ job: TransferJob, _ contents: String, in staging: StagingArea? = nil) throws -> StagedTransfer {
        let staging = staging ?? self.staging
        try FileManager.default.createDirectory(atPath: staging.locations.incompletes, withIntermediateDirectories: true)
        let path = staging.stagedPath(for: job)
        try Data(contents.utf8).write(to: URL(fileURLWithPath: path))
        return StagedTransfer(kind: .file, path: path, files: ["": Int64(contents.utf8.count)], bytesTransferred: 0)
    }

    /// Stages a directory tree for a job.
    func stageTree(_ job: TransferJob, _ files: [String: String], in staging: StagingArea? = nil) throws -> StagedTransfer {
        let staging = staging ?? self.staging
        let root = staging.stagedPath(for: job)
        for (relative, text) in files {
            try FileManager.default.createDirectory(atPath: ((root + "/" + relative) as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            try Data(text.utf8).write(to: URL(fileURLWithPath: root + "/" + relative))
        }
        return StagedTransfer(kind: .directory, path: root, files: files.mapValues { Int64($0.utf8.count) },
                              bytesTransferred: 0)
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
            #expect(error.code == .checksumMismatch && error.errorClass == .permanent)
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
        try await checkConflictPolicies(staging)
    }

    /// Places five versions of one file under each policy in turn.
    func checkConflictPolicies(_ staging: StagingArea) async throws {
        let completes = staging.locations.completes
        let job = try TransferJob(name: "r.csv", location: "/r", id: "1", destination: "in")
        let first = try await staging.complete(try stage(job, "v1", in: staging), job: job, policy: .rename)
        #expect(first.disposition == .moved && contents(first.path) == "v1")
        #expect(!FileManager.default.fileExists(atPath: staging.stagedPath(for: job)), "staging is cleared")

        let same = try await staging.complete(try stage(job, "v1", in: staging), job: job, policy: .fail)
        #expect(same.disposition == .identical && same.path == first.path)

        let renamed = try await staging.complete(try stage(job, "v2", in: staging), job: job, policy: .rename)
        #expect(renamed.disposition == .renamed && renamed.path == completes + "/in/r.1.csv")
        #expect(contents(first.path) == "v1" && contents(renamed.path) == "v2")

        let renamedAgain = try await staging.complete(try stage(job, "v3", in: staging), job: job, policy: .rename)
        #expect(renamedAgain.path == completes + "/in/r.2.csv")

        do {
            _ = try await staging.complete(try stage(job, "v4", in: staging), job: job, policy: .fail)
            Issue.record("fail policy placed a file")
        } catch let error as TransferFailure {
            #expect(error.code == .nameConflict && error.errorClass == .permanent)
        }
        #expect(contents(first.path) == "v1")

        let replaced = try await staging.complete(try stage(job, "v5", in: staging), job: job, policy: .overwrite)
        #expect(replaced.disposition == .overwritten && contents(first.path) == "v5")
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: completes + "/in")) == ["r.csv", "r.1.csv", "r.2.csv"],
                "no reservation or copy left behind")
    }

    /// exFAT (like vfat and some NFS servers) has no hard links and takes no `renameat2` flags: placement must
    /// still never replace a different file unless the policy says so.
    @Test func theConflictPolicyHoldsOnAFileSystemWithoutHardLinks() async throws {
        let mount = try await TemporaryMount.exfat(bytes: 16 << 20)
        try await mount.unmount {
            let probe = mount.file("probe")
            try Data("x".utf8).write(to: URL(fileURLWithPath: probe))
            let linked = link(probe, mount.file("probe-link"))
            let code = errno
            #expect(linked != 0 && code == EPERM, "the fixture really lacks hard links")
            let staging = StagingArea(locations: Locations(incompletes: mount.file("incompletes"), completes: mount.file("completes"),
                                                           quarantine: mount.file("quarantine")))
            try await checkConflictPolicies(staging)
            // Without a hard link, "is the name free?" and "take it" must still be one step: two jobs placing
            // different files under one name at the same moment never both get it.
            for round in 0..<40 {
                let jobs = try (0..<2).map { try TransferJob(name: "race-\(round).bin", location: "/r", id: "race-\(round)-\($0)") }
                let staged = try jobs.indices.map { try stage(jobs[$0], "copy \($0)", in: staging) }
                let placed = try await withThrowingTaskGroup(of: String.self) { group in
                    for index in jobs.indices {
                        group.addTask { try await staging.complete(staged[index], job: jobs[index], policy: .rename).path }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                #expect(Set(placed).count == 2, "round \(round): both placed at \(placed)")
                #expect(Set(placed.compactMap { contents($0) }) == ["copy 0", "copy 1"], "round \(round): a file was lost")
            }
            let tree = try TransferJob(name: "tree", location: "/r", kind: .directory)
            let placed = try await staging.complete(try stageTree(tree, ["a": "1"], in: staging), job: tree, policy: .fail)
            #expect(placed.disposition == .moved && contents(mount.file("completes/tree/a")) == "1")
        }
    }

    @Test func jobsSharingAnIDButNotARemoteFileNeverShareStaging() throws {
        let a = try TransferJob(name: "a.mkv", location: "/r", infoHash: "abc")
        let b = try TransferJob(name: "b.mkv", location: "/r", infoHash: "abc")
        #expect(a.id == b.id)
        #expect(staging.stagedPath(for: a) != staging.stagedPath(for: b))
        #expect(staging.stagedPath(for: a) != staging.stagedPath(for: try TransferJob(name: "a.mkv", location: "/s", infoHash: "abc")))
        #expect(staging.stagedPath(for: a) != staging.stagedPath(for: try TransferJob(name: "a.mkv", location: "/r", infoHash: "abc",
                                                                                     remote: "other")))
        #expect(staging.stagedPath(for: a) == staging.stagedPath(for: try TransferJob(name: "a.mkv", location: "/r", infoHash: "abc")))
    }

    @Test func aDestinationThroughASymbolicLinkIsRefused() async throws {
        let outside = directory.file("outside")
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory.file("completes/d"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: directory.file("completes/evil"), withDestinationPath: outside)
        try FileManager.default.createSymbolicLink(atPath: directory.file("completes/d/x"), withDestinationPath: outside)
        let jobs = [
            try TransferJob(name: "f.bin", location: "/r", destination: "evil"),
            try TransferJob(name: "f.bin", location: "/r", destination: "evil/deeper"),
            try TransferJob(name: "x/f.bin", location: "/r", destination: "d"),
            try TransferJob(name: "evil", location: "/r"),
        ]
        for job in jobs {
            do {
                _ = try await staging.complete(try stage(job, "payload"), job: job, policy: .overwrite)
                Issue.record("placed through a link: \(job)")
            } catch let error as TransferFailure {
                #expect(error.code == .unsafeDestination && error.errorClass == .permanent, "\(error)")
            }
            #expect(throws: TransferFailure.self) { try staging.checkDestination(job) }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty, "nothing written through a link")
        let tree = try TransferJob(name: "d", location: "/r", kind: .directory)
        await #expect(throws: TransferFailure.self, "a merge into a folder holding a link") {
            _ = try await staging.complete(try stageTree(tree, ["x/f.bin": "payload"]), job: tree, policy: .overwrite)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty)
        try staging.checkDestination(try TransferJob(name: "f.bin", location: "/r", destination: "d/fine"))
    }

    /// An fsync that fails cannot be produced for real on a healthy disk: this test injects one (a named fault,
    /// ``FileSync``) and checks that the staged copy is discarded, never flushed again and trusted.
    @Test func aFailedFsyncDiscardsTheStagedCopy() async throws {
        let flushes = Flushes()
        let failing = StagingArea(locations: staging.locations, fileSync: FileSync { path, _ in
            flushes.add(path)
            errno = EIO
            return -1
        })
        let job = try TransferJob(name: "f.bin", location: "/r")
        do {
            _ = try await failing.complete(try stage(job, "data", in: failing), job: job, policy: .rename)
            Issue.record("placed a file whose fsync failed")
        } catch let error as TransferFailure {
            #expect(error.code == .fsyncFailed && error.errorClass == .transient, "\(error)")
        }
        #expect(flushes.paths.count == 1, "one fsync, never retried")
        #expect(!FileManager.default.fileExists(atPath: staging.stagedPath(for: job)), "the staged copy is gone: download again")
        #expect(!FileManager.default.fileExists(atPath: staging.finalPath(for: job)))
        let placed = try await staging.complete(try stage(job, "data"), job: job, policy: .rename)
        #expect(placed.disposition == .moved && contents(placed.path) == "data")
    }

    /// A directory moved to another file system is a copy: every file of the copy is flushed before the rename.
    @Test func aDirectoryMovedAcrossFileSystemsIsFlushedFileByFile() async throws {
        let mount = try await TemporaryMount.tmpfs(bytes: 8 << 20)
        try await mount.unmount {
            let flushed = Flushes()
            let staging = StagingArea(locations: Locations(incompletes: directory.file("incompletes"), completes: mount.file("completes"),
                                                           quarantine: mount.file("quarantine")),
                                      fileSync: FileSync { path, descriptor in
                                          flushed.add(path)
                                          return fsync(descriptor)
                                      })
            let job = try TransferJob(name: "tree", location: "/r", kind: .directory)
            let files = ["a": "1", "s/b": "2", "s/t/c": "3"]
            let placed = try await staging.complete(try stageTree(job, files, in: staging), job: job, policy: .fail)
            #expect(placed.disposition == .moved)
            let copies = flushed.paths.filter { $0.hasPrefix(mount.file("completes/")) }
            for (relative, text) in files {
                #expect(contents(mount.file("completes/tree/\(relative)")) == text)
                #expect(copies.contains { $0.hasSuffix("/" + relative) }, "\(relative) of the copy was flushed: \(copies)")
            }
        }
    }

    @Test func aDirectoryMergesFileByFileIntoAnExistingOne() async throws {
        let job = try TransferJob(name: "tree", location: "/r", kind: .directory)
        let first = try await staging.complete(try stageTree(job, ["a": "1", "s/b": "2"]), job: job, policy: .rename)
        #expect(first.disposition == .moved)
        let second = try await staging.complete(try stageTree(job, ["a": "1", "s/b": "changed", "s/c": "3"]), job: job,
                                                policy: .rename)
        #expect(second.disposition != .identical)
        #expect(contents(directory.file("completes/tree/s/b")) == "2")
        #expect(contents(directory.file("completes/tree/s/b.1")) == "changed")
        #expect(contents(directory.file("completes/tree/s/c")) == "3")
        #expect(!FileManager.default.fileExists(atPath: directory.file("completes/tree/a.1")), "identical file not copied")
    }
}

/// The paths a ``FileSync`` flushed.
final class Flushes: Sendable {
    private let list = Mutex<[String]>([])
    func add(_ path: String) { list.withLock { $0.append(path) } }
    var paths: [String] { list.withLock { $0 } }
}
