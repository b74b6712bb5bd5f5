import AsyncSupport
import Foundation
import Logging
import Subprocess
import Synchronization
import SystemPackage
import TransferStore

/// Debian's `lftp`, one process per job as the original ran it (`pget -n num_threads -c` for files,
/// `mirror --use-pget-n=num_threads -p -c --no-symlinks` for directories), for servers the native engine cannot
/// talk to. The password reaches lftp through the environment (`open --env-password`), never the command line; the
/// host key is checked by OpenSSH through `sftp:connect-program` with the remote's known_hosts file and policy.
///
/// Remote paths are passed after `--` and start with `/`, `~` or `./`, so lftp never reads one as an option or a
/// URL (jobs are validated for the same, see ``TransferJob/location``). lftp runs in a session of its own: standard
/// output and error are read concurrently, and a cancelled transfer or ``shutdown()`` stops lftp (SIGTERM to its
/// process group, SIGKILL 2 s later). A mirror fails the job as `unsafe_remote_name` (permanent) when a listing
/// holds a name that is not a plain file name (lftp would skip it silently), or when anything in staging is not a
/// regular file or folder, or resolves outside the staging root.
public struct LftpEngine: TransferEngine {
    private let logger: Logger
    private let executable: String
    private let processes = RunningProcesses()

    /// An engine running `lftp` from `PATH` (or `executable`, a name on `PATH` or a path).
    public init(logger: Logger, executable: String = "lftp") {
        self.logger = logger
        self.executable = executable
    }

    public func transfer(_ request: TransferRequest, progress: @escaping @Sendable (TransferProgress) -> Void)
        async throws(TransferFailure) -> StagedTransfer
    {
        let path = Self.argument(forRemotePath: request.job.remotePath)
        var isDirectory = request.job.kind == .directory
        if request.job.kind == .auto {
            let listing = try await run(request.remote, request.job, ["cls -1 -d --classify -- \(quoted(path))"])
            isDirectory = listing.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix("/")
        }
        let n = max(1, request.parallelism)
        // A mirror runs with lftp's protocol trace on standard error: it is the only place the names of a listing
        // appear (lftp silently skips a name with "/"), and run(_:_:) checks each one.
        let commands = isDirectory
            ? ["debug 10", "mirror --use-pget-n=\(n) -P \(n) -p -c --no-symlinks -- \(quoted(path)) \(quoted(request.stagedPath))"]
            : ["pget -n \(n) -c -- \(quoted(path)) -o \(quoted(request.stagedPath))"]
        _ = try await run(request.remote, request.job, commands)
        if isDirectory { try Self.checkContained(request.stagedPath) }
        let files = Self.files(under: request.stagedPath, isDirectory: isDirectory)
        let total = files.values.reduce(0, +)
        progress(TransferProgress(bytes: total, totalBytes: total))
        return StagedTransfer(kind: isDirectory ? .directory : .file, path: request.stagedPath, files: files,
                              bytesTransferred: total, engine: .lftp)
    }

    /// Stops every lftp still running (SIGTERM to its process group, SIGKILL after 2 s).
    public func shutdown() async {
        guard processes.signalAll(SIGTERM) else { return }
        let deadline = ContinuousClock.now + .seconds(2)
        while !processes.isEmpty && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        processes.signalAll(SIGKILL)
    }

    /// `path` as lftp must see it: absolute and home paths as they are, anything else behind `./`, so it can
    /// start with neither `-` nor a URL scheme.
    static func argument(forRemotePath path: String) -> String {
        path.hasPrefix("/") || path.hasPrefix("~") ? path : "./" + path
    }

    /// Logs in to `remote` and lists its login directory (`config check --probe`).
    public func probe(_ remote: RemoteConfig) async throws(TransferFailure) {
        _ = try await run(remote, nil, ["cls -1 -d -- ."])
    }

