import Foundation
import KafkaClient
import Logging
import TOMLKit
import TransferStore

extension KafkaSyncConfig {
    /// Loads and validates a configuration file.
    /// - Parameters:
    ///   - path: the file; relative paths inside it are resolved against its folder.
    ///   - environment: for `KAFKASYNC_*` overrides and `*_env` secrets.
    /// - Throws: ``ConfigError`` with every problem found.
    public static func load(path: String,
                            environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigError)
        -> KafkaSyncConfig
    {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        guard let data = FileManager.default.contents(atPath: absolute) else {
            let exists = FileManager.default.fileExists(atPath: absolute)
            throw ConfigError(issues: [ConfigIssue(
                exists ? .unreadableFile : .fileNotFound, key: "--config", value: "\"\(absolute)\"",
                expected: exists ? "a readable file" : "an existing file (copy config.example.toml to start)")])
        }
        return try parse(toml: String(decoding: data, as: UTF8.self), configFile: absolute, environment: environment)
    }

    /// Validates configuration text as if it had been read from `configFile`.
    /// - Throws: ``ConfigError`` with every problem found.
    public static func parse(toml: String, configFile: String,
                             environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigError)
        -> KafkaSyncConfig
    {
        let root: [String: TOMLNode]
        if let (line, expected) = TOMLPrecheck.problem(toml) {
            throw ConfigError(issues: [ConfigIssue(
                .syntax, key: "\((configFile as NSString).lastPathComponent) line \(line)", value: nil, expected: expected)])
        }
        do {
            root = TOMLNode.table(try TOMLTable(string: toml))
        } catch let error as TOMLParseError {
            throw ConfigError(issues: [ConfigIssue(
                .syntax, key: "\((configFile as NSString).lastPathComponent) line \(error.source.begin.line), column \(error.source.begin.column)",
                value: nil, expected: "valid TOML (\(error.description))")])
        } catch {
            throw ConfigError(issues: [ConfigIssue(.syntax, key: configFile, value: nil, expected: "valid TOML")])
        }
        var loader = ConfigLoader(configDirectory: (configFile as NSString).deletingLastPathComponent,
                                  environment: environment)
        let config = loader.config(root, configFile: configFile)
        guard loader.issues.isEmpty, let config else { throw ConfigError(issues: loader.issues) }
        return config
    }
}

/// A TOML value as plain Swift data.
enum TOMLNode: Sendable, Equatable {
    case string(String), integer(Int), double(Double), bool(Bool)
    case table([String: TOMLNode]), array([TOMLNode]), other(String)

    static func table(_ table: TOMLTable) -> [String: TOMLNode] {
        var result: [String: TOMLNode] = [:]
        for key in table.keys {
            if let value = table[key] { result[key] = TOMLNode(value) }
        }
        return result
    }

    init(_ value: TOMLValueConvertible) {
        switch value.type {
        case .string: self = .string(value.string ?? "")
        case .int: self = .integer(value.int ?? 0)
        case .double: self = .double(value.double ?? 0)
        case .bool: self = .bool(value.bool ?? false)
        case .table: self = .table(value.table.map(TOMLNode.table) ?? [:])
        case .array: self = .array(value.array.map { $0.map { TOMLNode($0) } } ?? [])
        default: self = .other("\(value.type)")
        }
    }

    /// The value as it would be written in TOML.
    var rendered: String {
        switch self {
        case .string(let value): "\"\(value)\""
        case .integer(let value): "\(value)"
        case .double(let value): "\(value)"
        case .bool(let value): "\(value)"
        case .table: "{…}"
        case .array(let values): "[\(values.map(\.rendered).joined(separator: ", "))]"
        case .other(let type): "<\(type)>"
        }
    }

    var typeName: String {
        switch self {
        case .string: "a string"
        case .integer: "an integer"
        case .double: "a number"
        case .bool: "a boolean"
        case .table: "a table"
        case .array: "an array"
        case .other(let type): "a \(type)"
        }
    }
}

/// Walks the TOML tree, collecting issues and warnings instead of stopping at the first.
struct ConfigLoader {
    let configDirectory: String
    let environment: [String: String]
    var issues: [ConfigIssue] = []
    var warnings: [ConfigWarning] = []

