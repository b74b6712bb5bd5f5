import Crypto
import Foundation
import TestSupport
import Testing
@testable import KafkaSyncCore

/// The native engine against a server that lies (``ScriptedSFTPServer``): nothing it lists may land outside the
/// job's staging folder, no listing or file is unbounded, no short read leaves a hole for a resume to trust.
@Suite(.serialized, .timeLimit(.minutes(2))) struct NativeEngineHostileServerTests {
    let logger = KafkaFixtures.logger("kafkasync.test.engine")

    /// Runs one transfer of `remotePath` into `<work>/a/b/staging/<name>.partial` (three folders deep, so a
    /// `../../` escape would still land inside `work`, where the test can look).
    func transfer(_ server: ScriptedSFTPServer, _ remotePath: String, kind: TransferJob.Kind = .auto, size: Int64? = nil,
                  work: TemporaryDirectory, parallelism: Int = 2, segmentThreshold: Int64 = 64 << 20,
                  maxEntries: Int = 1_000_000) async throws(TransferFailure) -> StagedTransfer {
        let name = (remotePath as NSString).lastPathComponent
        let job: TransferJob
        do {
            job = try TransferJob(name: name, location: (remotePath as NSString).deletingLastPathComponent, size: size,
                                  kind: kind)
        } catch {
            throw TransferFailure(.failure, "test setup: \(error)")
        }
        let staging = work.file("a/b/staging")
        try? FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
        let engine = NativeEngine(poolSize: parallelism, logger: logger)
        let request = TransferRequest(job: job, remote: server.remote(), stagedPath: staging + "/\(name).partial",
                                      parallelism: parallelism, segmentThreshold: segmentThreshold, maxEntries: maxEntries)
        do {
            let staged = try await engine.transfer(request) { _ in }
            await engine.shutdown()
            return staged
        } catch {
            await engine.shutdown()
            throw error
        }
    }

    /// Every path under `folder` (not following links), relative to it.
    func everything(under folder: String) -> [String] {
        (FileManager.default.enumerator(atPath: folder)?.allObjects as? [String] ?? []).sorted()
    }

    static let escapingNames = ["../../escape", "../../../escape", "a/../../../escape", "/escape", "..\\..\\escape",
                                "nul\0x", ""]

    @Test func aListedNameThatIsAPathFailsTheJobAndWritesNothingOutside() async throws {
        var script = SFTPServerScript()
        for (index, name) in Self.escapingNames.enumerated() {
            script.dirs["/evil\(index)"] = .init([.init("fine.txt", size: 4), .init(name, size: 6)])
        }
        try await withScriptedSFTPServer(script) { server in
            // What an escaping name would fetch, had the engine followed it.
            try server.serve("escape", Data("pwned!".utf8))
            for index in Self.escapingNames.indices {
                try server.serve("evil\(index)/fine.txt", Data("fine".utf8))
                let work = try TemporaryDirectory()
                defer { work.remove() }
                await #expect("\(Self.escapingNames[index].debugDescription)") {
                    _ = try await transfer(server, "/evil\(index)", work: work)
                } throws: { error in
                    let failure = error as? TransferFailure
                    return failure?.errorClass == .permanent && failure?.code == .protocolError
                        && failure?.message.contains("unsafe_remote_name") == true
                }
                #expect(!everything(under: work.path).contains { $0.hasSuffix("escape") }, "\(everything(under: work.path))")
            }
        }
    }

    @Test func anEmptyNamedFolderDoesNotLoop() async throws {
        let script = SFTPServerScript(dirs: ["/loop": .init([.init("", type: "dir")])])
        try await withScriptedSFTPServer(script) { server in
            let work = try TemporaryDirectory()
            defer { work.remove() }
            await #expect {
                _ = try await transfer(server, "/loop", kind: .directory, work: work)
            } throws: { ($0 as? TransferFailure)?.errorClass == .permanent }
        }
    }

    @Test func symlinksInAListingAreSkippedAndNeverCreated() async throws {
        let script = SFTPServerScript(dirs: ["/tree": .init([.init("real.txt", size: 4), .init("link", type: "symlink"),
                                                              .init("sub", type: "dir")])])
        try await withScriptedSFTPServer(script) { server in
            try server.serve("tree/real.txt", Data("real".utf8))
            try server.serve("tree/link", Data("what the link points to".utf8))
            try server.serve("tree/sub/inner.txt", Data("inner".utf8))
            let work = try TemporaryDirectory()
            defer { work.remove() }
            let staged = try await transfer(server, "/tree", kind: .directory, work: work)
            #expect(staged.files == ["real.txt": 4, "sub/inner.txt": 5])
            #expect(everything(under: staged.path) == ["real.txt", "sub", "sub/inner.txt"])
            for path in everything(under: work.path) {
                let kind = try FileManager.default.attributesOfItem(atPath: work.file(path))[.type] as? FileAttributeType
                #expect(kind != .typeSymbolicLink, "\(path)")
            }
        }
    }

    /// `x.segments` beside `x` in a tree is a file like any other, not the state of a segmented download of `x`
    /// (listed first, it used to be taken for one: overwritten, then deleted).
    @Test func aTreeFileNamedLikeASegmentStateFileIsJustAFile() async throws {
        let state = Data(#"{"size":5,"ranges":[{"start":0,"end":5,"done":5}]}"#.utf8)
        let script = SFTPServerScript(dirs: ["/tree": .init([.init("x.segments", size: Int64(state.count)), .init("x", size: 5)])])
        try await withScriptedSFTPServer(script) { server in
            try server.serve("tree/x.segments", state)
            try server.serve("tree/x", Data("hello".utf8))
            let work = try TemporaryDirectory()
            defer { work.remove() }
            let staged = try await transfer(server, "/tree", kind: .directory, work: work, parallelism: 1)
            #expect(staged.files == ["x.segments": Int64(state.count), "x": 5])
            #expect(FileManager.default.contents(atPath: staged.path + "/x.segments") == state)
            #expect(FileManager.default.contents(atPath: staged.path + "/x") == Data("hello".utf8))
        }
    }

    @Test func aListingOverMaxEntriesFailsTheJob() async throws {
        let script = SFTPServerScript(dirs: ["/many": .init([.init("sub", type: "dir")], generate: .init(count: 1_500), perReply: 200),
                                             "/many/sub": .init(generate: .init(count: 10))])
        try await withScriptedSFTPServer(script) { server in
            let work = try TemporaryDirectory()
            defer { work.remove() }
            await #expect {
                _ = try await transfer(server, "/many", kind: .directory, work: work, maxEntries: 1_000)
            } throws: { ($0 as? TransferFailure)?.code == .tooManyEntries && ($0 as! TransferFailure).errorClass == .permanent }
            // Counted over the whole tree, not per folder.
            await #expect {
                _ = try await transfer(server, "/many/sub", kind: .directory, work: work, maxEntries: 9)
            } throws: { ($0 as? TransferFailure)?.code == .tooManyEntries }
        }
    }

    @Test func foldersDeeperThan64FailTheJob() async throws {
        let script = SFTPServerScript(deep: ["/deep64": 64, "/deep70": 70])
        try await withScriptedSFTPServer(script) { server in
            let work = try TemporaryDirectory()
            defer { work.remove() }
            let staged = try await transfer(server, "/deep64", kind: .directory, work: work)
            #expect(FileManager.default.fileExists(atPath: staged.path + String(repeating: "/d", count: 64)))
            await #expect {
                _ = try await transfer(server, "/deep70", kind: .directory, work: work)
            } throws: { ($0 as? TransferFailure)?.code == .tooDeep && ($0 as! TransferFailure).errorClass == .permanent }
        }
    }

    @Test func aFileBiggerThanTheJobAnnouncesIsNotDownloaded() async throws {
        try await withScriptedSFTPServer { server in
            try server.serve("big.bin", Data(count: 100_000))
            let work = try TemporaryDirectory()
            defer { work.remove() }
            await #expect {
                _ = try await transfer(server, "/big.bin", kind: .file, size: 1_000, work: work)
            } throws: { ($0 as? TransferFailure)?.code == .sizeExceeded }
            #expect(!FileManager.default.fileExists(atPath: work.file("a/b/staging/big.bin.partial")))
        }
    }

    /// The first READ is answered with half its bytes, the next ones in full, then the connection drops before
    /// the rest of the first is asked again. The rerun (the lie told once) must give the source exactly: single
    /// stream (resumes from the local file's size) and segmented (resumes from the state file).
    @Test(arguments: [1, 4])
    func aShortReadThenADropResumesWithoutAHole(segments: Int) async throws {
        let contents = Data((0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ $0 >> 10) })
        // A segmented download looks the file up (one OPEN, closed unused) before its ranges open it again.
        let lies = SFTPServerScript.FileLies(times: segments == 1 ? 1 : 2, firstRead: 0, then: .goOn, dropAfter: 100_000)
        try await withScriptedSFTPServer(SFTPServerScript(files: ["/data.bin": lies])) { server in
            try server.serve("data.bin", contents)
            let work = try TemporaryDirectory()
            defer { work.remove() }
            await #expect {
                _ = try await transfer(server, "/data.bin", kind: .file, work: work, parallelism: segments,
                                       segmentThreshold: 1 << 20)
            } throws: { ($0 as? TransferFailure)?.errorClass == .transient }
            let staged = try await transfer(server, "/data.bin", kind: .file, work: work, parallelism: segments,
                                            segmentThreshold: 1 << 20)
            let result = try #require(FileManager.default.contents(atPath: staged.path))
            #expect(result.count == contents.count)
            #expect(SHA256.hash(data: result) == SHA256.hash(data: contents))
        }
    }
}