    /// Runs lftp with `commands` after connecting to `remote` (for `job`, when there is one).
    /// - Returns: its standard output (the last 64 KiB).
    private func run(_ remote: RemoteConfig, _ job: TransferJob?, _ commands: [String]) async throws(TransferFailure)
        -> String
    {
        guard let program = Self.locate(executable) else {
            throw TransferFailure(.lftpUnavailable, "cannot run lftp: \(executable) is not installed (not found on PATH)")
        }
        if remote.hostKeyFingerprint != nil {
            throw TransferFailure(.unsupportedSetting, """
                remote \(remote.name): the lftp engine checks host keys with known_hosts only; \
                replace host_key_fingerprint with a known_hosts file or use engine = "native"
                """)
        }
        var ssh = ["ssh", "-a", "-x", "-o", "GlobalKnownHostsFile=/dev/null",
                   "-o", "StrictHostKeyChecking=\(remote.hostKeyPolicy == .acceptNew ? "accept-new" : "yes")",
                   "-o", "ConnectTimeout=20", "-o", "ServerAliveInterval=15"]
        if let file = remote.sshConfigFile { ssh += ["-F", file] }
        if let knownHosts = remote.knownHosts { ssh += ["-o", "UserKnownHostsFile=\(knownHosts)"] }
        if let key = remote.privateKey { ssh += ["-i", key] }
        if let agent = remote.identityAgent { ssh += ["-o", "IdentityAgent=\(agent)"] }
        // No prompt lftp could not answer; a key's passphrase is answered by the askpass helper instead.
        if remote.password == nil && remote.privateKeyPassphrase == nil { ssh += ["-o", "BatchMode=yes"] }
        let script = [
            "set cmd:fail-exit yes",
            "set net:max-retries 2",
            // A server silent for the remote's stall_timeout is a failed try, as on the native engine.
            "set net:timeout \(max(1, Int(remote.stallTimeout.timeInterval)))",
            "set net:reconnect-interval-base 2",
            "set xfer:clobber yes",
            "set sftp:auto-confirm no",
            "set sftp:connect-program \(quoted(ssh.joined(separator: " ")))",
            Self.open(remote),
        ] + commands
        logger.debug("running lftp", metadata: ["lftp.commands": "\(commands)"])
        let result: LftpResult
        do {
            result = try await runLftp(program, script: script.joined(separator: "\n"),
                                       password: remote.password?.revealed,
                                       passphrase: remote.privateKeyPassphrase?.revealed)
        } catch {
            if Task.isCancelled { throw TransferFailure(.cancelled, "the transfer was cancelled") }
            throw TransferFailure(.lftpUnavailable, "cannot run lftp: \(error)")
        }
        if Task.isCancelled { throw TransferFailure(.cancelled, "the transfer was cancelled") }
        for line in (result.stdout + result.stderr).split(separator: "\n") {
            logger.debug("lftp: \(line)", metadata: ["job.id": "\(job?.id ?? "-")"])
        }
        if let name = result.unsafeName {
            throw TransferFailure(.unsafeRemoteName, """
                the server listed the name \(excerpt(name)) under \(job?.remotePath ?? "."), which is not a plain \
                file name (it contains "/", "\\" or NUL, is empty or is over 255 bytes); refused
                """)
        }
        guard result.status == .exited(0) else { throw Self.classify(result.stderr, path: job?.remotePath ?? ".") }
        return result.stdout
    }

    /// lftp's `open` of the remote. Without a password, "user," (an empty one): lftp leaves `-l user` off ssh's
    /// command line for a user without a password, and ssh would log in as the local user. A remote with
    /// `ssh_config_host` opens that Host, leaving user and port to the ssh configuration unless the remote sets them.
    static func open(_ remote: RemoteConfig) -> String {
        if let host = remote.sshConfigHost {
            let user = remote.username.isEmpty ? "" : "-u \(quoted(remote.username + ",")) "
            let port = remote.port == 22 ? "" : "-p \(remote.port) "
            return "open \(user)\(port)sftp://\(host)"
        }
        return "open \(remote.password == nil ? "-u \(quoted(remote.username + ","))" : "--env-password -u \(quoted(remote.username))") -p \(remote.port) sftp://\(remote.host)"
    }

    /// What a finished lftp left: how it ended, the ends of its output, and the first unsafe name its protocol
    /// trace showed in a listing.
    private struct LftpResult {
        var status: TerminationStatus
        var stdout: String
        var stderr: String
        var unsafeName: String?
    }