    static let topLevelKeys = ["kafka_url", "num_threads", "debug_level", "kafka", "remoteDetails", "remotes", "locations",
                                "store", "consumer", "http", "uploads"]
    static let laterTables = ["watch"]
    static let integerKeys: Set<String> = ["num_threads", "consumer.concurrency", "consumer.max_attempts",
                                           "consumer.max_entries"]
    static let remoteKeys = ["host", "port", "username", "password", "password_env", "password_file", "private_key",
                             "private_key_passphrase_env", "known_hosts", "host_key_fingerprint", "host_key_policy",
                             "engine", "stall_timeout", "upload", "identity_agent", "ssh_config_host",
                             "ssh_config_file"]
    static let logLevels: [String: Logger.Level] = [
        "trace": .trace, "debug": .debug, "info": .info, "notice": .notice, "warning": .warning, "warn": .warning,
        "error": .error, "critical": .critical,
    ]

    mutating func config(_ root: [String: TOMLNode], configFile: String) -> KafkaSyncConfig? {
        warnUnknown(root, known: Self.topLevelKeys, table: nil)
        let kafkaURL = kafkaURLValue(override("kafka_url", root["kafka_url"]))
        let numThreads = integer(override("num_threads", root["num_threads"]), in: 1...256, default: 4)
        let debugLevel = logLevel(override("debug_level", root["debug_level"]))
        let kafka = kafkaSettings(root["kafka"])
        let defaultRemote: RemoteConfig?
        switch root[RemoteConfig.defaultName] {
        case .table(let table)?: defaultRemote = remote(table, name: RemoteConfig.defaultName, key: RemoteConfig.defaultName)
        case let other?:
            wrongType(RemoteConfig.defaultName, other, expected: "a table [remoteDetails]")
            defaultRemote = nil
        case nil:
            issues.append(ConfigIssue(.missingKey, key: "[remoteDetails]", value: nil,
                                      expected: "a table with host and username of the default SFTP remote"))
            defaultRemote = nil
        }
        let remotes = namedRemotes(root["remotes"])
        let locations = locationsValue(root["locations"])
        let store = storeSettings(root["store"])
        let consumer = consumerSettings(root["consumer"])
        let http = httpSettings(root["http"])
        let uploads = namedUploads(root["uploads"])
        for remote in [defaultRemote].compactMap({ $0 }) + remotes.values.sorted(by: { $0.name < $1.name }) {
            if let name = remote.upload, uploads[name] == nil {
                let key = remote.name == RemoteConfig.defaultName ? remote.name : "remotes.\(remote.name)"
                issues.append(ConfigIssue(.invalidValue, key: key + ".upload", value: "\"\(name)\"",
                                          expected: "the name of an [uploads.NAME] table (" +
                                              (uploads.isEmpty ? "there are none" : uploads.keys.sorted().joined(separator: ", ")) + ")"))
            }
        }
        guard let kafkaURL, let numThreads, let debugLevel, let defaultRemote, let locations, let store,
              let consumer, let http else {
            return nil
        }
        return KafkaSyncConfig(kafkaURL: kafkaURL, numThreads: numThreads, debugLevel: debugLevel, kafka: kafka,
                               defaultRemote: defaultRemote, remotes: remotes, locations: locations, store: store,
                               consumer: consumer, http: http, uploads: uploads, configFile: configFile,
                               warnings: warnings)
    }

    // MARK: Top level

    /// A value and the name to blame for it: `KAFKASYNC_<KEY>` when set in the environment, else the key.
    typealias Sourced = (key: String, value: TOMLNode?)

    func override(_ key: String, _ value: TOMLNode?, table: String? = nil) -> Sourced {
        let variable = "KAFKASYNC_" + ([table, key].compactMap { $0 }.joined(separator: "_")).uppercased()
        let dotted = [table, key].compactMap { $0 }.joined(separator: ".")
        guard let text = environment[variable] else { return (dotted, value) }
        // Environment values are text; integer keys take them as integers when they parse.
        if Self.integerKeys.contains(dotted), let number = Int(text) { return (variable, .integer(number)) }
        return (variable, .string(text))
    }

