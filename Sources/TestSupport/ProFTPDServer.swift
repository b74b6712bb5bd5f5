import Foundation
import KafkaSyncCore

/// ProFTPD's SFTP server (`mod_sftp`, Debian's proftpd-core and proftpd-mod-crypto): an SSH implementation other
/// than OpenSSH, as appliances and older installations run it, on a free loopback port. The login user is chrooted
/// into ``root`` (`DefaultRoot`, served as `/`) and logs in with ``clientKey``; the host key is ECDSA (which the
/// native engine speaks) or RSA only (which it does not: the case `engine = "auto"` hands to lftp). Root only: the
/// server switches to the login user, as the sshd fixture's password user.
public final class ProFTPDServer: Sendable {
    /// The keys, the configuration, logs, and `root/`.
    public let directory: TemporaryDirectory
    /// The served folder (remote `/`).
    public let root: String
    /// The port it listens on (127.0.0.1).
    public let port: Int
    /// The login user (a system user the fixtures create).
    public let username: String
    /// An ed25519 client key authorized for ``username``.
    public let clientKey: String
    /// A known_hosts file holding the host key for `[127.0.0.1]:port`.
    public let knownHosts: String
    private let process: BackgroundProcess

    /// Starts the server and waits until it accepts connections.
    /// - Parameter hostKeyType: `ecdsa` (default) or `rsa`.
    /// - Throws: ``FixtureUnavailable`` when proftpd is missing (`scripts/bootstrap` installs it), the tests do not
    ///   run as root, or the server does not start; tests fail then, they never skip.
    public init(hostKeyType: String = "ecdsa") async throws {
        guard getuid() == 0 else { throw FixtureUnavailable(what: "the ProFTPD fixture needs root (CI runs as root)") }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/proftpd") else {
            throw FixtureUnavailable(what: "proftpd is not installed; run scripts/bootstrap")
        }
        directory = try TemporaryDirectory(prefix: "kafkasync-proftpd")
        root = directory.file("root")
        for folder in [directory.path, root] {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: folder)
        }
        try await SSHServerFixture.passwordUserReady.value
        username = SSHServerFixture.passwordUser
        let hostKey = directory.file("host_\(hostKeyType)")
        clientKey = directory.file("id_ed25519")
        for (key, type) in [(hostKey, hostKeyType), (clientKey, "ed25519")] {
            let made = try await runProcess("ssh-keygen", ["-q", "-t", type, "-N", "", "-f", key, "-C", "kafkasync-test"]
                                                + (type == "rsa" ? ["-b", "2048"] : []))
            guard made.status == 0 else { throw FixtureUnavailable(what: "ssh-keygen: \(made.stderr)") }
        }
        // mod_sftp reads authorized keys in RFC 4716 form.
        let exported = try await runProcess("ssh-keygen", ["-e", "-f", clientKey + ".pub"])
        guard exported.status == 0 else { throw FixtureUnavailable(what: "ssh-keygen -e: \(exported.stderr)") }
        let authorized = try directory.write("authorized_keys", exported.stdout)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: authorized)
        port = try freeLoopbackPort()
        let hostPublicKey = try String(contentsOfFile: hostKey + ".pub", encoding: .utf8)
            .split(separator: " ").prefix(2).joined(separator: " ")
        knownHosts = try directory.write("known_hosts", "[127.0.0.1]:\(port) \(hostPublicKey)\n")
        let config = try directory.write("proftpd.conf", """
            ServerType standalone
            ServerName "kafkasync-test"
            Port \(port)
            DefaultAddress 127.0.0.1
            SocketBindTight on
            UseIPv6 off
            User nobody
            Group nogroup
            PidFile \(directory.file("proftpd.pid"))
            ScoreboardFile \(directory.file("proftpd.scoreboard"))
            DelayTable none
            WtmpLog off
            TransferLog none
            SystemLog \(directory.file("system.log"))
            RequireValidShell off
            DefaultRoot \(root)
            AuthOrder mod_auth_unix.c
            MaxInstances 64
            ModulePath /usr/lib/proftpd
            LoadModule mod_sftp.c
            <IfModule mod_sftp.c>
              SFTPEngine on
              SFTPLog \(directory.file("sftp.log"))
              SFTPHostKey \(hostKey)
              SFTPAuthorizedUserKeys file:\(authorized)
              SFTPAuthMethods publickey
            </IfModule>
            """)
        process = try BackgroundProcess("/usr/sbin/proftpd", ["--nodaemon", "-c", config])
        let started = process, port = port
        do {
            try await withTimeout(.seconds(15), "proftpd to listen") {
                while !acceptsConnections(onLoopbackPort: port) {
                    if !started.isRunning { throw FixtureUnavailable(what: "proftpd exited: \(started.stderr)") }
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
        } catch {
            _ = await process.stop(signal: SIGKILL)
            throw error
        }
    }

    /// Writes a file under the served folder (readable by the login user) and returns its remote path.
    @discardableResult
    public func serve(_ name: String, _ contents: Data) throws -> String {
        let path = root + "/" + name
        let folder = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        try contents.write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        return "/" + name
    }

    /// A remote using this server with key login and strict host-key checking (engine `auto`).
    public func remote(name: String = "proftpd") -> RemoteConfig {
        RemoteConfig(name: name, host: "127.0.0.1", port: port, username: username, privateKey: clientKey,
                     knownHosts: knownHosts)
    }

    /// What the server logged (for failure messages).
    public var log: String {
        (try? String(contentsOfFile: directory.file("sftp.log"), encoding: .utf8)).map { String($0.suffix(3000)) } ?? process.stderr
    }

    /// Stops the server and removes its folder.
    public func stop() async {
        _ = await process.stop(signal: SIGTERM)
        directory.remove()
    }
}

/// Runs `body` with a fresh ProFTPD server, stopping it afterwards, whatever happens.
public func withProFTPDServer<Result>(hostKeyType: String = "ecdsa",
                                      _ body: (ProFTPDServer) async throws -> Result) async throws -> Result {
    try await withFixture(try await ProFTPDServer(hostKeyType: hostKeyType), stop: { await $0.stop() }, body)
}
