import Foundation
import KafkaClient
import Logging
import TransferStore

/// The whole configuration (`config.toml`, DESIGN.md §3), validated, with defaults filled in, environment
/// overrides applied and paths made absolute.
public struct KafkaSyncConfig: Sendable, Equatable {
    /// `kafka_url`: comma-separated `host:port` brokers, or `"embedded"`.
    public var kafkaURL: String
    /// `num_threads`: segments per large file, parallel files per directory (1...256, default 4).
    public var numThreads: Int
    /// `debug_level` (default `info`).
    public var debugLevel: Logger.Level
    /// `[kafka]`.
    public var kafka: KafkaSettings
    /// `[remoteDetails]`: the remote of jobs that name none.
    public var defaultRemote: RemoteConfig
    /// `[remotes.NAME]`.
    public var remotes: [String: RemoteConfig]
    /// `[locations]`.
    public var locations: Locations
    /// `[store]`.
    public var store: StoreSettings
    /// `[consumer]`.
    public var consumer: ConsumerSettings
    /// `[http]`.
    public var http: HTTPSettings
    /// `[uploads.NAME]`.
    public var uploads: [String: UploadConfig] = [:]
    /// The absolute path of the file this was loaded from.
    public var configFile: String
    /// Remarks that did not stop loading (unknown keys, unused tables).
    public var warnings: [ConfigWarning]

    /// The remote a job asks for: `nil` or `"remoteDetails"` is the default remote.
    public func remote(named name: String?) -> RemoteConfig? {
        guard let name, name != RemoteConfig.defaultName else { return defaultRemote }
        return remotes[name]
    }
}

/// `[kafka]`.
public struct KafkaSettings: Sendable, Equatable {
    /// The default jobs topic.
    public static let defaultTopic = "kafkasync-files"
    /// The default consumer group.
    public static let defaultGroupID = "file-consumer-group"

    /// `topic`: the jobs topic; `.retry`, `.dlq` and `.done` topics derive from it.
    public var topic: String = defaultTopic
    /// `group_id`: the consumer group.
    public var groupID: String = defaultGroupID
    /// `[kafka.properties]`: librdkafka properties passed through (SASL, SSL, timeouts).
    public var properties: [String: String] = [:]

}

extension KafkaSettings: CustomStringConvertible, CustomDebugStringConvertible {
    /// The settings with secret property values redacted.
    public var description: String {
        let properties = self.properties.sorted { $0.key < $1.key }
            .map { "\($0.key): \(KafkaProperty.isSecret($0.key) ? "<redacted>" : $0.value)" }
        return "KafkaSettings(topic: \(topic), groupID: \(groupID), properties: [\(properties.joined(separator: ", "))])"
    }

    public var debugDescription: String { description }
}

/// How strictly an SSH host key is checked.
public enum HostKeyPolicy: String, Sendable, Equatable, CaseIterable {
    /// Unknown and changed keys are refused (default).
    case strict
    /// Unknown keys are recorded (trust on first use); changed keys are refused.
    case acceptNew = "accept-new"
}

/// Which transfer engine serves a remote.
public enum TransferEngineKind: String, Sendable, Equatable, CaseIterable {
    /// The native engine where it can serve the remote, else lftp (``AutoEngine``; default).
    case auto
    /// The built-in pooled, pipelined SFTP client.
    case native
    /// Debian's `lftp`, one process per job.
    case lftp
}

/// One SFTP remote: `[remoteDetails]` or `[remotes.NAME]`.
public struct RemoteConfig: Sendable, Equatable {
    /// The name of the default remote.
    public static let defaultName = "remoteDetails"

