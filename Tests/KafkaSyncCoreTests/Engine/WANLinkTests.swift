import Foundation
import Logging
import Testing
import TestSupport
@testable import KafkaSyncCore

/// The native engine over a 50 ms round trip (TestSupport's ``DelayingProxy`` in front of the sshd): a file and a
/// tree of small files land whole. Speed over the link is measured by `bench/run --only wan`, never here.
@Suite(.timeLimit(.minutes(3))) struct WANLinkTests {
    let logger = Logger(label: "test.wan")

    @Test func aFileAndATreeLandWholeOverA50msRoundTrip() async throws {
        try await withSSHServer { server in
            let proxy = try await DelayingProxy(to: server.port, oneWayDelay: .milliseconds(25))
            defer { Task { await proxy.stop() } }
            let directory = try TemporaryDirectory(prefix: "kafkasync-wan")
            defer { directory.remove() }
            let knownHosts = try directory.write("known_hosts", "[127.0.0.1]:\(proxy.port) \(server.hostPublicKey)\n")
            let big = Data((0..<(6 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) })
            try server.serve("far/big.bin", big)
            var tree: [String: Data] = [:]
            for index in 0..<40 {
                tree["far/tree/f\(index).txt"] = Data("file \(index) ".utf8 + Array(repeating: UInt8(index), count: 10_000))
                try server.serve("far/tree/f\(index).txt", tree["far/tree/f\(index).txt"]!)
            }
            let remote = RemoteConfig(name: "far", host: "127.0.0.1", port: proxy.port, username: server.username,
                                      privateKey: server.clientKey, knownHosts: knownHosts, engine: .native)
            let engine = NativeEngine(poolSize: 4, logger: logger)
            defer { Task { await engine.shutdown() } }
            let started = ContinuousClock.now
            let file = try await engine.transfer(TransferRequest(
                job: try TransferJob(name: "big.bin", location: server.dataPath("far"), kind: .file), remote: remote,
                stagedPath: directory.file("big.partial"), parallelism: 4, segmentThreshold: 1 << 20)) { _ in }
            #expect(ContinuousClock.now - started >= .milliseconds(100), "the link delays: a handshake takes round trips")
            #expect(FileManager.default.contents(atPath: file.path) == big)
            let folder = try await engine.transfer(TransferRequest(
                job: try TransferJob(name: "tree", location: server.dataPath("far"), kind: .directory), remote: remote,
                stagedPath: directory.file("tree.partial"), parallelism: 4, segmentThreshold: 1 << 20)) { _ in }
            #expect(folder.files.count == 40)
            for (path, data) in tree {
                #expect(FileManager.default.contents(atPath: folder.path + "/" + String(path.dropFirst("far/tree/".count))) == data)
            }
        }
    }
}