    /// Runs lftp reading its script from standard input (so nothing but the program name is on its command line),
    /// in a session of its own, reading standard output and error concurrently (each kept to its last 64 KiB).
    /// A cancelled task stops lftp before this returns.
    /// The password and a key's passphrase travel in lftp's environment, never on a command line: lftp reads
    /// `LFTP_PASSWORD`; ssh asks ``AskPass`` for the passphrase, which prints `KAFKASYNC_KEY_PASSPHRASE`.
    private func runLftp(_ program: String, script: String, password: String?, passphrase: String?) async throws
        -> LftpResult
    {
        var environment: [Environment.Key: String?] = ["LFTP_PASSWORD": password]
        if let passphrase {
            environment["SSH_ASKPASS"] = try AskPass.program()
            environment["SSH_ASKPASS_REQUIRE"] = "force"
            environment["KAFKASYNC_KEY_PASSPHRASE"] = passphrase
        }
        var options = PlatformOptions()
        options.createSession = true
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: .seconds(2))]
        let processes = self.processes
        let result = try await Subprocess.run(
            .path(FilePath(program)), arguments: ["-f", "/dev/stdin"],
            environment: .inherit.updating(environment), platformOptions: options,
            input: .string(script), output: .sequence, error: .sequence
        ) { execution in
            let pid = execution.processIdentifier.value
            processes.insert(pid)
            defer { processes.remove(pid) }
            async let stdout = Self.read(execution.standardOutput)
            async let stderr = Self.read(execution.standardError)
            return try await (stdout, stderr)
        }
        let (stdout, stderr) = result.closureResult
        return LftpResult(status: result.terminationStatus, stdout: stdout.text, stderr: stderr.text,
                          unsafeName: stderr.unsafeName)
    }

    /// Reads a stream to its end line by line, keeping the last `limit` bytes of the lines that are not lftp's
    /// protocol trace, and checking each name the trace shows in a listing (``unsafeListedName(inTrace:)``).
    private static func read(_ stream: SubprocessOutputSequence, limit: Int = 65_536) async throws
        -> (text: String, unsafeName: String?)
    {
        var kept: [UInt8] = [], line: [UInt8] = [], unsafeName: String?
        func finish(_ line: [UInt8]) {
            if line.starts(with: traceMark) {
                if unsafeName == nil { unsafeName = unsafeListedName(inTrace: line) }
            } else {
                kept += line + [UInt8(ascii: "\n")]
                if kept.count > 2 * limit { kept.removeFirst(kept.count - limit) }
            }
        }
        for try await buffer in stream {
            buffer.withUnsafeBytes { bytes in
                for byte in bytes {
                    if byte == UInt8(ascii: "\n") {
                        finish(line)
                        line.removeAll(keepingCapacity: true)
                    } else if line.count < 1 << 20 {  // a line longer than 1 MiB is cut, not held whole
                        line.append(byte)
                    }
                }
            }
        }
        if !line.isEmpty { finish(line) }
        return (String(decoding: kept.suffix(limit), as: UTF8.self), unsafeName)
    }

    /// lftp's protocol trace lines (`debug 10`) start with `---- `, `---> `, `<--- ` or `**** `; only `---- ` ones
    /// matter here.
    private static let traceMark = Array("---- ".utf8)

    /// The name in a trace line `---- NameAttrs(name="NAME",type=…` when it is not a plain file name: it holds
    /// `/`, `\` or NUL, is empty, or is over 255 bytes. `.` and `..` are what every listing holds; lftp skips them.
    static func unsafeListedName(inTrace line: [UInt8]) -> String? {
        let prefix = Array("---- NameAttrs(name=\"".utf8), suffix = Array("\",type=".utf8)
        guard line.starts(with: prefix) else { return nil }
        let rest = line[prefix.count...]
        // The first `",type=`: a name holding that text is cut there, and its cut-off part is not checked, but a
        // name cannot hide a "/" that way from lftp, which skips such names anyway.
        guard let end = rest.indices.first(where: { rest[$0...].starts(with: suffix) }) else { return nil }
        let name = rest[..<end]
        let unsafe = name.isEmpty || name.count > 255 || name.contains(UInt8(ascii: "/"))
            || name.contains(UInt8(ascii: "\\")) || name.contains(0)
        return unsafe ? String(decoding: name, as: UTF8.self) : nil
    }

    /// `program` as an absolute path: a path as it is, a bare name looked up on `PATH`; `nil` when it is not an
    /// executable file.
    public static func locate(_ program: String = "lftp",
                              path: String? = ProcessInfo.processInfo.environment["PATH"]) -> String? {
        if program.contains("/") { return FileManager.default.isExecutableFile(atPath: program) ? program : nil }
        for directory in (path ?? "/usr/bin:/bin").split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/\(program)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// The remotes of `config` that use the lftp engine when `program` cannot be found; `nil` when it can or
    /// none does. The consumer and `config check` refuse to start with them.
    public static func missingProgram(for config: KafkaSyncConfig, program: String = "lftp") -> MissingLftp? {
        let remotes = ([config.defaultRemote] + config.remotes.values).filter { $0.engine == .lftp }.map(\.name)
        guard !remotes.isEmpty, locate(program) == nil else { return nil }
        return MissingLftp(remotes: remotes.sorted(), program: program)
    }

    /// Maps lftp's complaint to a failure class.
    static func classify(_ stderr: String, path: String) -> TransferFailure {
        let text = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        let last = text.split(separator: "\n").last.map(String.init) ?? "lftp failed"
        let lower = text.lowercased()
        if lower.contains("no such file") {
            return TransferFailure(.noSuchFile, "\(path) does not exist on the server (lftp: \(last))")
        }
        if lower.contains("permission denied") && !lower.contains("login") {
            return TransferFailure(.permissionDenied, "the server denies access to \(path) (lftp: \(last))")
        }
        if lower.contains("host key verification failed") {
            return TransferFailure(.hostKeyUnknown, "ssh refused the server's host key; add it to the remote's known_hosts (lftp: \(last))")
        }
        if lower.contains("login failed") || lower.contains("login incorrect") {
            return TransferFailure(.authenticationFailed, "the server refused the login (lftp: \(last))")
        }
        return TransferFailure(.lftpFailed, "lftp: \(last)")
    }

    /// Fails the job when a mirror left anything but regular files and folders under `root`, or anything that
    /// resolves outside it: a hostile listing (`../x`, a symlink) must not reach `completes`.
    static func checkContained(_ root: String) throws(TransferFailure) {
        let base = URL(fileURLWithPath: root).resolvingSymlinksInPath().path
        let enumerator = FileManager.default.enumerator(atPath: root)
        while let relative = enumerator?.nextObject() as? String {
            let path = join(root, relative)
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            let type = info.st_mode & S_IFMT
            let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
            if (type != S_IFREG && type != S_IFDIR) || !(resolved == base || resolved.hasPrefix(base + "/")) {
                throw TransferFailure(.unsafeRemoteName, """
                    the server listed \(excerpt(relative)), which is not a plain file or folder under the job's \
                    staging folder; refused
                    """)
            }
        }
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

/// Remotes use `engine = "lftp"` but the `lftp` program is not installed: a configuration error at start.
public struct MissingLftp: Error, Sendable, Equatable, CustomStringConvertible {
    /// The remotes that use the lftp engine.
    public let remotes: [String]
    /// The program looked for.
    public let program: String

    public var description: String {
        let names = remotes.map { "\"\($0)\"" }.joined(separator: ", ")
        return """
            remote\(remotes.count == 1 ? "" : "s") \(names) use\(remotes.count == 1 ? "s" : "") engine = "lftp", \
            but the program \(program) is not installed (not found on PATH); install it (apt-get install lftp) \
            or set engine = "native"
            """
    }
}

/// The process ids of the lftp processes an engine runs (each the leader of its own process group).
final class RunningProcesses: Sendable {
    private let pids = Mutex<Set<pid_t>>([])

    func insert(_ pid: pid_t) { pids.withLock { _ = $0.insert(pid) } }
    func remove(_ pid: pid_t) { pids.withLock { _ = $0.remove(pid) } }
    var isEmpty: Bool { pids.withLock { $0.isEmpty } }

    /// Sends `signal` to each process group; the pids stay registered (and unreaped) until their run ends, so a
    /// pid is never reused while it is here.
    /// - Returns: whether there was any.
    @discardableResult
    func signalAll(_ signal: Int32) -> Bool {
        pids.withLock { pids in
            for pid in pids { kill(-pid, signal) }
            return !pids.isEmpty
        }
    }
}

/// A word for an lftp script: double-quoted with `\` and `"` escaped.
private func quoted(_ text: String) -> String {
    "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
}

/// The program ssh runs to ask for a key's passphrase (`SSH_ASKPASS`): a script that prints
/// `KAFKASYNC_KEY_PASSPHRASE` from its environment. It holds no secret; it is written once per process into a
/// private temporary folder.
enum AskPass {
    private static let written = Result { () throws -> String in
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kafkasync-askpass-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o700])
        let script = folder.appendingPathComponent("askpass").path
        try writeExecutableScript(script, "#!/bin/sh\nprintf '%s\\n' \"$KAFKASYNC_KEY_PASSPHRASE\"\n")
        return script
    }

    /// The script's path.
    static func program() throws -> String { try written.get() }
}
