import Crypto
import Foundation
import Logging
import Testing
import TestSupport
@testable import KafkaSyncCore

/// The native engine digests a file while it downloads it (a single file, each file of a tree, the part a resumed
/// download fetches after hashing what it found, a segmented file following its contiguous prefix), so neither
/// verification nor an upload reads it again afterwards.
@Suite(.timeLimit(.minutes(3))) struct StreamDigestTests {
    let logger = Logger(label: "test.stream-digest")

    @Test func everyDownloadComesWithItsSHA256WhenAsked() async throws {
        try await withSSHServer { server in
            let directory = try TemporaryDirectory(prefix: "kafkasync-digest")
            defer { directory.remove() }
            // Over one READ window (32 × 255 KiB), so answers arrive out of order and are reassembled.
            let contents = Data((0..<(9 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) })
            try server.serve("digest.bin", contents)
            let remote = RemoteConfig(name: "d", host: "127.0.0.1", port: server.port, username: server.username,
                                      privateKey: server.clientKey, knownHosts: server.knownHosts, engine: .native)
            let engine = NativeEngine(poolSize: 2, logger: logger)
            defer { Task { await engine.shutdown() } }
            func request(_ staged: String, wanted: Bool, segments: Int = 1) throws -> TransferRequest {
                var request = TransferRequest(job: try TransferJob(name: "digest.bin", location: server.dataPath(""), kind: .file),
                                              remote: remote, stagedPath: directory.file(staged), parallelism: segments,
                                              segmentThreshold: 1 << 20)
                request.wantsSHA256 = wanted
                return request
            }
            let expected = SHA256.hash(data: contents).hexDigits
            let streamed = try await engine.transfer(try request("a.partial", wanted: true)) { _ in }
            #expect(streamed.sha256 == expected)
            #expect(FileManager.default.contents(atPath: streamed.path) == contents)
            #expect(try await engine.transfer(try request("b.partial", wanted: false)) { _ in }.sha256 == nil, "not asked")
            // A prefix left by an earlier attempt is hashed first, then the rest as it arrives.
            try contents.prefix(1 << 20).write(to: URL(fileURLWithPath: directory.file("c.partial")))
            let resumed = try await engine.transfer(try request("c.partial", wanted: true)) { _ in }
            #expect(resumed.sha256 == expected)
            #expect(resumed.bytesTransferred == Int64(contents.count - (1 << 20)), "only the rest was fetched")
            #expect(FileManager.default.contents(atPath: resumed.path) == contents)
            let segmented = try await engine.transfer(try request("d.partial", wanted: true, segments: 4)) { _ in }
            #expect(segmented.sha256 == expected && FileManager.default.contents(atPath: segmented.path) == contents)
            #expect(try await engine.transfer(try request("d2.partial", wanted: false, segments: 4)) { _ in }.sha256 == nil)

            // A segmented download an earlier attempt left part of (every range started, holes between them).
            var state = SegmentState(size: Int64(contents.count), segments: 4)
            var partial = Data(count: contents.count)
            for index in state.ranges.indices {
                let range = state.ranges[index]
                state.ranges[index].done = range.start + (300 << 10) * Int64(index)
                partial.replaceSubrange(Int(range.start)..<Int(state.ranges[index].done),
                                        with: contents[Int(range.start)..<Int(state.ranges[index].done)])
            }
            try partial.write(to: URL(fileURLWithPath: directory.file("e.partial")))
            try state.save(SegmentState.path(beside: directory.file("e.partial")))
            let resumedSegments = try await engine.transfer(try request("e.partial", wanted: true, segments: 4)) { _ in }
            #expect(resumedSegments.bytesTransferred == Int64(contents.count) - state.doneBytes, "only the holes were fetched")
            #expect(resumedSegments.sha256 == expected)
            #expect(FileManager.default.contents(atPath: resumedSegments.path) == contents)
            // A tree's files, each streamed: each with its digest.
            let small = Data("a small one".utf8)
            try server.serve("tree/sub/small.txt", small)
            try server.serve("tree/big.bin", contents)
            var treeRequest = TransferRequest(job: try TransferJob(name: "tree", location: server.dataPath(""), kind: .directory),
                                              remote: remote, stagedPath: directory.file("tree.partial"), parallelism: 2,
                                              segmentThreshold: 1 << 20)
            treeRequest.wantsSHA256 = true
            let tree = try await engine.transfer(treeRequest) { _ in }
            #expect(tree.digests == ["sub/small.txt": SHA256.hash(data: small).hexDigits, "big.bin": expected])
            #expect(tree.sha256 == nil, "a tree has no single digest")
        }
    }
}
