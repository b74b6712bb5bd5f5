import Foundation
import Logging
import TestSupport
import Testing
import TransferStore
@testable import KafkaSyncCore

private let originalConfig = """
    kafka_url = "localhost:9094"
    num_threads = 4          # segments per large file, parallel files per directory
    debug_level = "debug"

    [remoteDetails]
    host = "your-sftp-server.com"   # host or host:port
    username = "your-sftp-user"
    password = "your-sftp-password"

    [locations]
    incompletes = "./incompletes/"
    completes = "./completes/"
    """

/// Parses `toml` as `/etc/kafkasync/config.toml` with only `environment` set.
private func parse(_ toml: String, environment: [String: String] = [:],
                   configFile: String = "/etc/kafkasync/config.toml") throws(ConfigError) -> KafkaSyncConfig {
    try KafkaSyncConfig.parse(toml: toml, configFile: configFile, environment: environment)
}

/// The issues `toml` produces (empty if it loads).
private func issues(_ toml: String, environment: [String: String] = [:],
                    configFile: String = "/etc/kafkasync/config.toml") -> [ConfigIssue] {
    do {
        _ = try parse(toml, environment: environment, configFile: configFile)
        return []
    } catch {
        return error.issues
    }
}

/// A valid config with `remote` lines replacing the default remote's body.
private func withRemote(_ remote: String) -> String {
    """
    kafka_url = "localhost:9094"
    [remoteDetails]
    \(remote)
    """
}

@Suite struct ConfigTests {
    @Test func originalFileLoadsUnchanged() throws {
        let config = try parse(originalConfig)
        #expect(config.kafkaURL == "localhost:9094")
        #expect(config.numThreads == 4)
        #expect(config.debugLevel == .debug)
        #expect(config.defaultRemote.host == "your-sftp-server.com")
        #expect(config.defaultRemote.port == 22)
        #expect(config.defaultRemote.username == "your-sftp-user")
        #expect(config.defaultRemote.password?.revealed == "your-sftp-password")
        #expect(config.defaultRemote.hostKeyPolicy == .strict)
        #expect(config.defaultRemote.engine == .auto)
        #expect(config.locations.incompletes == "/etc/kafkasync/incompletes")
        #expect(config.locations.completes == "/etc/kafkasync/completes")
        #expect(config.kafka == KafkaSettings(topic: "kafkasync-files", groupID: "file-consumer-group", properties: [:]))
        #expect(config.remotes.isEmpty)
        #expect(config.warnings.isEmpty)
        #expect(config.remote(named: nil) == config.defaultRemote)
        #expect(config.remote(named: "remoteDetails") == config.defaultRemote)
        #expect(config.remote(named: "nope") == nil)
    }

