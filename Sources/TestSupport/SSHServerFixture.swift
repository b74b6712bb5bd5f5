import Foundation
import Synchronization

/// A real OpenSSH `sshd` on a free loopback port serving SFTP (`internal-sftp`), with generated host and
/// client keys. As root it also creates a test user with a password (`kafkasync-sftp`), so password
/// authentication is tested too; as another user it serves that user with key authentication only.
public final class SSHServerFixture: Sendable {
    /// The folder holding the keys, the config and `data/` (the files to serve, readable by ``username``).
    public let directory: TemporaryDirectory
    /// The port sshd listens on (127.0.0.1).
    public let port: Int
    /// The login user.
    public let username: String
    /// The user's password (only when the tests run as root), else `nil`.
    public let password: String?
    /// An unencrypted ed25519 client key authorized for ``username``.
    public let clientKey: String
    /// An unencrypted ECDSA P-256 client key authorized for ``username``.
    public let clientECDSAKey: String
    /// The server's ed25519 public key line (`ssh-ed25519 AAAA…`).
    public let hostPublicKey: String
    /// Its fingerprint as `ssh-keygen -lf` prints it (`SHA256:…`).
    public let hostKeyFingerprint: String
    /// A known_hosts file holding the host key for `[127.0.0.1]:port`.
    public let knownHosts: String
    private let running: Mutex<BackgroundProcess>
    private let configPath: String
    private var process: BackgroundProcess { running.withLock { $0 } }

    /// The user created for password tests when running as root.
    public static let passwordUser = "kafkasync-sftp"
    private static let sharedPassword = "pw-\(UUID().uuidString.prefix(12))"