    /// `remoteDetails` or the `NAME` of `[remotes.NAME]`.
    public var name: String
    /// The host name or address, without the port.
    public var host: String
    /// The port (default 22).
    public var port: Int
    /// The login user.
    public var username: String
    /// The password, from `password`, `password_env` or `password_file`.
    public var password: Secret?
    /// Where the password came from.
    public var passwordSource: SecretSource?
    /// `private_key`: an absolute path to an OpenSSH private key file.
    public var privateKey: String?
    /// The key's passphrase, from `private_key_passphrase_env`.
    public var privateKeyPassphrase: Secret?
    /// Where the passphrase came from.
    public var privateKeyPassphraseSource: SecretSource?
    /// `known_hosts`: an absolute path; `nil` means `~/.ssh/known_hosts`.
    public var knownHosts: String?
    /// `host_key_fingerprint`: a pinned `SHA256:…` fingerprint.
    public var hostKeyFingerprint: String?
    /// `host_key_policy`.
    public var hostKeyPolicy: HostKeyPolicy
    /// `engine`.
    public var engine: TransferEngineKind
    /// `stall_timeout`: how long the server may stay silent while a request waits for it (a download with no
    /// progress) before the transfer fails as transient `timed_out` (default 60 s).
    public var stallTimeout: Duration
    /// `upload`: the `[uploads.NAME]` its jobs go to unless they name one.
    public var upload: String?
    /// `identity_agent`: the ssh-agent socket that signs for the user (`"SSH_AUTH_SOCK"` takes the variable's).
    public var identityAgent: String?
    /// `ssh_config_host`: a `Host` of the OpenSSH client configuration to connect as (its HostName, User, Port,
    /// ProxyJump, certificates).
    public var sshConfigHost: String?
    /// `ssh_config_file`: the OpenSSH client configuration holding ``sshConfigHost`` (default `~/.ssh/config`).
    public var sshConfigFile: String?

    /// Whether only the OpenSSH client can serve the remote: an ssh-agent signs (swift-nio-ssh takes only keys it
    /// holds), or an ssh_config `Host` block decides how to connect. `engine = "auto"` uses lftp for it at once.
    public var needsOpenSSH: Bool { identityAgent != nil || sshConfigHost != nil }

    /// A remote built in code (`kafkasync get` builds one from its flags).
    public init(name: String, host: String, port: Int = 22, username: String, password: Secret? = nil,
                passwordSource: SecretSource? = nil, privateKey: String? = nil, privateKeyPassphrase: Secret? = nil,
                privateKeyPassphraseSource: SecretSource? = nil, knownHosts: String? = nil,
                hostKeyFingerprint: String? = nil, hostKeyPolicy: HostKeyPolicy = .strict,
                engine: TransferEngineKind = .auto, stallTimeout: Duration = .seconds(60), upload: String? = nil,
                identityAgent: String? = nil, sshConfigHost: String? = nil, sshConfigFile: String? = nil) {
        self.name = name
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.passwordSource = passwordSource
        self.privateKey = privateKey
        self.privateKeyPassphrase = privateKeyPassphrase
        self.privateKeyPassphraseSource = privateKeyPassphraseSource
        self.knownHosts = knownHosts
        self.hostKeyFingerprint = hostKeyFingerprint
        self.hostKeyPolicy = hostKeyPolicy
        self.engine = engine
        self.stallTimeout = stallTimeout
        self.upload = upload
        self.identityAgent = identityAgent
        self.sshConfigHost = sshConfigHost
        self.sshConfigFile = sshConfigFile
    }
}

/// `[locations]`: absolute folder paths.
public struct Locations: Sendable, Equatable {
    /// Staging: partial downloads live here.
    public var incompletes: String
    /// Only whole, verified files appear here.
    public var completes: String
    /// Files that failed their checksum are kept here for inspection.
    public var quarantine: String
}

/// `[consumer]`: how the daemon works through jobs.
public struct ConsumerSettings: Sendable, Equatable {
    /// What to do when a different file already has the final name in `completes`.
    public enum ConflictPolicy: String, Sendable, Equatable, CaseIterable {
        /// Keep both: the new file gets a numbered suffix (`name.1.ext`). Default.
        case rename
        /// Replace the existing file.
        case overwrite
        /// Dead-letter the job.
        case fail
    }

