import ArgumentParser
import Foundation
import KafkaSyncCore
import Logging
import SFTPClient

/// `kafkasync get`: a one-off download with the native engine.
struct GetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Download one remote file or directory over SFTP with the native engine.",
        discussion: """
            Files land in --to as <name> (a partial download is kept as .<name>.partial and resumed). \
            Connection settings come from the flags, or from [remotes.NAME] with --config and --remote.
            """
    )

    @Argument(help: "sftp://[user@]host[:port]/path (with --remote, only the path is used)")
    var url: String

    @Option(help: "Folder to download into.") var to = "."
    @Option(help: "Private key file (ed25519 or ECDSA).") var identity: String?
    @Option(name: .customLong("known-hosts"), help: "known_hosts file (default ~/.ssh/known_hosts).") var knownHosts: String?
    @Option(name: .customLong("host-key-policy"), help: "strict (default) or accept-new.") var hostKeyPolicy = "strict"
    @Option(name: .customLong("password-env"), help: "Environment variable holding the password.") var passwordEnv: String?
    @Option(help: "Use this [remotes.NAME] (or remoteDetails) from --config.") var remote: String?
    @Option(help: "The configuration file (with --remote).") var config = "./config.toml"

    func validate() throws {
        guard ["strict", "accept-new"].contains(hostKeyPolicy) else {
            throw ValidationError("--host-key-policy \(hostKeyPolicy): expected strict or accept-new")
        }
        guard let components = URLComponents(string: url), components.scheme == "sftp", !components.path.isEmpty else {
            throw ValidationError("\(url) is not an sftp://[user@]host[:port]/path URL")
        }
        if remote == nil && (components.host ?? "").isEmpty { throw ValidationError("\(url) names no host") }
    }

    func run() async throws {
        let components = URLComponents(string: url)!
        var path = components.percentEncodedPath.removingPercentEncoding ?? components.path
        if path.hasPrefix("/~/") { path = String(path.dropFirst(3)) }
        let settings: SSHConnectionConfiguration
        do {
            settings = try connectionSettings(components)
        } catch let error as SFTPError {
            printError("kafkasync: \(error.message)")
            throw ExitCode(1)
        }
        let started = ContinuousClock.now
        let bytes: Int64
        do {
            bytes = try await download(path, settings: settings)
        } catch {
            printError("kafkasync: \((error as? SFTPError)?.message ?? "\(error)")")
            throw ExitCode(1)
        }
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let rate = seconds > 0 ? Double(bytes) / seconds / 1_000_000 : 0
        printNow(String(format: "%@: %lld bytes in %.2f s (%.1f MB/s)", (path as NSString).lastPathComponent, bytes,
                        seconds, rate))
    }

    /// Connects, downloads and disconnects. - Returns: the bytes downloaded.
    private func download(_ path: String, settings: SSHConnectionConfiguration) async throws -> Int64 {
        let connection = try await SSHConnection.connect(settings, logger: makeLogger("kafkasync.get", level: .error))
        do {
            let session = try await connection.openSFTP()
            let bytes = try await Fetcher(session: session).fetch(path, into: URL(fileURLWithPath: to).standardizedFileURL.path)
            await connection.close()
            return bytes
        } catch {
            await connection.close()
            throw error
        }
    }

    private func connectionSettings(_ components: URLComponents) throws -> SSHConnectionConfiguration {
        if let remote {
            let loaded = try ConfigOptions(config: config).load()
            guard let remoteConfig = loaded.remote(named: remote) else {
                printError("kafkasync: no remote \(remote) in \(config)")
                throw ExitCode(1)
            }
            return try remoteConfig.connectionConfiguration()
        }
        let host = components.host!
        let port = components.port ?? 22
        var credentials: [SSHCredential] = []
        if let identity {
            let text = (try? String(contentsOfFile: identity, encoding: .utf8)) ?? ""
            credentials.append(.privateKey(try OpenSSHPrivateKey.parse(text, name: identity), path: identity))
        }
        if let passwordEnv {
            guard let password = ProcessInfo.processInfo.environment[passwordEnv], !password.isEmpty else {
                throw SFTPError(.authenticationFailed, "--password-env \(passwordEnv): that variable is not set")
            }
            credentials.append(.password(password))
        }
        let user = components.user ?? ProcessInfo.processInfo.environment["USER"] ?? "root"
        return SSHConnectionConfiguration(
            host: host, port: port, username: user, credentials: credentials,
            hostKeyVerifier: HostKeyVerifier(host: host, port: port, knownHosts: knownHosts,
                                             trust: hostKeyPolicy == "accept-new" ? .acceptNew : .strict))
    }
}

/// Downloads a file, or a directory tree one file at a time, with a progress line on a terminal.
struct Fetcher {
    let session: SFTPSession
    private let showProgress = isatty(STDERR_FILENO) == 1

    init(session: SFTPSession) { self.session = session }

    /// - Returns: the bytes downloaded.
    func fetch(_ remote: String, into folder: String) async throws(SFTPError) -> Int64 {
        let name = (remote as NSString).lastPathComponent
        let target = (folder as NSString).appendingPathComponent(name)
        if try await session.attributes(remote).isDirectory {
            do {
                try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
            } catch {
                throw SFTPError(.failure, "cannot create \(target): \(error.localizedDescription)")
            }
            var total: Int64 = 0
            for entry in try await session.listDirectory(remote) where entry.attributes.isDirectory || entry.attributes.isRegularFile {
                total += try await fetch((remote as NSString).appendingPathComponent(entry.name), into: target)
            }
            return total
        }
        let partial = (folder as NSString).appendingPathComponent(".\(name).partial")
        let resumeFrom = (try? FileManager.default.attributesOfItem(atPath: partial)[.size] as? Int64) ?? 0
        let show = showProgress
        let size = try await session.download(remote, to: partial, offset: resumeFrom) { bytes in
            if show { FileHandle.standardError.write(Data("\r\(name): \(bytes + resumeFrom) bytes".utf8)) }
        }
        if show { FileHandle.standardError.write(Data("\n".utf8)) }
        guard rename(partial, target) == 0 else {
            throw SFTPError(.failure, "cannot move \(partial) to \(target): \(String(cString: strerror(errno)))")
        }
        return size - resumeFrom
    }
}
