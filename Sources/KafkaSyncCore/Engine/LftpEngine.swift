import Foundation
import Logging
import TransferStore

/// Debian's `lftp`, one process per job as the original ran it (`pget -n num_threads -c` for files,
/// `mirror --use-pget-n=num_threads -p -c` for directories), for servers the native engine cannot talk to.
/// The password reaches lftp through the environment (`open --env-password`), never the command line; the
/// host key is checked by OpenSSH through `sftp:connect-program` with the remote's known_hosts file and policy.
public struct LftpEngine: TransferEngine {
    private let logger: Logger
    private let executable: String

    /// An engine running `lftp` from `PATH` (or `executable`).
    public init(logger: Logger, executable: String = "lftp") {
        self.logger = logger
        self.executable = executable
    }

    public func transfer(_ request: TransferRequest, progress: @escaping @Sendable (TransferProgress) -> Void)
        async throws(TransferFailure) -> StagedTransfer
    {
        let remote = request.remote
        if remote.hostKeyFingerprint != nil {
            throw TransferFailure(.permanent, code: "unsupported_setting", """
                remote \(remote.name): the lftp engine checks host keys with known_hosts only; \
                replace host_key_fingerprint with a known_hosts file or use engine = "native"
                """)
        }
        let path = request.job.remotePath
        var isDirectory = request.job.kind == .directory
        if request.job.kind == .auto {
            let listing = try await run(request, ["cls -1 -d --classify \(quoted(path))"])
            isDirectory = listing.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix("/")
        }
        let n = max(1, request.parallelism)
        let command = isDirectory
            ? "mirror --use-pget-n=\(n) -P \(n) -p -c \(quoted(path)) \(quoted(request.stagedPath))"
            : "pget -n \(n) -c \(quoted(path)) -o \(quoted(request.stagedPath))"
        _ = try await run(request, [command])
        let files = Self.files(under: request.stagedPath, isDirectory: isDirectory)
        let total = files.values.reduce(0, +)
        progress(TransferProgress(bytes: total, totalBytes: total))
        return StagedTransfer(kind: isDirectory ? .directory : .file, path: request.stagedPath, files: files,
                              bytesTransferred: total)
    }

    public func shutdown() async {}

    /// Runs lftp with `commands` after connecting.
    /// - Returns: its standard output.
    private func run(_ request: TransferRequest, _ commands: [String]) async throws(TransferFailure) -> String {
        let remote = request.remote
        var ssh = ["ssh", "-a", "-x", "-o", "GlobalKnownHostsFile=/dev/null",
                   "-o", "StrictHostKeyChecking=\(remote.hostKeyPolicy == .acceptNew ? "accept-new" : "yes")",
                   "-o", "ConnectTimeout=20", "-o", "ServerAliveInterval=15"]
        if let knownHosts = remote.knownHosts { ssh += ["-o", "UserKnownHostsFile=\(knownHosts)"] }
        if let key = remote.privateKey { ssh += ["-i", key] }
        if remote.password == nil { ssh += ["-o", "BatchMode=yes"] }  // no prompt lftp could not answer
        let script = [
            "set cmd:fail-exit yes",
            "set net:max-retries 2",
            "set net:timeout 20",
            "set net:reconnect-interval-base 2",
            "set xfer:clobber yes",
            "set sftp:auto-confirm no",
            "set sftp:connect-program \(quoted(ssh.joined(separator: " ")))",
            "open \(remote.password == nil ? "" : "--env-password ")-u \(quoted(remote.username)) -p \(remote.port) sftp://\(remote.host)",
        ] + commands
        var environment = ProcessInfo.processInfo.environment
        environment["LFTP_PASSWORD"] = remote.password?.revealed
        logger.debug("running lftp", metadata: ["lftp.commands": "\(commands)"])
        let result: (status: Int32, stdout: String, stderr: String)
        do {
            result = try await runLftp(script.joined(separator: "\n"), environment: environment)
        } catch {
            throw TransferFailure(.transient, code: "lftp_unavailable", "cannot run lftp: \(error)")
        }
        for line in (result.stdout + result.stderr).split(separator: "\n") {
            logger.debug("lftp: \(line)", metadata: ["job.id": "\(request.job.id)"])
        }
        guard result.status == 0 else { throw Self.classify(result.stderr, path: request.job.remotePath) }
        return result.stdout
    }

    /// Starts lftp reading its script from standard input (so nothing but the program name is on its
    /// command line) and collects its output off the cooperative pool.
    private func runLftp(_ script: String, environment: [String: String]) async throws
        -> (status: Int32, stdout: String, stderr: String)
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [executable, "-f", "/dev/stdin"]
        process.environment = environment
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        input.fileHandleForWriting.write(Data(script.utf8))
        try? input.fileHandleForWriting.close()
        // A thread of its own for as long as lftp runs: a dispatch thread would be one of those that run tasks, and
        // runBlocking's threads are for short calls (fsyncs would queue behind long transfers).
        return await withCheckedContinuation { continuation in
            Thread {
                let stdout = output.fileHandleForReading.readDataToEndOfFile()
                let stderr = errors.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                continuation.resume(returning: (process.terminationStatus, String(decoding: stdout, as: UTF8.self),
                                                String(decoding: stderr, as: UTF8.self)))
            }.start()
        }
    }

    /// Maps lftp's complaint to a failure class.
    static func classify(_ stderr: String, path: String) -> TransferFailure {
        let text = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        let last = text.split(separator: "\n").last.map(String.init) ?? "lftp failed"
        let lower = text.lowercased()
        if lower.contains("no such file") {
            return TransferFailure(.permanent, code: "no_such_file", "\(path) does not exist on the server (lftp: \(last))")
        }
        if lower.contains("permission denied") && !lower.contains("login") {
            return TransferFailure(.permanent, code: "permission_denied", "the server denies access to \(path) (lftp: \(last))")
        }
        if lower.contains("host key verification failed") {
            return TransferFailure(.permanent, code: "host_key_unknown",
                                   "ssh refused the server's host key; add it to the remote's known_hosts (lftp: \(last))")
        }
        if lower.contains("login failed") || lower.contains("login incorrect") {
            return TransferFailure(.permanent, code: "authentication_failed", "the server refused the login (lftp: \(last))")
        }
        return TransferFailure(.transient, code: "lftp_failed", "lftp: \(last)")
    }

    /// Regular files under a staged path with their sizes (relative paths; `""` for a single file).
    static func files(under path: String, isDirectory: Bool) -> [String: Int64] {
        guard isDirectory else {
            return ["": (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? 0]
        }
        var files: [String: Int64] = [:]
        let enumerator = FileManager.default.enumerator(atPath: path)
        while let relative = enumerator?.nextObject() as? String {
            let attributes = try? FileManager.default.attributesOfItem(atPath: join(path, relative))
            if attributes?[.type] as? FileAttributeType == .typeRegular {
                files[relative] = attributes?[.size] as? Int64 ?? 0
            }
        }
        return files
    }
}

/// A word for an lftp script: double-quoted with `\` and `"` escaped.
private func quoted(_ text: String) -> String {
    "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
}