    mutating func kafkaURLValue(_ sourced: Sourced) -> String? {
        let expected = "comma-separated host:port brokers, or \"embedded\""
        guard let text = string(sourced, expected: expected) else {
            if sourced.value == nil { issues.append(ConfigIssue(.missingKey, key: sourced.key, value: nil, expected: expected)) }
            return nil
        }
        if text == "embedded" { return text }
        let brokers = text.split(separator: ",", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        let valid = brokers.allSatisfy { broker in
            guard let (host, port) = splitHostPort(broker), let port else { return false }
            return !host.isEmpty && (1...65535).contains(port)
        }
        guard valid else {
            issues.append(ConfigIssue(.invalidValue, key: sourced.key, value: "\"\(text)\"", expected: expected))
            return nil
        }
        return brokers.joined(separator: ",")
    }

    mutating func logLevel(_ sourced: Sourced) -> Logger.Level? {
        let expected = "one of trace, debug, info, notice, warning, error, critical"
        guard sourced.value != nil else { return .info }
        guard let text = string(sourced, expected: expected) else { return nil }
        guard let level = Self.logLevels[text.lowercased()] else {
            issues.append(ConfigIssue(.invalidValue, key: sourced.key, value: "\"\(text)\"", expected: expected))
            return nil
        }
        return level
    }

    mutating func kafkaSettings(_ node: TOMLNode?) -> KafkaSettings {
        var settings = KafkaSettings()
        let table = self.table("kafka", node) ?? [:]
        warnUnknown(table, known: ["topic", "group_id", "properties"], table: "kafka")
        let topicExpected = "a Kafka topic name: 1-249 characters of A-Z a-z 0-9 . _ -"
        let topicSource = override("topic", table["topic"], table: "kafka")
        if topicSource.value != nil, let topic = string(topicSource, expected: topicExpected) {
            if (1...249).contains(topic.count) && topic.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }) {
                settings.topic = topic
            } else {
                issues.append(ConfigIssue(.invalidValue, key: topicSource.key, value: "\"\(topic)\"", expected: topicExpected))
            }
        }
        let groupSource = override("group_id", table["group_id"], table: "kafka")
        if groupSource.value != nil, let group = nonEmptyString(groupSource, expected: "a non-empty consumer group id") {
            settings.groupID = group
        }
        switch table["properties"] {
        case .table(let properties)?:
            for (key, value) in properties.sorted(by: { $0.key < $1.key }) {
                switch value {
                case .string(let text): settings.properties[key] = text
                case .integer, .bool, .double: settings.properties[key] = value.rendered
                default:
                    wrongType("kafka.properties.\(key)", value, expected: "a string, number or boolean",
                              secret: KafkaProperty.isSecret(key))
                }
            }
        case let other?: wrongType("kafka.properties", other, expected: "a table [kafka.properties]")
        case nil: break
        }
        return settings
    }

    mutating func namedRemotes(_ node: TOMLNode?) -> [String: RemoteConfig] {
        guard let node else { return [:] }
        guard case .table(let tables) = node else {
            wrongType("remotes", node, expected: "tables [remotes.NAME]")
            return [:]
        }
        var remotes: [String: RemoteConfig] = [:]
        for (name, value) in tables.sorted(by: { $0.key < $1.key }) {
            let key = "remotes.\(name)"
            guard Self.isPlainName(name) else {
                issues.append(ConfigIssue(.invalidValue, key: "[remotes.\(name)]", value: "\"\(name)\"",
                                          expected: "a remote name of 1-64 characters A-Z a-z 0-9 _ . -"))
                continue
            }
            guard case .table(let table) = value else {
                wrongType(key, value, expected: "a table [\(key)]")
                continue
            }
            if let remote = remote(table, name: name, key: key) { remotes[name] = remote }
        }
        return remotes
    }

    mutating func locationsValue(_ node: TOMLNode?) -> Locations? {
        let table = self.table("locations", node) ?? [:]
        let defaults = [("incompletes", "./incompletes/"), ("completes", "./completes/"), ("quarantine", "./quarantine/")]
        warnUnknown(table, known: defaults.map(\.0), table: "locations")
        var paths: [String] = []
        for (key, fallback) in defaults {
            let sourced: Sourced = ("locations.\(key)", table[key] ?? .string(fallback))
            guard let path = nonEmptyString(sourced, expected: "a folder path") else { continue }
            let absolute = absolutePath(path)
            if let index = paths.firstIndex(of: absolute) {
                issues.append(ConfigIssue(.conflict, key: "locations.\(key)", value: "\"\(absolute)\"",
                                          expected: "a different folder than locations.\(defaults[index].0)"))
                return nil
            }
            paths.append(absolute)
        }
        guard paths.count == 3 else { return nil }
        return Locations(incompletes: paths[0], completes: paths[1], quarantine: paths[2])
    }

    mutating func storeSettings(_ node: TOMLNode?) -> StoreSettings? {
        guard let table = self.table("store", node) else { return nil }
        warnUnknown(table, known: ["url", "password", "password_env", "password_file"], table: "store")
        let expected = "sqlite://PATH or postgres://USER@HOST[:PORT]/DATABASE"
        let sourced: Sourced = ("store.url", table["url"] ?? .string(StoreSettings.defaultURL))
        guard let url = nonEmptyString(sourced, expected: expected) else { return nil }
        let (password, passwordSource) = password(table, key: "store")
        do {
            let location = try StoreLocation(url: url, relativeTo: configDirectory, password: password?.revealed)
            return StoreSettings(url: url, location: location, passwordSource: passwordSource)
        } catch {
            issues.append(ConfigIssue(.invalidValue, key: "store.url", value: "\"\(StoreLocation.redacted(url))\"",
                                      expected: error.message))
            return nil
        }
    }

    mutating func consumerSettings(_ node: TOMLNode?) -> ConsumerSettings? {
        var settings = ConsumerSettings()
        guard let table = self.table("consumer", node) else { return nil }
        let issuesBefore = issues.count
        warnUnknown(table, known: ["concurrency", "max_attempts", "backoff_initial", "backoff_max", "shutdown_grace",
                                   "on_conflict", "log_file", "log_format", "segment_threshold", "max_entries"],
                    table: "consumer")
        func sourced(_ key: String) -> Sourced { override(key, table[key], table: "consumer") }
        settings.concurrency = integer(sourced("concurrency"), in: 1...256, default: settings.concurrency) ?? 0
        settings.maxAttempts = integer(sourced("max_attempts"), in: 1...100, default: settings.maxAttempts) ?? 0
        settings.maxEntries = integer(sourced("max_entries"), in: 1...100_000_000, default: settings.maxEntries) ?? 0
        settings.backoffInitial = duration(sourced("backoff_initial"), default: settings.backoffInitial) ?? .zero
        settings.backoffMax = duration(sourced("backoff_max"), default: settings.backoffMax) ?? .zero
        settings.shutdownGrace = duration(sourced("shutdown_grace"), default: settings.shutdownGrace) ?? .zero
        settings.onConflict = choice(sourced("on_conflict"), default: settings.onConflict) ?? .rename
        settings.logFormat = choice(sourced("log_format"), default: settings.logFormat) ?? .text
        let logFile = sourced("log_file")
        if logFile.value == nil {
            settings.logFile = absolutePath("consumer.log")
        } else if let path = string(logFile, expected: "a file path, or \"\" for no log file") {
            settings.logFile = path.isEmpty ? nil : absolutePath(path)
        }
        let threshold = sourced("segment_threshold")
        if threshold.value != nil {
            let expected = "a size like \"64MiB\", \"1GiB\" or a number of bytes (at least 1 MiB)"
            let size: Int64? = switch threshold.value {
            case .integer(let number)?: Int64(number)
            case .string(let text)?: Self.byteSize(text)
            default: nil
            }
            if let size, size >= 1 << 20 {
                settings.segmentThreshold = size
            } else {
                issues.append(ConfigIssue(.invalidValue, key: threshold.key, value: threshold.value?.rendered,
                                          expected: expected))
            }
        }
        if issues.count == issuesBefore && settings.backoffMax < settings.backoffInitial {
            issues.append(ConfigIssue(.conflict, key: "consumer.backoff_max", value: "\"\(settings.backoffMax)\"",
                                      expected: "at least consumer.backoff_initial"))
        }
        return issues.count == issuesBefore ? settings : nil
    }

    /// `[http]`: `listen` (`KAFKASYNC_HTTP_LISTEN` overrides it) and the token, from one of `token_env` and
    /// `token_file`. Anything but a loopback address needs the token: the API would be open to the network.
    mutating func httpSettings(_ node: TOMLNode?) -> HTTPSettings? {
        var settings = HTTPSettings()
        guard let table = self.table("http", node) else { return nil }
        let issuesBefore = issues.count
        warnUnknown(table, known: ["listen", "token_env", "token_file"], table: "http")
        let listen = override("listen", table["listen"], table: "http")
        if listen.value != nil, let text = string(listen, expected: ListenAddress.expected) {
            do {
                settings.listen = text.isEmpty ? nil : try ListenAddress(text)
            } catch {
                issues.append(ConfigIssue(.invalidValue, key: listen.key, value: "\"\(text)\"", expected: ListenAddress.expected))
            }
        }
        let sources = ["token_env", "token_file"].filter { table[$0] != nil }
        if sources.count > 1 {
            issues.append(ConfigIssue(.conflict, key: "http.token_file", value: "<redacted>",
                                      expected: "only one of token_env, token_file"))
        } else if let source = sources.first, let (token, origin) = secret(table, key: "http", name: source, what: "token") {
            settings.token = token
            settings.tokenSource = origin
        }
        if issues.count == issuesBefore, let address = settings.listen, !address.isLoopback, settings.token == nil {
            issues.append(ConfigIssue(.invalidValue, key: listen.key, value: "\"\(address)\"", expected: """
                a loopback address (127.0.0.1, ::1 or localhost), unless http.token_env or http.token_file sets the \
                token the API then requires
                """))
        }
        return issues.count == issuesBefore ? settings : nil
    }

    /// A duration: `"500ms"`, `"30s"`, `"5m"`, `"1h"`, or a number of seconds.
    mutating func duration(_ sourced: Sourced, default fallback: Duration) -> Duration? {
        let expected = "a duration like \"500ms\", \"30s\", \"5m\" or \"1h\", or a number of seconds"
        switch sourced.value {
        case nil: return fallback
        case .integer(let seconds)? where seconds >= 0: return .seconds(seconds)
        case .string(let text)?:
            if let duration = Self.parseDuration(text) { return duration }
            issues.append(ConfigIssue(.invalidValue, key: sourced.key, value: "\"\(text)\"", expected: expected))
            return nil
        case let other?:
            if case .integer = other {
                issues.append(ConfigIssue(.invalidValue, key: sourced.key, value: other.rendered, expected: expected))
            } else {
                wrongType(sourced.key, other, expected: expected)
            }
            return nil
        }
    }

    /// A duration of at least a second (a time-out: zero would fail everything at once).
    mutating func positiveDuration(_ sourced: Sourced, default fallback: Duration) -> Duration? {
        guard let duration = duration(sourced, default: fallback) else { return nil }
        guard duration < .seconds(1) else { return duration }
        issues.append(ConfigIssue(.invalidValue, key: sourced.key, value: sourced.value?.rendered,
                                  expected: "a duration of at least 1s, like \"30s\" or \"5m\""))
        return nil
    }

    static func parseDuration(_ text: String) -> Duration? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        guard let (suffix, scale) = units.first(where: { trimmed.hasSuffix($0.0) }),
              let number = Double(trimmed.dropLast(suffix.count)), number >= 0, number.isFinite,
              number * scale <= 7 * 86_400 else { return nil }
        return .milliseconds(Int64((number * scale * 1000).rounded()))
    }

    static func byteSize(_ text: String) -> Int64? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Double)] = [("KiB", 1024), ("MiB", 1_048_576), ("GiB", 1_073_741_824), ("KB", 1000), ("MB", 1e6),
                                          ("GB", 1e9), ("B", 1)]
        guard let (suffix, scale) = units.first(where: { trimmed.hasSuffix($0.0) }),
              let number = Double(trimmed.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), number >= 0,
              number * scale < 1e18 else { return Int64(trimmed) }
        return Int64(number * scale)
    }

    // MARK: Remotes

    mutating func remote(_ table: [String: TOMLNode], name: String, key: String) -> RemoteConfig? {
        warnUnknown(table, known: Self.remoteKeys, table: key)
        let issuesBefore = issues.count
        var host = ""
        var port = 22
        var portFromHost: Int?
        let configHost = nonEmptyString((key + ".ssh_config_host", table["ssh_config_host"]),
                                        expected: "a Host of the OpenSSH client configuration (~/.ssh/config)")
        if let configHost, table["host"] == nil { host = configHost }
        if let text = nonEmptyString((key + ".host", table["host"]), expected: "a host name or host:port",
                                     required: configHost == nil) {
            if let (parsedHost, parsedPort) = splitHostPort(text), !parsedHost.isEmpty,
               parsedPort.map({ (1...65535).contains($0) }) ?? true {
                host = parsedHost
                portFromHost = parsedPort
            } else {
                issues.append(ConfigIssue(.invalidValue, key: key + ".host", value: "\"\(text)\"",
                                          expected: "a host name or host:port with a port 1-65535"))
            }
        }
        let explicitPort = table["port"] == nil ? nil : integer((key + ".port", table["port"]), in: 1...65535, default: 22)
        if let explicitPort, let portFromHost, explicitPort != portFromHost {
            issues.append(ConfigIssue(.conflict, key: key + ".port", value: "\(explicitPort)",
                                      expected: "the same port as in \(key).host (\(portFromHost)), or only one of them"))
        }
        port = explicitPort ?? portFromHost ?? 22
        let username = nonEmptyString((key + ".username", table["username"]), expected: "the SFTP login user",
                                      required: configHost == nil) ?? ""

        let (password, passwordSource) = password(table, key: key)
        var passphrase: Secret?
        var passphraseSource: SecretSource?
        if table["private_key_passphrase_env"] != nil {
            (passphrase, passphraseSource) = secret(table, key: key, name: "private_key_passphrase_env") ?? (nil, nil)
        }
        let privateKey = readableFile(table, key: key, name: "private_key", what: "an OpenSSH private key file")
        let policy = choice((key + ".host_key_policy", table["host_key_policy"]), default: HostKeyPolicy.strict)
        var knownHosts: String?
        if let path = nonEmptyString((key + ".known_hosts", table["known_hosts"]), expected: "a known_hosts file path") {
            knownHosts = absolutePath(path)
            if policy == .strict, !FileManager.default.isReadableFile(atPath: knownHosts!) {
                issues.append(ConfigIssue(.unreadableFile, key: key + ".known_hosts", value: "\"\(path)\"",
                                          expected: "a readable known_hosts file (or host_key_policy = \"accept-new\" to create it)"))
            }
        }
        var fingerprint: String?
        if let text = nonEmptyString((key + ".host_key_fingerprint", table["host_key_fingerprint"]),
                                     expected: "SHA256:<43 base64 characters> as ssh-keygen -lf prints it") {
            let body = text.dropFirst("SHA256:".count)
            if text.hasPrefix("SHA256:"), body.count == 43,
               body.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "+" || $0 == "/") }) {
                fingerprint = text
            } else {
                issues.append(ConfigIssue(.invalidValue, key: key + ".host_key_fingerprint", value: "\"\(text)\"",
                                          expected: "SHA256:<43 base64 characters> as ssh-keygen -lf prints it"))
            }
        }
        let engine = choice((key + ".engine", table["engine"]), default: TransferEngineKind.auto)
        let stallTimeout = positiveDuration((key + ".stall_timeout", table["stall_timeout"]), default: .seconds(60))
        let upload = nonEmptyString((key + ".upload", table["upload"]), expected: "the name of an [uploads.NAME] table")
        var agent = nonEmptyString((key + ".identity_agent", table["identity_agent"]),
                                   expected: "the path of an ssh-agent socket, or \"SSH_AUTH_SOCK\"")
        if agent == "SSH_AUTH_SOCK" {
            agent = environment["SSH_AUTH_SOCK"]
            if agent == nil {
                issues.append(ConfigIssue(.invalidValue, key: key + ".identity_agent", value: "\"SSH_AUTH_SOCK\"",
                                          expected: "a running ssh-agent (SSH_AUTH_SOCK is not set), or the path of its socket"))
            }
        } else if let path = agent {
            agent = absolutePath(path)
        }
        let configFile = table["ssh_config_file"] == nil ? nil
            : readableFile(table, key: key, name: "ssh_config_file", what: "an OpenSSH client configuration file")
        if let engine, engine == .native, agent != nil || configHost != nil {
            issues.append(ConfigIssue(.conflict, key: key + ".engine", value: "\"native\"", expected: """
                "auto" or "lftp": identity_agent and ssh_config_host need the OpenSSH client, which the lftp engine runs
                """))
        }
        guard issues.count == issuesBefore, let policy, let engine, let stallTimeout else { return nil }
        if password == nil && privateKey == nil && agent == nil && configHost == nil {
            warnings.append(ConfigWarning(key: key, message: "no password and no private_key: authentication will fail unless the server allows none"))
        }
        return RemoteConfig(name: name, host: host, port: port, username: username, password: password,
                            passwordSource: passwordSource, privateKey: privateKey, privateKeyPassphrase: passphrase,
                            privateKeyPassphraseSource: passphraseSource, knownHosts: knownHosts,
                            hostKeyFingerprint: fingerprint, hostKeyPolicy: policy, engine: engine,
                            stallTimeout: stallTimeout, upload: upload, identityAgent: agent,
                            sshConfigHost: configHost, sshConfigFile: configFile)
    }

    /// The password from exactly one of `password`, `password_env`, `password_file`, if any is given.
    mutating func password(_ table: [String: TOMLNode], key: String) -> (Secret?, SecretSource?) {
        let sources = ["password", "password_env", "password_file"].filter { table[$0] != nil }
        if sources.count > 1 {
            issues.append(ConfigIssue(.conflict, key: key + "." + sources[1], value: "<redacted>",
                                      expected: "only one of password, password_env, password_file"))
            return (nil, nil)
        }
        guard let source = sources.first, let (secret, origin) = secret(table, key: key, name: source) else {
            return (nil, nil)
        }
        return (secret, origin)
    }

    /// Resolves `password`, `*_env` or `*_file` into a secret (`what`, for errors). Never puts the secret into an issue.
    mutating func secret(_ table: [String: TOMLNode], key: String, name: String,
                         what: String = "password") -> (Secret, SecretSource)? {
        let dotted = key + "." + name
        guard case .string(let text)? = table[name] else {
            wrongType(dotted, table[name]!, expected: "a string", secret: name == "password")
            return nil
        }
        if name == "password" {
            guard !text.isEmpty else {
                issues.append(ConfigIssue(.invalidValue, key: dotted, value: "\"\"", expected: "a non-empty password"))
                return nil
            }
            return (Secret(text), .inline(key: name))
        }
        if name.hasSuffix("_env") {
            guard let value = environment[text], !value.isEmpty else {
                issues.append(ConfigIssue(.invalidValue, key: dotted, value: "\"\(text)\"",
                                          expected: "the name of a set, non-empty environment variable (\(text) is not set)"))
                return nil
            }
            return (Secret(value), .environment(key: name, variable: text))
        }
        guard let path = readableFile(table, key: key, name: name, what: "a file holding the \(what)") else { return nil }
        let contents = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        let value = contents.hasSuffix("\r\n") ? String(contents.dropLast(2))
            : contents.hasSuffix("\n") ? String(contents.dropLast()) : contents
        guard !value.isEmpty else {
            issues.append(ConfigIssue(.invalidValue, key: dotted, value: "\"\(text)\"", expected: "a file holding a non-empty \(what)"))
            return nil
        }
        return (Secret(value), .file(key: name, path: path))
    }

    /// A path key that must name a readable file; returns its absolute path.
    mutating func readableFile(_ table: [String: TOMLNode], key: String, name: String, what: String) -> String? {
        guard let text = nonEmptyString((key + "." + name, table[name]), expected: what) else { return nil }
        let path = absolutePath(text)
        guard FileManager.default.isReadableFile(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "permission denied" : "no such file"
            issues.append(ConfigIssue(.unreadableFile, key: key + "." + name, value: "\"\(text)\"",
                                      expected: "\(what) that can be read (\(reason): \(path))"))
            return nil
        }
        return path
    }

    // MARK: Typed values

    /// The keys of the table `[name]`: empty when it is absent; `nil` (and an issue) when `name` is not a table.
    mutating func table(_ name: String, _ node: TOMLNode?) -> [String: TOMLNode]? {
        switch node {
        case .table(let values)?: return values
        case let other?:
            wrongType(name, other, expected: "a table [\(name)]")
            return nil
        case nil: return [:]
        }
    }

    mutating func string(_ sourced: Sourced, expected: String) -> String? {
        switch sourced.value {
        case .string(let text)?: return text
        case let other?:
            wrongType(sourced.key, other, expected: expected)
            return nil
        case nil: return nil
        }
    }

    mutating func nonEmptyString(_ sourced: Sourced, expected: String, required: Bool = false) -> String? {
        guard sourced.value != nil else {
            if required { issues.append(ConfigIssue(.missingKey, key: sourced.key, value: nil, expected: expected)) }
            return nil
        }
        guard let text = string(sourced, expected: expected) else { return nil }
        guard !text.trimmingCharacters(in: .whitespaces).isEmpty else {
            issues.append(ConfigIssue(.invalidValue, key: sourced.key, value: "\"\(text)\"", expected: expected))
            return nil
        }
        return text
    }

    mutating func integer(_ sourced: Sourced, in range: ClosedRange<Int>, default fallback: Int) -> Int? {
        let expected = "an integer \(range.lowerBound)...\(range.upperBound)"
        switch sourced.value {
        case nil: return fallback
        case .integer(let number)?:
            guard range.contains(number) else {
                issues.append(ConfigIssue(.invalidValue, key: sourced.key, value: "\(number)", expected: expected))
                return nil
            }
            return number
        case let other?:
            wrongType(sourced.key, other, expected: expected)
            return nil
        }
    }

    mutating func choice<T: RawRepresentable & CaseIterable>(_ sourced: Sourced, default fallback: T) -> T?
        where T.RawValue == String
    {
        let expected = "one of " + T.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
        guard sourced.value != nil else { return fallback }
        guard let text = string(sourced, expected: expected) else { return nil }
        guard let value = T(rawValue: text) else {
            issues.append(ConfigIssue(.invalidValue, key: sourced.key, value: "\"\(text)\"", expected: expected))
            return nil
        }
        return value
    }

    mutating func wrongType(_ key: String, _ value: TOMLNode, expected: String, secret: Bool = false) {
        let shown = secret ? "<redacted>" : value.rendered
        issues.append(ConfigIssue(.wrongType, key: key, value: shown, expected: "\(expected), not \(value.typeName)"))
    }

    // MARK: Helpers

    mutating func warnUnknown(_ table: [String: TOMLNode], known: [String], table name: String?) {
        for key in table.keys.sorted() where !known.contains(key) {
            let dotted = [name, key].compactMap { $0 }.joined(separator: ".")
            if name == nil && Self.laterTables.contains(key) {
                warnings.append(ConfigWarning(key: dotted, message: "[\(key)] is not used by this version of kafkasync"))
                continue
            }
            let suggestion = known.min { editDistance(key, $0) < editDistance(key, $1) }
                .flatMap { editDistance(key, $0) <= 2 ? " (did you mean \"\($0)\"?)" : nil } ?? ""
            warnings.append(ConfigWarning(key: dotted, message: "unknown key \"\(key)\" is ignored\(suggestion)"))
        }
    }

    /// `~` is the home folder; relative paths are relative to the config file's folder.
    func absolutePath(_ path: String) -> String {
        var expanded = path
        if path == "~" || path.hasPrefix("~/") {
            expanded = (environment["HOME"] ?? NSHomeDirectory()) + path.dropFirst()
        }
        return URL(fileURLWithPath: expanded, relativeTo: URL(fileURLWithPath: configDirectory, isDirectory: true))
            .standardizedFileURL.path
    }
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port`. A bare IPv6 address has no port.
/// - Returns: `nil` when the text is malformed or the port is not a number.
func splitHostPort(_ text: String) -> (host: String, port: Int?)? {
    if text.hasPrefix("[") {
        guard let close = text.firstIndex(of: "]") else { return nil }
        let host = String(text[text.index(after: text.startIndex)..<close])
        let rest = text[text.index(after: close)...]
        if rest.isEmpty { return (host, nil) }
        guard rest.hasPrefix(":"), let port = Int(rest.dropFirst()) else { return nil }
        return (host, port)
    }
    let parts = text.split(separator: ":", omittingEmptySubsequences: false)
    switch parts.count {
    case 1: return (text, nil)
    case 2:
        guard let port = Int(parts[1]) else { return nil }
        return (String(parts[0]), port)
    default: return (text, nil)
    }
}

/// Levenshtein distance, for "did you mean" suggestions.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    var previous = Array(0...b.count)
    for i in 1...max(a.count, 1) where !a.isEmpty {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in 1...max(b.count, 1) where !b.isEmpty {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}
