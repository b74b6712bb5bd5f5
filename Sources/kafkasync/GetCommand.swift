import ArgumentParser
import AsyncSupport
import Foundation
import KafkaSyncCore
import Logging
import Synchronization

/// `kafkasync get`: a one-off download (the native engine, or lftp where the native engine cannot serve the server).
struct GetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Download one remote file or directory over SFTP.",
        discussion: """
            The download is staged in --to as .<name>.partial (resumed when it exists) and renamed to <name> when \
            whole. Files of at least 64 MiB are fetched in --segments parallel ranges. Connection settings come \
            from the flags, or from [remotes.NAME] with --config and --remote. --engine auto (the default) uses \
            the native engine, and lftp when the server offers only algorithms the native engine lacks (RSA host \
            keys) or the key is RSA or passphrase-protected.
            """
    )

    @Argument(help: "sftp://[user@]host[:port]/path (with --remote, only the path is used)")
    var url: String

    @Option(help: "Folder to download into (created with its parents when missing).") var to = "."
    @Option(help: "Parallel connections for a large file, parallel files for a directory.") var segments = 4
    @Option(help: "Private key file (ed25519 or ECDSA).") var identity: String?
    @Option(name: .customLong("known-hosts"), help: "known_hosts file (default ~/.ssh/known_hosts).") var knownHosts: String?
    @Option(name: .customLong("host-key-policy"), help: "strict (default) or accept-new.") var hostKeyPolicy = "strict"
    @Option(name: .customLong("password-env"), help: "Environment variable holding the password.") var passwordEnv: String?
    @Option(help: "Use this [remotes.NAME] (or remoteDetails) from --config.") var remote: String?
    @Option(help: "The configuration file (with --remote).") var config = "./config.toml"
    @Option(help: "native, lftp or auto (default: the remote's engine with --remote, else auto).") var engine: String?

    func validate() throws {
        guard HostKeyPolicy(rawValue: hostKeyPolicy) != nil else {
            throw ValidationError("--host-key-policy \(hostKeyPolicy): expected strict or accept-new")
        }
        if let engine, TransferEngineKind(rawValue: engine) == nil {
            throw ValidationError("--engine \(engine): expected native, lftp or auto")
        }
        guard (1...64).contains(segments) else { throw ValidationError("--segments must be 1...64, not \(segments)") }
        guard let components = URLComponents(string: url), components.scheme == "sftp", !components.path.isEmpty else {
            throw ValidationError("\(url) is not an sftp://[user@]host[:port]/path URL")
        }
        if remote == nil && (components.host ?? "").isEmpty { throw ValidationError("\(url) names no host") }
    }

    func run() async throws {
        let components = URLComponents(string: url)!
        var path = components.percentEncodedPath.removingPercentEncoding ?? components.path
        if path.hasPrefix("/~/") { path = String(path.dropFirst(3)) }
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        let name = (path as NSString).lastPathComponent
        let parent = (path as NSString).deletingLastPathComponent
        let folder = URL(fileURLWithPath: to).standardizedFileURL.path
        let remoteConfig = try remoteSettings(components)
        let job: TransferJob
        do {
            job = try TransferJob(name: name, location: parent.isEmpty ? "." : parent)
        } catch {
            printError("kafkasync: \(path) cannot be downloaded: \(error.message)")
            throw ExitCode(1)
        }
        do {
            // Like `lftp mirror -O` and rclone: the target folder is created, with its parents.
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            printError("kafkasync: cannot create \(folder): \(error.localizedDescription)")
            throw ExitCode(1)
        }
        let request = TransferRequest(job: job, remote: remoteConfig,
                                      stagedPath: (folder as NSString).appendingPathComponent(".\(name).partial"),
                                      parallelism: segments, segmentThreshold: 64 << 20)
        let logger = makeLogger("kafkasync.get", level: .notice)
        let native = NativeEngine(poolSize: segments, logger: logger), lftp = LftpEngine(logger: logger)
        let chosen: any TransferEngine = switch engine.flatMap(TransferEngineKind.init(rawValue:)) ?? remoteConfig.engine {
        case .native: native
        case .lftp: lftp
        case .auto: AutoEngine(native: native, lftp: lftp, logger: logger)
        }
        let bar = ProgressBar(name: name, enabled: isatty(STDERR_FILENO) == 1)
        let started = ContinuousClock.now
        let staged: StagedTransfer
        do {
            staged = try await chosen.transfer(request) { bar.update($0) }
        } catch {
            await native.shutdown()
            await lftp.shutdown()
            bar.finish()
            printError("kafkasync: \(error.message) [\(error.code)]")
            throw ExitCode(1)
        }
        await native.shutdown()
        await lftp.shutdown()
        bar.finish()
        let target = (folder as NSString).appendingPathComponent(name)
        guard rename(staged.path, target) == 0 else {
            printError("kafkasync: cannot move \(staged.path) to \(target): \(String(cString: strerror(errno)))")
            throw ExitCode(1)
        }
        let elapsed = ContinuousClock.now - started
        let seconds = elapsed.timeInterval
        let rate = seconds > 0 ? Double(staged.bytesTransferred) / seconds / 1_000_000 : 0
        printNow(String(format: "%@: %lld bytes in %.2f s (%.1f MB/s, peak RSS %@)", name, staged.bytesTransferred, seconds,
                        rate, HumanFormat.bytes(peakResidentBytes())))
    }

    /// The remote from --config/--remote, or from the URL and flags.
    private func remoteSettings(_ components: URLComponents) throws -> RemoteConfig {
        if let remote {
            let loaded = try ConfigOptions(config: config).load()
            guard let remoteConfig = loaded.remote(named: remote) else {
                printError("kafkasync: no remote \(remote) in \(config)")
                throw ExitCode(1)
            }
            return remoteConfig
        }
        var password: Secret?
        if let passwordEnv {
            guard let value = ProcessInfo.processInfo.environment[passwordEnv], !value.isEmpty else {
                printError("kafkasync: --password-env \(passwordEnv): that variable is not set")
                throw ExitCode(1)
            }
            password = Secret(value)
        }
        return RemoteConfig(name: "get", host: components.host!, port: components.port ?? 22,
                            username: components.user ?? ProcessInfo.processInfo.environment["USER"] ?? "root",
                            password: password, privateKey: identity, knownHosts: knownHosts,
                            hostKeyPolicy: HostKeyPolicy(rawValue: hostKeyPolicy) ?? .strict)
    }
}