    /// Starts sshd and waits until it listens.
    /// - Parameters:
    ///   - hostKeyType: `ed25519` (default), `ecdsa` or `rsa` (for tests of unsupported algorithms).
    ///   - extraConfig: more sshd_config lines (`Ciphers …`, `MACs …`, `RekeyLimit …`).
    /// - Throws: ``FixtureUnavailable`` when sshd or ssh-keygen is missing or sshd does not start.
    public init(hostKeyType: String = "ed25519", extraConfig: String = "") async throws {
        directory = try TemporaryDirectory(prefix: "kafkasync-sshd")
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory.path)
        let dataDirectory = directory.file("data")
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        let isRoot = getuid() == 0
        if isRoot {
            username = Self.passwordUser
            // One password for the whole test run: fixtures started in parallel share the user.
            try await Self.passwordUserReady.value
            password = Self.sharedPassword
            try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        } else {
            username = ProcessInfo.processInfo.environment["USER"] ?? NSUserName()
            password = nil
        }
        let hostKey = directory.file("ssh_host_\(hostKeyType)_key")
        try await Self.keygen(type: hostKeyType, path: hostKey)
        clientKey = directory.file("id_ed25519")
        try await Self.keygen(type: "ed25519", path: clientKey)
        clientECDSAKey = directory.file("id_ecdsa")
        try await Self.keygen(type: "ecdsa", path: clientECDSAKey)
        let authorized = try String(contentsOfFile: clientKey + ".pub", encoding: .utf8)
            + String(contentsOfFile: clientECDSAKey + ".pub", encoding: .utf8)
        try directory.write("authorized_keys", authorized)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: directory.file("authorized_keys"))

        hostPublicKey = try String(contentsOfFile: hostKey + ".pub", encoding: .utf8)
            .split(separator: " ").prefix(2).joined(separator: " ")
        let fingerprint = try await runProcess("ssh-keygen", ["-lf", hostKey + ".pub"])
        hostKeyFingerprint = fingerprint.stdout.split(separator: " ").dropFirst().first.map(String.init) ?? ""

        port = try freeLoopbackPort()
        knownHosts = try directory.write("known_hosts", "[127.0.0.1]:\(port) \(hostPublicKey)\n")
        let config = try directory.write("sshd_config", """
            Port \(port)
            ListenAddress 127.0.0.1
            HostKey \(hostKey)
            PidFile \(directory.file("sshd.pid"))
            AuthorizedKeysFile \(directory.file("authorized_keys"))
            PasswordAuthentication \(isRoot ? "yes" : "no")
            KbdInteractiveAuthentication no
            UsePAM no
            StrictModes no
            PermitRootLogin no
            AllowUsers \(username)
            Subsystem sftp internal-sftp
            MaxSessions 64
            MaxStartups 64
            LogLevel VERBOSE
            \(extraConfig)
            """)
        configPath = config
        running = Mutex(try await Self.startSSHD(config))
    }

    private static func startSSHD(_ config: String) async throws -> BackgroundProcess {
        let process = try BackgroundProcess("/usr/sbin/sshd", ["-D", "-e", "-f", config])
        try await withTimeout(.seconds(15), "sshd to listen") {
            while !process.stderr.contains("Server listening on") {
                if !process.isRunning { throw FixtureUnavailable(what: "sshd exited: \(process.stderr)") }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        return process
    }

    /// Starts sshd again on the same port with the same keys (after ``kill()``), as a server coming back.
    public func restart() async throws {
        let process = try await Self.startSSHD(configPath)
        running.withLock { $0 = process }
    }

    /// A path inside the served `data/` folder.
    public func dataPath(_ name: String) -> String { directory.file("data/" + name) }

    /// Writes a file into `data/` (readable by the login user) and returns its absolute path.
    @discardableResult
    public func serve(_ name: String, _ contents: Data) throws -> String {
        let path = dataPath(name)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        try contents.write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        return path
    }

    /// What sshd logged so far (to check that no secret reached it, or why a login failed).
    public var log: String { process.stderr }

    /// Kills this sshd and every connection process it forked (SIGKILL), as if the server died.
    /// Other sshd fixtures of the test run are left alone.
    public func kill() async {
        for pid in await connectionProcesses() { Foundation.kill(pid, SIGKILL) }
        _ = await process.stop(signal: SIGKILL)
    }

    /// The files under `data/` that the server's processes hold open now (SFTP handles not yet closed).
    public func openDataFiles() async -> [String] {
        let data = dataPath("")
        return await connectionProcesses().flatMap { pid in
            let folder = "/proc/\(pid)/fd"
            return ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).compactMap { fd in
                (try? FileManager.default.destinationOfSymbolicLink(atPath: "\(folder)/\(fd)")).flatMap {
                    $0.hasPrefix(data) ? $0 : nil
                }
            }
        }
    }

    /// The sshd that accepts connections: stopped (`SIGSTOP`), new connections are still accepted by the kernel but
    /// their handshake never answers.
    public var listenerProcess: pid_t { process.processIdentifier }

    /// The connection processes that hold `path` open now: the sshd sessions serving it. A test stops them
    /// (`SIGSTOP`) to make the server stop answering on those connections while the kernel still accepts their
    /// bytes, as a hung server does, and must let them go (`SIGCONT` or `SIGKILL`) before it ends.
    public func processes(holdingOpen path: String) async -> [pid_t] {
        await connectionProcesses().filter { pid in
            let folder = "/proc/\(pid)/fd"
            return ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).contains { fd in
                (try? FileManager.default.destinationOfSymbolicLink(atPath: "\(folder)/\(fd)")) == path
            }
        }
    }

    /// Every process this sshd forked, and theirs.
    private func connectionProcesses() async -> [pid_t] {
        var found: [pid_t] = []
        var parents = [process.processIdentifier]
        while let parent = parents.popLast() {
            let children = (try? await runProcess("ps", ["-o", "pid=", "--ppid", "\(parent)"]))?.stdout
                .split(whereSeparator: \.isWhitespace).compactMap { pid_t($0) } ?? []
            found += children
            parents += children
        }
        return found
    }

    /// Stops sshd and removes its folder.
    public func stop() async {
        _ = await process.stop(signal: SIGTERM)
        directory.remove()
    }

    private static func keygen(type: String, path: String) async throws {
        var arguments = ["-q", "-t", type, "-N", "", "-f", path, "-C", "kafkasync-test"]
        if type == "ecdsa" { arguments += ["-b", "256"] }
        if type == "rsa" { arguments += ["-b", "2048"] }
        let result = try await runProcess("ssh-keygen", arguments)
        guard result.status == 0 else { throw FixtureUnavailable(what: "ssh-keygen: \(result.stderr)") }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
    }

    /// The password user, created and given ``sharedPassword`` once per test process: fixtures start in
    /// parallel, and two `useradd`s (or `chpasswd`s) of one user at once fail.
    static let passwordUserReady = Task {
        try await ensureUser(passwordUser, password: sharedPassword)
    }

    /// Creates the password test user if needed and sets its password (root only).
    private static func ensureUser(_ name: String, password: String) async throws {
        if try await runProcess("id", ["-u", name]).status != 0 {
            let created = try await runProcess("useradd", ["--system", "--shell", "/bin/sh", "--no-create-home", name])
            guard created.status == 0 else { throw FixtureUnavailable(what: "useradd \(name): \(created.stderr)") }
        }
        let changed = try await runProcess("chpasswd", [], stdin: "\(name):\(password)\n")
        guard changed.status == 0 else { throw FixtureUnavailable(what: "chpasswd: \(changed.stderr)") }
    }
}

/// Runs `body` with a fresh sshd, stopping it (and removing its folder) afterwards, whatever happens.
public func withSSHServer<Result>(hostKeyType: String = "ed25519", extraConfig: String = "",
                                  _ body: (SSHServerFixture) async throws -> Result) async throws -> Result {
    try await withFixture(try await SSHServerFixture(hostKeyType: hostKeyType, extraConfig: extraConfig),
                          stop: { await $0.stop() }, body)
}

