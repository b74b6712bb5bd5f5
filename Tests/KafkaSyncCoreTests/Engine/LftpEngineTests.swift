import Foundation
import Logging
import Testing
import TestSupport
@testable import KafkaSyncCore

/// The lftp engine's process handling, with fake `lftp` programs for faults the real one cannot be made to
/// show on demand (a flood on standard error, a run that never ends). The real lftp against a real sshd is
/// covered end to end in `ConsumerEndToEndTests`.
@Suite(.timeLimit(.minutes(1))) struct LftpEngineTests {
    let logger = Logger(label: "test.lftp")

    /// A job request for `engine`: nothing in it is ever contacted by the fakes.
    func request(in directory: TemporaryDirectory) throws -> TransferRequest {
        TransferRequest(job: try TransferJob(name: "a.bin", location: "/data", kind: .file),
                        remote: RemoteConfig(name: "remoteDetails", host: "127.0.0.1", port: 1, username: "u", engine: .lftp),
                        stagedPath: directory.file("staged"), parallelism: 2, segmentThreshold: 1 << 20)
    }

    /// Writes an executable shell script (a fake `lftp`) and returns its path.
    func fakeLftp(_ directory: TemporaryDirectory, _ body: String) throws -> String {
        let path = directory.file("fake-lftp")
        try writeExecutableScript(path, "#!/bin/sh\n" + body + "\n")
        return path
    }

    @Test func aFloodOnStandardErrorDoesNotDeadlock() async throws {
        let directory = try TemporaryDirectory(prefix: "kafkasync-lftp")
        defer { directory.remove() }
        // Fake: 200 KiB on stderr (three times a pipe's buffer) before anything on stdout, then a failure.
        let fake = try fakeLftp(directory, """
            cat >/dev/null
            head -c 204800 /dev/zero | tr '\\0' 'e' >&2
            echo 'get: Access failed: No such file (/data/a.bin)' >&2
            echo done
            exit 1
            """)
        let engine = LftpEngine(logger: logger, executable: fake)
        let failure = try await withTimeout(.seconds(20), "lftp's result") {
            await #expect(throws: TransferFailure.self) {
                _ = try await engine.transfer(try request(in: directory)) { _ in }
            }
        }
        #expect(failure?.code == .noSuchFile, "the end of stderr is classified: \(String(describing: failure))")
    }

    /// Starts a transfer with a fake lftp that never finishes (ignoring SIGTERM when asked) and waits until it runs.
    /// - Returns: the engine, the transfer, and the fake's process id.
    func startEndlessLftp(in directory: TemporaryDirectory, ignoringTERM: Bool) async throws
        -> (LftpEngine, Task<StagedTransfer, any Error>, pid_t)
    {
        let pidFile = directory.file("pid")
        // Fake: an lftp that never finishes.
        let fake = try fakeLftp(directory, (ignoringTERM ? "trap '' TERM\n" : "") + "echo $$ > '\(pidFile)'\nwhile :; do sleep 1; done")
        let engine = LftpEngine(logger: logger, executable: fake)
        let request = try self.request(in: directory)
        let transfer = Task { try await engine.transfer(request) { _ in } }
        let pid = try await withTimeout(.seconds(20), "the fake lftp to start") {
            while true {
                if let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
                   let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) { return pid }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        #expect(kill(pid, 0) == 0, "lftp runs")
        return (engine, transfer, pid)
    }

    @Test func cancellingATransferKillsLftp() async throws {
        let directory = try TemporaryDirectory(prefix: "kafkasync-lftp")
        defer { directory.remove() }
        let (_, transfer, pid) = try await startEndlessLftp(in: directory, ignoringTERM: false)
        transfer.cancel()
        let result = try await withTimeout(.seconds(20), "the cancelled transfer to end") { await transfer.result }
        #expect(throws: TransferFailure.self) { try result.get() }
        #expect(kill(pid, 0) == -1 && errno == ESRCH, "lftp \(pid) was killed and reaped")
    }

    @Test func shutdownKillsRunningLftpEvenWhenItIgnoresSIGTERM() async throws {
        let directory = try TemporaryDirectory(prefix: "kafkasync-lftp")
        defer { directory.remove() }
        let (engine, transfer, pid) = try await startEndlessLftp(in: directory, ignoringTERM: true)
        await engine.shutdown()
        let result = try await withTimeout(.seconds(20), "the transfer to end") { await transfer.result }
        #expect(throws: TransferFailure.self) { try result.get() }
        #expect(kill(pid, 0) == -1 && errno == ESRCH, "lftp \(pid) was killed and reaped")
    }

    @Test func aMissingProgramIsNamed() async throws {
        let directory = try TemporaryDirectory(prefix: "kafkasync-lftp")
        defer { directory.remove() }
        let engine = LftpEngine(logger: logger, executable: directory.file("no-such-lftp"))
        let failure = await #expect(throws: TransferFailure.self) {
            _ = try await engine.transfer(try request(in: directory)) { _ in }
        }
        #expect(failure?.code == .lftpUnavailable)
        #expect(LftpEngine.locate("lftp", path: directory.path) == nil)
        #expect(LftpEngine.locate("sh", path: "/nonexistent:/bin") == "/bin/sh")
    }

    @Test(arguments: [
        ("/data/a.bin", "/data/a.bin"), ("~/in/a.bin", "~/in/a.bin"),
        ("-O/tmp/x/a.bin", "./-O/tmp/x/a.bin"), ("file:/etc/passwd", "./file:/etc/passwd"),
        ("in/a.bin", "./in/a.bin"),
    ])
    func remotePathsNeverLookLikeOptionsOrURLs(_ path: String, _ argument: String) {
        #expect(LftpEngine.argument(forRemotePath: path) == argument)
    }

    @Test func aListingWithAnUnsafeNameFailsTheMirror() async throws {
        let directory = try TemporaryDirectory(prefix: "kafkasync-lftp")
        defer { directory.remove() }
        // Fake: lftp's protocol trace of a listing holding "../../escape" (which lftp itself skips silently), and
        // success; the lying SFTP server of the end-to-end tests produces the same for real.
        let fake = try fakeLftp(directory, """
            cat >/dev/null
            echo '---- NameAttrs(name=".",type=2,longname="drwxr-xr-x 2 u u 4096 Jan 1 00:00 .")' >&2
            echo '---- NameAttrs(name="../../escape",type=1,longname="-rw-r--r-- 1 u u 5 Jan 1 00:00 x")' >&2
            exit 0
            """)
        var request = try self.request(in: directory)
        request.job = try TransferJob(name: "evil", location: "/data", kind: .directory)
        let engine = LftpEngine(logger: logger, executable: fake)
        let failure = await #expect(throws: TransferFailure.self) { _ = try await engine.transfer(request) { _ in } }
        #expect(failure?.code == .unsafeRemoteName)
        #expect(failure?.errorClass == .permanent)
        #expect(failure?.message.contains("../../escape") == true)
    }

    @Test func unsafeNamesInLftpsTrace() {
        func name(_ line: String) -> String? { LftpEngine.unsafeListedName(inTrace: Array(line.utf8)) }
        let long = String(repeating: "n", count: 256)
        for unsafe in ["../../escape", "a/b", "a\\b", "", long] {
            #expect(name("---- NameAttrs(name=\"\(unsafe)\",type=1,longname=\"x\")") == unsafe)
        }
        for safe in [".", "..", "a.txt", "report: q3.pdf", String(repeating: "n", count: 255)] {
            #expect(name("---- NameAttrs(name=\"\(safe)\",type=1,longname=\"x/y\")") == nil)
        }
        #expect(name("---- file name count=4") == nil)
    }

    @Test func aStagedTreeWithASymlinkOrAnEscapeIsRefused() throws {
        let directory = try TemporaryDirectory(prefix: "kafkasync-lftp")
        defer { directory.remove() }
        let root = directory.file("tree")
        try directory.write("tree/a/b.txt", "b")
        try LftpEngine.checkContained(root)
        try FileManager.default.createSymbolicLink(atPath: directory.file("tree/a/link"), withDestinationPath: "/etc")
        let failure = #expect(throws: TransferFailure.self) { try LftpEngine.checkContained(root) }
        #expect(failure?.code == .unsafeRemoteName)
        #expect(failure?.errorClass == .permanent)
    }
}