/// The most memory this process has held (VmHWM of /proc/self/status), or 0 when unknown.
func peakResidentBytes() -> Int64 {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kib = Int64(line.split(whereSeparator: \.isWhitespace).dropFirst().first ?? "") else { return 0 }
    return kib * 1024
}

/// A one-line progress bar on a terminal: bytes of total, percent, rate; redrawn at most 10 times a second.
final class ProgressBar: Sendable {
    private let name: String
    private let enabled: Bool
    private let state = Mutex<(started: ContinuousClock.Instant, drawn: ContinuousClock.Instant?)>((.now, nil))

    init(name: String, enabled: Bool) {
        self.name = name
        self.enabled = enabled
    }

    func update(_ progress: TransferProgress) {
        guard enabled else { return }
        let elapsed: Duration? = state.withLock { state in
            let now = ContinuousClock.now
            if let drawn = state.drawn, now - drawn < .milliseconds(100) { return nil }
            state.drawn = now
            return now - state.started
        }
        guard let elapsed else { return }
        let seconds = max(elapsed.timeInterval, 0.001)
        let rate = HumanFormat.rate(Double(progress.bytes) / seconds)
        var line = "\r\(name): \(HumanFormat.bytes(progress.bytes))"
        if let total = progress.totalBytes, total > 0 {
            let fraction = min(1, Double(progress.bytes) / Double(total))
            let filled = Int(fraction * 30)
            line += " of \(HumanFormat.bytes(total)) [" + String(repeating: "#", count: filled)
                + String(repeating: ".", count: 30 - filled) + String(format: "] %3.0f%%", fraction * 100)
        }
        FileHandle.standardError.write(Data((line + "  \(rate)\u{1B}[K").utf8))
    }

    func finish() {
        if enabled && state.withLock({ $0.drawn }) != nil { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
