import Foundation
import Logging
import Testing
import TestSupport
@testable import KafkaSyncCore

/// The lftp engine against the scripted SFTP server that lies in its listings.
@Suite(.timeLimit(.minutes(2))) struct LftpHostileServerTests {
    let logger = Logger(label: "test.lftp.hostile")

    /// A listed name, shown escaped (a NUL would cut the test report).
    struct ListedName: CustomTestStringConvertible, Sendable {
        let name: String
        init(_ name: String) { self.name = name }
        var testDescription: String { name.debugDescription.prefix(40) + (name.count > 40 ? "…" : "") }
    }

    @Test(arguments: ["../../escape", "a/b", "..\\..\\escape", "", "a\u{0}b", String(repeating: "n", count: 300)].map(ListedName.init))
    func aListingWithAnUnsafeNameFailsTheJobAndNothingLandsOutsideStaging(_ listed: ListedName) async throws {
        let name = listed.name
        let script = SFTPServerScript(dirs: ["/evil": .init([.init("fine.txt", size: 4), .init(name, size: 5)])])
        try await withScriptedSFTPServer(script) { server in
            try server.serve("evil/fine.txt", Data("fine".utf8))
            let directory = try TemporaryDirectory(prefix: "kafkasync-lftp-hostile")
            defer { directory.remove() }
            // staging/a/b/job: "../../escape" from the job's folder would land in staging/a.
            let staged = directory.file("staging/a/b/job")
            try FileManager.default.createDirectory(atPath: staged, withIntermediateDirectories: true)
            var remote = server.remote()
            remote.engine = .lftp
            let request = TransferRequest(job: try TransferJob(name: "evil", location: "/", kind: .directory),
                                          remote: remote, stagedPath: staged, parallelism: 2, segmentThreshold: 1 << 20)
            let failure = await #expect(throws: TransferFailure.self) {
                _ = try await LftpEngine(logger: logger).transfer(request) { _ in }
            }
            // lftp reads a name up to its NUL ("a"), which then does not exist: the job fails all the same.
            let expected: [TransferFailure.Code] = name.contains("\u{0}") ? [.unsafeRemoteName, .noSuchFile] : [.unsafeRemoteName]
            #expect(failure.map { expected.contains($0.code) } == true, "\(String(describing: failure))\n\(server.log)")
            #expect(failure?.errorClass == .permanent)
            let everything = FileManager.default.enumerator(atPath: directory.path)?.allObjects as? [String] ?? []
            #expect(everything.allSatisfy { $0.hasPrefix("staging/a/b/job") || ["staging", "staging/a", "staging/a/b"].contains($0) },
                    "nothing outside the job's staging folder: \(everything)")
        }
    }
}
