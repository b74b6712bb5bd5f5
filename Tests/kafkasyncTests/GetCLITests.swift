import Foundation
import TestSupport
import Testing

/// `kafkasync get` against a real sshd.
@Suite(.timeLimit(.minutes(2))) struct GetCLITests {
    func get(_ server: SSHServerFixture, _ path: String, to folder: String, knownHosts: String? = nil,
             extra: [String] = []) async throws -> ProcessResult {
        try await runProcess(try kafkasyncExecutable(), [
            "get", "sftp://\(server.username)@127.0.0.1:\(server.port)\(path)", "--to", folder,
            "--identity", server.clientKey, "--known-hosts", knownHosts ?? server.knownHosts,
        ] + extra)
    }

    @Test func downloadsAFileAndADirectoryTree() async throws {
        try await withSSHServer { server in
            let contents = Data((0..<2_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
            try server.serve("one file.bin", contents)
            try server.serve("tree/a.txt", Data("a".utf8))
            try server.serve("tree/sub/ü.txt", Data("ü".utf8))
            let out = server.directory.file("out")
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)

            let file = try await get(server, server.dataPath("one%20file.bin"), to: out)
            #expect(file.status == 0, "\(file.stderr)")
            #expect(file.stdout.contains("one file.bin: 2000000 bytes in"))
            #expect(FileManager.default.contents(atPath: out + "/one file.bin") == contents)

            let then = Date(timeIntervalSince1970: 1_577_934_245)  // 2020-01-02 03:04:05 UTC
            try FileManager.default.setAttributes([.modificationDate: then], ofItemAtPath: server.dataPath("tree/sub/ü.txt"))
            let tree = try await get(server, server.dataPath("tree"), to: out)
            #expect(tree.status == 0, "\(tree.stderr)")
            #expect(FileManager.default.contents(atPath: out + "/tree/a.txt") == Data("a".utf8))
            #expect(FileManager.default.contents(atPath: out + "/tree/sub/ü.txt") == Data("ü".utf8))
            let modified = try FileManager.default.attributesOfItem(atPath: out + "/tree/sub/ü.txt")[.modificationDate] as? Date
            #expect(modified == then, "the remote modification time is kept")
        }
    }

    @Test func anRSAOnlyServerIsFetchedWithNoEngineSetting() async throws {
        try await withSSHServer(hostKeyType: "rsa") { server in
            try server.serve("report.csv", Data("a,b\n1,2\n".utf8))
            let out = server.directory.file("out")
            let fetched = try await get(server, server.dataPath("report.csv"), to: out)
            #expect(fetched.status == 0, "\(fetched.stderr)")
            #expect(FileManager.default.contents(atPath: out + "/report.csv") == Data("a,b\n1,2\n".utf8))
            #expect(fetched.stderr.contains("uses lftp") && fetched.stderr.contains("no_common_algorithm"), "\(fetched.stderr)")
            // The native engine alone names the problem; the host key stays checked on the lftp path.
            let native = try await get(server, server.dataPath("report.csv"), to: out, extra: ["--engine", "native"])
            #expect(native.status == 1 && native.stderr.contains("no_common_algorithm"), "\(native.stderr)")
            let stranger = server.directory.file("other_known_hosts")
            try "127.0.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGb0OgTnGdkZJNkSgHPC8OJnk6W2F7nYl7pK0kXr9a1B\n"
                .write(toFile: stranger, atomically: true, encoding: .utf8)
            let unknown = try await get(server, server.dataPath("report.csv"), to: server.directory.file("out2"),
                                        knownHosts: stranger)
            #expect(unknown.status == 1, "an unknown host key is refused on the lftp path too: \(unknown.stderr)")
            #expect(!FileManager.default.fileExists(atPath: server.directory.file("out2/report.csv")))
        }
    }

    @Test func resumesAPartialDownload() async throws {
        try await withSSHServer { server in
            let contents = Data((0..<1_000_000).map { UInt8(truncatingIfNeeded: $0 &* 13) })
            try server.serve("big.bin", contents)
            let out = server.directory.file("out")
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            try contents.prefix(300_000).write(to: URL(fileURLWithPath: out + "/.big.bin.partial"))
            let result = try await get(server, server.dataPath("big.bin"), to: out)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains("700000 bytes"), "only the missing part was fetched")
            #expect(FileManager.default.contents(atPath: out + "/big.bin") == contents)
        }
    }

    @Test func failuresExitNonZeroWithTheReason() async throws {
        try await withSSHServer { server in
            let out = server.directory.file("out")
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let missing = try await get(server, server.dataPath("nope"), to: out)
            #expect(missing.status == 1)
            #expect(missing.stderr.contains("does not exist"))

            let unknown = try await get(server, server.dataPath("nope"), to: out, knownHosts: server.directory.file("none"))
            #expect(unknown.status == 1)
            #expect(unknown.stderr.contains(server.hostKeyFingerprint))

            let learned = server.directory.file("learned_hosts")
            try server.serve("x.txt", Data("x".utf8))
            let tofu = try await get(server, server.dataPath("x.txt"), to: out, knownHosts: learned,
                                     extra: ["--host-key-policy", "accept-new"])
            #expect(tofu.status == 0, "\(tofu.stderr)")
            #expect(try String(contentsOfFile: learned, encoding: .utf8).contains(server.hostPublicKey))

            let badURL = try await runProcess(try kafkasyncExecutable(), ["get", "http://x/y"])
            #expect(badURL.status != 0)
            #expect(badURL.stderr.contains("sftp://"))
        }
    }

    @Test(arguments: ["1", "4"])
    func a200MiBFileArrivesWholeWithBoundedMemory(segments: String) async throws {
        try await withSSHServer { server in
            try FileManager.default.createDirectory(atPath: server.dataPath(""), withIntermediateDirectories: true)
            let source = server.dataPath("big.bin")
            #expect(try await runProcess("sh", ["-c", "head -c 209715200 /dev/urandom > '\(source)' && chmod 644 '\(source)'"]).status == 0)
            let out = server.directory.file("out")
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let result = try await get(server, source, to: out, extra: ["--segments", segments])
            #expect(result.status == 0, "\(result.stderr)")
            // The summary ends with the process's own peak RSS (VmHWM), e.g. "peak RSS 44.6 MiB)".
            let peak = result.stdout.components(separatedBy: "peak RSS ").last?.split(separator: " ").first.flatMap { Double($0) }
            let unit = result.stdout.components(separatedBy: "peak RSS ").last?.split(separator: " ").dropFirst().first ?? ""
            #expect(unit.hasPrefix("MiB") && (peak ?? 1000) < 100, "peak RSS within 100 MiB: \(result.stdout)")
            #expect(try await runProcess("cmp", [source, out + "/big.bin"]).status == 0, "content equal")
            #expect(!FileManager.default.fileExists(atPath: out + "/.big.bin.partial"), "staging removed")
        }
    }

    @Test func anInterruptedSegmentedDownloadResumesFromItsStateFile() async throws {
        try await withSSHServer { server in
            try FileManager.default.createDirectory(atPath: server.dataPath(""), withIntermediateDirectories: true)
            let source = server.dataPath("seg.bin")
            #expect(try await runProcess("sh", ["-c", "head -c 150000000 /dev/urandom > '\(source)' && chmod 644 '\(source)'"]).status == 0)
            let out = server.directory.file("out")
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            // What an interrupted run leaves: the partial file at full size with the first half of each range on
            // disk (the rest zeros), and the state file saying so.
            let partial = out + "/.seg.bin.partial"
            let quarter = 37_500_000
            var ranges: [[String: Int]] = []
            var script = "truncate -s 150000000 '\(partial)'"
            for index in 0..<4 {
                let start = index * quarter
                ranges.append(["start": start, "end": start + quarter, "done": start + quarter / 2])
                script += " && dd if='\(source)' of='\(partial)' bs=250000 skip=\(start / 250_000) seek=\(start / 250_000) count=\(quarter / 2 / 250_000) conv=notrunc status=none"
            }
            #expect(try await runProcess("sh", ["-c", script]).status == 0)
            let state = try JSONSerialization.data(withJSONObject: ["size": 150_000_000, "ranges": ranges])
            try state.write(to: URL(fileURLWithPath: partial + ".segments"))

            let resumed = try await get(server, source, to: out, extra: ["--segments", "4"])
            #expect(resumed.status == 0, "\(resumed.stderr)")
            let fetched = Int(resumed.stdout.split(separator: " ").dropFirst().first ?? "") ?? -1
            #expect(fetched == 75_000_000, "only the missing halves were fetched: \(resumed.stdout)")
            #expect(!FileManager.default.fileExists(atPath: partial + ".segments"), "the state file is gone")
            #expect(try await runProcess("cmp", [source, out + "/seg.bin"]).status == 0, "content equal")
        }
    }

    @Test func toCreatesTheTargetFolderWithItsParents() async throws {
        try await withSSHServer { server in
            try server.serve("x.txt", Data("x".utf8))
            let out = server.directory.file("out/new/deeper")
            let result = try await get(server, server.dataPath("x.txt"), to: out)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(FileManager.default.contents(atPath: out + "/x.txt") == Data("x".utf8))
        }
    }

    /// A listing holding `../../escape` (a name that is a path) fails the download: nothing is written outside
    /// `--to`, and the exit status says so.
    @Test func aServerListingANameThatIsAPathWritesNothingOutsideTo() async throws {
        let script = SFTPServerScript(dirs: ["/evil": .init([.init("fine.txt", size: 4), .init("../../escape", size: 6)])])
        try await withScriptedSFTPServer(script) { server in
            try server.serve("escape", Data("pwned!".utf8))
            try server.serve("evil/fine.txt", Data("fine".utf8))
            let work = server.directory.file("work")
            let out = work + "/a/b/out"
            let result = try await runProcess(try kafkasyncExecutable(), [
                "get", "sftp://\(server.username)@127.0.0.1:\(server.port)/evil", "--to", out,
                "--identity", server.clientKey, "--known-hosts", server.knownHosts,
            ])
            #expect(result.status != 0)
            #expect(result.stderr.contains("unsafe_remote_name"), "\(result.stderr)")
            let written = (FileManager.default.enumerator(atPath: work)?.allObjects as? [String]) ?? []
            #expect(!written.contains { $0.hasSuffix("escape") }, "\(written)")
        }
    }
}