    @Test func fullFileWithEveryExtension() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let passwordFile = try directory.write("secrets/backup-password", "from-a-file\n")
        let key = try directory.write("keys/id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----\n")
        let knownHosts = try directory.write("known_hosts", "")
        let fingerprint = "SHA256:" + String(repeating: "a", count: 42) + "/"
        let config = try KafkaSyncConfig.parse(toml: """
            kafka_url = "k1:9092, k2:9093"
            num_threads = 16
            debug_level = "WARN"

            [kafka]
            topic = "sync.jobs"
            group_id = "edge-consumers"
            [kafka.properties]
            "security.protocol" = "SASL_SSL"
            "sasl.mechanisms" = "SCRAM-SHA-512"
            "sasl.password" = "kafka-pw"
            "socket.keepalive.enable" = true
            "fetch.wait.max.ms" = 50

            [remoteDetails]
            host = "[::1]:2222"
            username = "sync"
            password_env = "SFTP_PW"
            known_hosts = "known_hosts"
            host_key_policy = "accept-new"

            [remotes.backup]
            host = "backup.example.com"
            port = 2200
            username = "bk"
            password_file = "secrets/backup-password"
            engine = "lftp"

            [remotes."eu-1.archive"]
            host = "archive.example.com:22"
            port = 22
            username = "ar"
            private_key = "keys/id_ed25519"
            private_key_passphrase_env = "KEY_PASS"
            known_hosts = "\(knownHosts)"
            host_key_fingerprint = "\(fingerprint)"

            [locations]
            incompletes = "/var/lib/kafkasync/staging"
            completes = "~/done"
            """, configFile: directory.file("config.toml"),
            environment: ["SFTP_PW": "env-pw", "KEY_PASS": "key-pw", "HOME": "/home/sync"])
        #expect(config.kafkaURL == "k1:9092,k2:9093")
        #expect(config.numThreads == 16)
        #expect(config.debugLevel == .warning)
        #expect(config.kafka.topic == "sync.jobs")
        #expect(config.kafka.groupID == "edge-consumers")
        #expect(config.kafka.properties == [
            "security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512", "sasl.password": "kafka-pw",
            "socket.keepalive.enable": "true", "fetch.wait.max.ms": "50",
        ])
        let main = config.defaultRemote
        #expect(main.host == "::1" && main.port == 2222)
        #expect(main.password?.revealed == "env-pw")
        #expect(main.passwordSource == .environment(key: "password_env", variable: "SFTP_PW"))
        #expect(main.knownHosts == knownHosts)
        #expect(main.hostKeyPolicy == .acceptNew)
        let backup = try #require(config.remote(named: "backup"))
        #expect(backup.port == 2200)
        #expect(backup.password?.revealed == "from-a-file", "the trailing newline is trimmed")
        #expect(backup.passwordSource == .file(key: "password_file", path: passwordFile))
        #expect(backup.engine == .lftp)
        let archive = try #require(config.remotes["eu-1.archive"])
        #expect(archive.privateKey == key)
        #expect(archive.privateKeyPassphrase?.revealed == "key-pw")
        #expect(archive.hostKeyFingerprint == fingerprint)
        #expect(archive.password == nil)
        #expect(config.locations.completes == "/home/sync/done")
        #expect(config.warnings.isEmpty)
    }

    /// Each invalid snippet and the key its issue must name.
    static let invalidConfigs: [(String, String, String)] = [
        ("kafka_url = 9094\n[remoteDetails]\nhost = \"h\"\nusername = \"u\"", "kafka_url", "wrong_type"),
        ("kafka_url = \"localhost\"\n[remoteDetails]\nhost = \"h\"\nusername = \"u\"", "kafka_url", "invalid_value"),
        ("kafka_url = \"h:99999\"\n[remoteDetails]\nhost = \"h\"\nusername = \"u\"", "kafka_url", "invalid_value"),
        ("[remoteDetails]\nhost = \"h\"\nusername = \"u\"", "kafka_url", "missing_key"),
        ("kafka_url = \"k:1\"\nnum_threads = \"four\"\n[remoteDetails]\nhost = \"h\"\nusername = \"u\"", "num_threads", "wrong_type"),
        ("kafka_url = \"k:1\"\nnum_threads = -1\n[remoteDetails]\nhost = \"h\"\nusername = \"u\"", "num_threads", "invalid_value"),
        ("kafka_url = \"k:1\"\nnum_threads = 0\n[remoteDetails]\nhost = \"h\"\nusername = \"u\"", "num_threads", "invalid_value"),
        ("kafka_url = \"k:1\"\nnum_threads = 2.5\n[remoteDetails]\nhost = \"h\"\nusername = \"u\"", "num_threads", "wrong_type"),
        ("kafka_url = \"k:1\"\ndebug_level = \"loud\"\n[remoteDetails]\nhost = \"h\"\nusername = \"u\"", "debug_level", "invalid_value"),
        ("kafka_url = \"k:1\"\ndebug_level = true\n[remoteDetails]\nhost = \"h\"\nusername = \"u\"", "debug_level", "wrong_type"),
        ("kafka_url = \"k:1\"", "[remoteDetails]", "missing_key"),
        ("kafka_url = \"k:1\"\nremoteDetails = \"h\"", "remoteDetails", "wrong_type"),
        (withRemote("host = \"h\""), "remoteDetails.username", "missing_key"),
        (withRemote("username = \"u\""), "remoteDetails.host", "missing_key"),
        (withRemote("host = \"h:notaport\"\nusername = \"u\""), "remoteDetails.host", "invalid_value"),
        (withRemote("host = \"h:0\"\nusername = \"u\""), "remoteDetails.host", "invalid_value"),
        (withRemote("host = \"h:2222\"\nport = 2223\nusername = \"u\""), "remoteDetails.port", "conflict"),
        (withRemote("host = \"h\"\nport = 70000\nusername = \"u\""), "remoteDetails.port", "invalid_value"),
        (withRemote("host = \"h\"\nusername = \"\""), "remoteDetails.username", "invalid_value"),
        (withRemote("host = \"h\"\nusername = \"u\"\nengine = \"ftp\""), "remoteDetails.engine", "invalid_value"),
        (withRemote("host = \"h\"\nusername = \"u\"\nengine = 1"), "remoteDetails.engine", "wrong_type"),
        (withRemote("host = \"h\"\nusername = \"u\"\nstall_timeout = \"soon\""), "remoteDetails.stall_timeout", "invalid_value"),
        (withRemote("host = \"h\"\nusername = \"u\"\nstall_timeout = \"500ms\""), "remoteDetails.stall_timeout", "invalid_value"),
        (withRemote("host = \"h\"\nusername = \"u\"\nstall_timeout = 0"), "remoteDetails.stall_timeout", "invalid_value"),
        (withRemote("host = \"h\"\nusername = \"u\"\nstall_timeout = true"), "remoteDetails.stall_timeout", "wrong_type"),
        (withRemote("host = \"h\"\nusername = \"u\"\nhost_key_policy = \"yolo\""), "remoteDetails.host_key_policy", "invalid_value"),
        (withRemote("host = \"h\"\nusername = \"u\"\nhost_key_fingerprint = \"MD5:aa:bb\""), "remoteDetails.host_key_fingerprint", "invalid_value"),
        (withRemote("host = \"h\"\nusername = \"u\"\npassword = \"a\"\npassword_env = \"B\""), "remoteDetails.password_env", "conflict"),
        (withRemote("host = \"h\"\nusername = \"u\"\npassword_env = \"KAFKASYNC_TEST_UNSET_VARIABLE\""), "remoteDetails.password_env", "invalid_value"),
        (withRemote("host = \"h\"\nusername = \"u\"\npassword_file = \"/nonexistent/pw\""), "remoteDetails.password_file", "unreadable_file"),
        (withRemote("host = \"h\"\nusername = \"u\"\nprivate_key = \"/nonexistent/id_ed25519\""), "remoteDetails.private_key", "unreadable_file"),
        (withRemote("host = \"h\"\nusername = \"u\"\nknown_hosts = \"/nonexistent/known_hosts\""), "remoteDetails.known_hosts", "unreadable_file"),
        (withRemote("host = \"h\"\nusername = \"u\"\npassword = 1234"), "remoteDetails.password", "wrong_type"),
        (withRemote("host = \"h\"\nusername = \"u\"") + "\n[remotes.\"bad name\"]\nhost = \"h\"\nusername = \"u\"", "[remotes.bad name]", "invalid_value"),
        (withRemote("host = \"h\"\nusername = \"u\"") + "\n[remotes]\nbackup = \"h\"", "remotes.backup", "wrong_type"),
        (withRemote("host = \"h\"\nusername = \"u\"") + "\n[kafka]\ntopic = \"has space\"", "kafka.topic", "invalid_value"),
        (withRemote("host = \"h\"\nusername = \"u\"") + "\n[kafka]\ngroup_id = \"\"", "kafka.group_id", "invalid_value"),
        (withRemote("host = \"h\"\nusername = \"u\"") + "\n[kafka.properties]\n\"sasl.password\" = [1]", "kafka.properties.sasl.password", "wrong_type"),
        (withRemote("host = \"h\"\nusername = \"u\"") + "\n[locations]\nincompletes = \"./x\"\ncompletes = \"x/\"", "locations.completes", "conflict"),
        (withRemote("host = \"h\"\nusername = \"u\"") + "\n[locations]\ncompletes = 5", "locations.completes", "wrong_type"),
        (withRemote("host = \"h\"\nusername = \"u\"") + "\n[consumer]\nconcurrency = 0", "consumer.concurrency", "invalid_value"),
        (withRemote("host = \"h\"\nusername = \"u\"") + "\n[consumer]\nconcurrency = \"8\"", "consumer.concurrency", "wrong_type"),
        (withRemote("host = \"h\"\nusername = \"u\"") + "\n[consumer]\nmax_attempts = 101", "consumer.max_attempts", "invalid_value"),
        (withRemote("host = \"h\"\nusername = \"u\"") + "\n[consumer]\nbackoff_initial = \"soon\"", "consumer.backoff_initial", "invalid_value"),
        (withRemote("host = \"h\"\nusername = \"u\"") + "\n[consumer]\nbackoff_initial = -5", "consumer.backoff_initial", "invalid_value"),
        (withRemote("host = \"h\"\nusername = \"u\"") + "\n[consumer]\nbackoff_max = true", "consumer.backoff_max", "wrong_type"),
        (withRemote("host = \"h\"\nusername = \"u\"") + "\n[consumer]\nbackoff_initial = \"10m\"\nbackoff_max = \"1m\"", "consumer.backoff_max", "conflict"),
        (withRemote("host = \"h\"\nusername = \"u\"") + "\n[consumer]\nshutdown_grace = \"30 parsecs\"", "consumer.shutdown_grace", "invalid_value"),
        (withRemote("host = \"h\"\nusername = \"u\"") + "\n[consumer]\non_conflict = \"merge\"", "consumer.on_conflict", "invalid_value"),
        (withRemote("host = \"h\"\nusername = \"u\"") + "\n[consumer]\nlog_format = \"xml\"", "consumer.log_format", "invalid_value"),
        (withRemote("host = \"h\"\nusername = \"u\"") + "\n[consumer]\nlog_file = 3", "consumer.log_file", "wrong_type"),
        (withRemote("host = \"h\"\nusername = \"u\"") + "\n[consumer]\nsegment_threshold = \"huge\"", "consumer.segment_threshold", "invalid_value"),
        (withRemote("host = \"h\"\nusername = \"u\"") + "\n[consumer]\nsegment_threshold = 100", "consumer.segment_threshold", "invalid_value"),
        (withRemote("host = \"h\"\nusername = \"u\"") + "\n[locations]\nquarantine = \"./completes/\"", "locations.quarantine", "conflict"),
        (withRemote("host = \"h\"\nusername = \"u\"") + "\n[consumer]\nmax_entries = 0", "consumer.max_entries", "invalid_value"),
        (withRemote("host = \"h\"\nusername = \"u\"") + "\n[consumer]\nmax_entries = \"lots\"", "consumer.max_entries", "wrong_type"),
    ]

    @Test func consumerSettingsParseDurationsSizesAndChoices() throws {
        let config = try parse(withRemote("host = \"h\"\nusername = \"u\"") + """

            [consumer]
            concurrency = 16
            max_attempts = 3
            backoff_initial = "500ms"
            backoff_max = 90
            shutdown_grace = "1.5m"
            on_conflict = "overwrite"
            log_file = ""
            log_format = "json"
            segment_threshold = "256MiB"
            max_entries = 5000
            """)
        let consumer = config.consumer
        #expect(consumer.concurrency == 16 && consumer.maxAttempts == 3)
        #expect(consumer.backoffInitial == .milliseconds(500) && consumer.backoffMax == .seconds(90))
        #expect(consumer.shutdownGrace == .seconds(90))
        #expect(consumer.onConflict == .overwrite && consumer.logFormat == .json && consumer.logFile == nil)
        #expect(consumer.segmentThreshold == 256 << 20 && consumer.maxEntries == 5000)
        let defaults = try parse(withRemote("host = \"h\"\nusername = \"u\"")).consumer
        #expect(defaults.concurrency == 4 && defaults.maxAttempts == 5 && defaults.onConflict == .rename)
        #expect(defaults.backoffInitial == .seconds(5) && defaults.backoffMax == .seconds(300))
        #expect(defaults.shutdownGrace == .seconds(30) && defaults.logFormat == .text)
        #expect(defaults.logFile?.hasSuffix("/consumer.log") == true)
        #expect(defaults.maxEntries == 1_000_000)
    }

    @Test func anSSHAgentOrAnSSHConfigHostNeedTheOpenSSHClient() throws {
        let config = try parse(withRemote("ssh_config_host = \"appliance\"") + """

            [remotes.agent]
            host = "a"
            username = "u"
            identity_agent = "SSH_AUTH_SOCK"
            """, environment: ["SSH_AUTH_SOCK": "/run/user/1000/agent.sock"])
        #expect(config.defaultRemote.sshConfigHost == "appliance" && config.defaultRemote.host == "appliance",
                "host and username may come from the ssh configuration")
        #expect(config.defaultRemote.needsOpenSSH && config.defaultRemote.engine == .auto)
        #expect(config.remotes["agent"]?.identityAgent == "/run/user/1000/agent.sock")
        #expect(config.warnings.isEmpty, "the agent or the ssh configuration authenticates: \(config.warnings)")
        let rendered = config.renderedRedacted()
        #expect(rendered.contains("ssh_config_host = \"appliance\"") && rendered.contains("identity_agent = \"/run/user/1000/agent.sock\""))
        let native = issues(withRemote("host = \"h\"\nusername = \"u\"\nidentity_agent = \"/tmp/a.sock\"\nengine = \"native\""))
        #expect(native.contains { $0.key == "remoteDetails.engine" && $0.code == .conflict }, "\(native)")
        let unset = issues(withRemote("host = \"h\"\nusername = \"u\"\nidentity_agent = \"SSH_AUTH_SOCK\""))
        #expect(unset.contains { $0.key == "remoteDetails.identity_agent" && $0.expected.contains("not set") }, "\(unset)")
    }

    @Test func stallTimeoutIsPerRemoteWithADefaultAndShownByConfigCheck() throws {
        let config = try parse(withRemote("host = \"h\"\nusername = \"u\"\nstall_timeout = \"90s\"") + """

            [remotes.slow]
            host = "s"
            username = "u"
            stall_timeout = "2m"

            [remotes.plain]
            host = "p"
            username = "u"
            """)
        #expect(config.defaultRemote.stallTimeout == .seconds(90))
        #expect(config.remotes["slow"]?.stallTimeout == .seconds(120))
        #expect(config.remotes["plain"]?.stallTimeout == .seconds(60), "60 s by default")
        #expect(try config.defaultRemote.connectionConfiguration().stallTimeout == .seconds(90), "reaches the SSH layer")
        let rendered = config.renderedRedacted()
        #expect(rendered.contains("stall_timeout = \"90.0 seconds\""), "\(rendered)")
        #expect(rendered.contains("stall_timeout = \"60.0 seconds\""), "\(rendered)")
    }

    @Test(arguments: invalidConfigs.indices)
    func invalidValueNamesTheKeyTheValueAndWhatIsExpected(_ index: Int) {
        let (toml, key, code) = Self.invalidConfigs[index]
        let found = issues(toml)
        let issue = found.first { $0.key == key }
        #expect(issue != nil, "expected an issue for \(key), got \(found.map(\.description))")
        #expect(issue?.code.description == code, "\(found.map(\.description))")
        #expect(issue.map { !$0.expected.isEmpty } == true)
        #expect(issue?.description.contains(key) == true)
    }

    @Test func everyProblemIsReportedTogether() {
        let found = issues("""
            kafka_url = 1
            num_threads = -2
            debug_level = "shout"
            [remoteDetails]
            host = "h"
            engine = "ftp"
            """)
        #expect(Set(found.map(\.key)) == ["kafka_url", "num_threads", "debug_level", "remoteDetails.username",
                                          "remoteDetails.engine"])
        let numThreads = found.first { $0.key == "num_threads" }
        #expect(numThreads?.description == "num_threads = -2: expected an integer 1...256")
    }

    @Test func syntaxErrorsGiveLineAndColumn() {
        let found = issues("kafka_url = \"k:1\"\nnum_threads = = 4\n")
        #expect(found.count == 1)
        #expect(found.first?.code == .syntax)
        #expect(found.first?.key.contains("config.toml line 2") == true, "\(found)")
    }

    @Test func missingFileSaysHowToStart() {
        do {
            _ = try KafkaSyncConfig.load(path: "/nonexistent/kafkasync/config.toml")
            Issue.record("loaded a missing file")
        } catch {
            #expect(error.issues.first?.code == .fileNotFound)
            #expect(error.description.contains("/nonexistent/kafkasync/config.toml"))
            #expect(error.description.contains("config.example.toml"))
        }
    }

    @Test func loadReadsAFileAndResolvesPathsBesideIt() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try directory.write("conf/config.toml", originalConfig)
        let config = try KafkaSyncConfig.load(path: path, environment: [:])
        #expect(config.configFile == path)
        #expect(config.locations.completes == directory.file("conf/completes"))
    }

    @Test func environmentOverridesTopLevelAndKafkaKeys() throws {
        let config = try parse(originalConfig, environment: [
            "KAFKASYNC_KAFKA_URL": "embedded", "KAFKASYNC_NUM_THREADS": "12", "KAFKASYNC_DEBUG_LEVEL": "trace",
            "KAFKASYNC_KAFKA_TOPIC": "other-files", "KAFKASYNC_KAFKA_GROUP_ID": "g2",
        ])
        #expect(config.kafkaURL == "embedded")
        #expect(config.numThreads == 12)
        #expect(config.debugLevel == .trace)
        #expect(config.kafka.topic == "other-files")
        #expect(config.kafka.groupID == "g2")
    }

    @Test func invalidEnvironmentOverridesNameTheVariable() {
        let found = issues(originalConfig, environment: ["KAFKASYNC_NUM_THREADS": "four", "KAFKASYNC_KAFKA_URL": "nope"])
        #expect(found.map(\.description).contains("KAFKASYNC_NUM_THREADS = \"four\": expected an integer 1...256, not a string"))
        #expect(found.contains { $0.key == "KAFKASYNC_KAFKA_URL" && $0.value == "\"nope\"" })
    }

    @Test func unknownKeysAreWarningsWithSuggestions() throws {
        let config = try parse(originalConfig.replacingOccurrences(of: "num_threads", with: "num_thread") + """

            [kafka]
            topik = "x"
            [watch]
            folder = "b"
            [remotes.b]
            host = "h"
            usernme = "u"
            username = "u"
            password = "p"
            """)
        let messages = config.warnings.map(\.description)
        #expect(messages.contains { $0.contains("num_thread") && $0.contains("did you mean \"num_threads\"") })
        #expect(messages.contains { $0.hasPrefix("kafka.topik") && $0.contains("\"topic\"") })
        #expect(messages.contains { $0.hasPrefix("watch") && $0.contains("not used") })
        #expect(messages.contains { $0.hasPrefix("remotes.b.usernme") && $0.contains("\"username\"") })
        #expect(config.numThreads == 4, "the misspelled key is ignored, the default applies")
    }

    @Test func aRemoteWithoutCredentialsIsAWarning() throws {
        let config = try parse(withRemote("host = \"h\"\nusername = \"u\""))
        #expect(config.warnings.contains { $0.key == "remoteDetails" && $0.message.contains("no password") })
    }

    @Test func secretsNeverAppearInRenderingErrorsOrWarnings() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let passwordFile = try directory.write("pw", "file-secret-31337\n")
        let toml = """
            kafka_url = "localhost:9094"
            [kafka.properties]
            "sasl.password" = "kafka-secret-4242"
            "ssl.key.password" = "ssl-secret-777"
            [remoteDetails]
            host = "h"
            username = "u"
            password = "clear-secret-1234"
            [remotes.b]
            host = "h2"
            username = "u2"
            password_file = "\(passwordFile)"
            [remotes.c]
            host = "h3"
            username = "u3"
            password_env = "C_PW"
            """
        let secrets = ["kafka-secret-4242", "ssl-secret-777", "clear-secret-1234", "file-secret-31337", "env-secret-5555"]
        let config = try parse(toml, environment: ["C_PW": "env-secret-5555"])
        let rendered = config.renderedRedacted()
        for secret in secrets {
            #expect(!rendered.contains(secret))
            #expect(!"\(config)".contains(secret), "the struct's own description")
        }
        #expect(rendered.contains("password = <redacted> (from password_env C_PW)"))
        #expect(rendered.contains("\"sasl.password\" = <redacted>"))
        #expect(rendered.contains("port = 22"))
        #expect(rendered.contains("topic = \"kafkasync-files\""))

        // Errors with the same secrets around them still do not show them.
        let broken = toml.replacingOccurrences(of: "username = \"u\"", with: "username = 7\npassword_env = \"X\"")
            .replacingOccurrences(of: "\"ssl.key.password\" = \"ssl-secret-777\"", with: "\"ssl.key.password\" = [\"ssl-secret-777\"]")
        do {
            _ = try parse(broken, environment: ["C_PW": "env-secret-5555"])
            Issue.record("loaded a broken file")
        } catch {
            for secret in secrets { #expect(!error.description.contains(secret)) }
            #expect(error.description.contains("kafka.properties.ssl.key.password = <redacted>"))
        }
    }

    @Test func storeDefaultsToSQLiteBesideTheConfigFile() throws {
        let config = try parse(originalConfig)
        #expect(config.store.location == .sqlite(path: "/etc/kafkasync/kafkasync.db"))
        #expect(config.renderedRedacted().contains("url = \"sqlite://./kafkasync.db\" # SQLite /etc/kafkasync/kafkasync.db"))
    }

    @Test func storeOnPostgresTakesItsPasswordFromTheEnvironment() throws {
        let config = try parse(originalConfig + """

            [store]
            url = "postgres://kafkasync@db.internal:6432/transfers"
            password_env = "DB_PW"
            """, environment: ["DB_PW": "db-secret-8888"])
        #expect(config.store.location == .postgres(host: "db.internal", port: 6432, username: "kafkasync",
                                                   database: "transfers", password: "db-secret-8888"))
        let rendered = config.renderedRedacted()
        #expect(rendered.contains("password = <redacted> (from password_env DB_PW)"))
        #expect(!rendered.contains("db-secret-8888"))
        #expect(!"\(config)".contains("db-secret-8888"))
    }

    @Test func badStoreURLsNameTheKey() {
        let found = issues(originalConfig + "\n[store]\nurl = \"mysql://x@y/z\"\n")
        #expect(found.first?.key == "store.url")
        #expect(found.first?.description.contains("sqlite://") == true)
        let withPassword = issues(originalConfig + "\n[store]\nurl = \"postgres://u:pw-in-url-77@db/x\"\n")
        #expect(withPassword.first?.key == "store.url")
        #expect(withPassword.first.map { !$0.description.contains("pw-in-url-77") } == true)
    }

    @Test func theShippedExampleConfigLoadsWithoutWarnings() throws {
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../config.example.toml")
        let config = try KafkaSyncConfig.load(path: example.path, environment: ["KAFKASYNC_SFTP_PASSWORD": "x"])
        #expect(config.warnings.isEmpty, "\(config.warnings)")
        #expect(config.defaultRemote.passwordSource == .environment(key: "password_env", variable: "KAFKASYNC_SFTP_PASSWORD"))
    }

    @Test func hostPortSplitting() {
        #expect(splitHostPort("h")! == ("h", nil))
        #expect(splitHostPort("h:22")! == ("h", 22))
        #expect(splitHostPort("[fe80::1]:2222")! == ("fe80::1", 2222))
        #expect(splitHostPort("[::1]")! == ("::1", nil))
        #expect(splitHostPort("::1")! == ("::1", nil))
        #expect(splitHostPort("h:x") == nil)
        #expect(splitHostPort("[::1") == nil)
    }
}