    /// How log lines are written.
    public enum LogFormat: String, Sendable, Equatable, CaseIterable {
        /// `2026-11-25T01:02:03Z info kafkasync.consumer: message key=value`. Default.
        case text
        /// One JSON object per line.
        case json
    }

    /// `concurrency`: jobs processed at once (1...256, default 4).
    public var concurrency = 4
    /// `max_attempts`: attempts of a job before it is dead-lettered (1...100, default 5).
    public var maxAttempts = 5
    /// `backoff_initial`: the delay before the second attempt (default 5s); it doubles per attempt.
    public var backoffInitial: Duration = .seconds(5)
    /// `backoff_max`: the longest delay between attempts (default 5m).
    public var backoffMax: Duration = .seconds(300)
    /// `shutdown_grace`: how long in-flight jobs may finish after SIGTERM (default 30s).
    public var shutdownGrace: Duration = .seconds(30)
    /// `on_conflict`.
    public var onConflict: ConflictPolicy = .rename
    /// `log_file`: an absolute path (default `consumer.log` beside the config file); `nil` when set to `""`.
    public var logFile: String?
    /// `log_format`.
    public var logFormat: LogFormat = .text
    /// `segment_threshold`: files at least this large are downloaded in `num_threads` segments (default 64 MiB).
    public var segmentThreshold: Int64 = 64 << 20
    /// `max_entries`: the most files and folders one directory job may list (1...100,000,000, default 1,000,000);
    /// a larger tree fails the job (`too_many_entries`) instead of filling memory.
    public var maxEntries = 1_000_000
}

/// `[store]`: where the transfer history lives.
public struct StoreSettings: Sendable, Equatable {
    /// The default: a SQLite file beside the config file.
    public static let defaultURL = "sqlite://./kafkasync.db"

    /// `url` as written.
    public var url: String
    /// The resolved location (absolute SQLite path, or PostgreSQL server with its password).
    public var location: StoreLocation
    /// Where the PostgreSQL password came from.
    public var passwordSource: SecretSource?
}

/// `[http]`: the consumer's HTTP server (health, the JSON API).
public struct HTTPSettings: Sendable, Equatable {
    /// The default `listen`: loopback only.
    public static let defaultListen = "127.0.0.1:8080"

    /// `listen`: where the server listens; `nil` when set to `""` (no server).
    public var listen: ListenAddress? = try? ListenAddress(defaultListen)
    /// The bearer token the API requires, from `token_env` or `token_file`; `nil` when neither is set.
    public var token: Secret?
    /// Where the token came from.
    public var tokenSource: SecretSource?
}

/// A `host:port` to listen on: an IPv4 address, `[IPv6]` or a host name, and a port 0-65535 (0: any free port).
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    /// The expected form, for errors.
    static let expected = """
        "HOST:PORT" with a port 0-65535, like "127.0.0.1:8080" or "[::1]:8080", or "" for no HTTP server
        """

    /// The address or host name, without brackets.
    public var host: String
    /// The port; 0 lets the system choose.
    public var port: Int

    /// An address built in code (tests).
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port` or `[v6]:port`.
    /// - Throws: ``ListenAddressError`` when the text is not of that form.
    public init(_ text: String) throws(ListenAddressError) {
        guard let (host, port) = splitHostPort(text), let port, (0...65535).contains(port), !host.isEmpty,
              host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || ".-:".contains($0)) }),
              !host.contains(":") || text.hasPrefix("[") else {
            throw ListenAddressError()
        }
        self.host = host
        self.port = port
    }

    /// Whether only this machine can connect: `localhost`, 127.0.0.0/8 or `::1`.
    public var isLoopback: Bool {
        if host == "localhost" || host == "::1" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    /// `host:port`, with brackets around an IPv6 address.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// The text given for a ``ListenAddress`` is not `host:port`.
public struct ListenAddressError: Error, Sendable {}
