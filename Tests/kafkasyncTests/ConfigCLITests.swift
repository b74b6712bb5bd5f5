import Foundation
import TestSupport
import Testing

/// `kafkasync config check` as a subprocess.
@Suite struct ConfigCLITests {
    @Test func checkPrintsTheEffectiveConfigurationWithSecretsRedacted() async throws {
        let directory = try TemporaryDirectory(prefix: "kafkasync-config")
        defer { directory.remove() }
        let passwordFile = try directory.write("sftp-password", "file-secret-31337\n")
        let config = try directory.write("config.toml", """
            kafka_url = "localhost:9094"
            num_threads = 4
            debug_level = "debug"
            kafka_ulr = "typo"

            [kafka.properties]
            "security.protocol" = "SASL_SSL"
            "sasl.password" = "kafka-secret-4242"

            [remoteDetails]
            host = "sftp.example.com:2222"
            username = "your-sftp-user"
            password = "clear-secret-1234"

            [remotes.backup]
            host = "backup.example.com"
            username = "bk"
            password_file = "\(passwordFile)"

            [locations]
            incompletes = "./incompletes/"
            completes = "./completes/"
            """)
        let result = try await runProcess(try kafkasyncExecutable(), ["config", "check", "--config", config])
        #expect(result.status == 0, "\(result.stderr)")
        for secret in ["clear-secret-1234", "file-secret-31337", "kafka-secret-4242"] {
            #expect(!result.stdout.contains(secret))
            #expect(!result.stderr.contains(secret))
        }
        #expect(result.stdout.contains("sftp.example.com"))
        #expect(result.stdout.contains("2222"))
        #expect(result.stdout.contains("backup"))
        #expect(result.stdout.contains("kafkasync-files"), "defaults are shown")
        #expect(result.stderr.contains("kafka_ulr"), "unknown keys are warned about")
    }

    @Test func checkExitsOneAndNamesEveryBadKey() async throws {
        let directory = try TemporaryDirectory(prefix: "kafkasync-config")
        defer { directory.remove() }
        let config = try directory.write("config.toml", """
            kafka_url = "localhost:9094"
            num_threads = -3
            [remoteDetails]
            host = "h"
            username = "u"
            password = "pw-secret-999"
            engine = "ftp"
            """)
        let result = try await runProcess(try kafkasyncExecutable(), ["config", "check", "--config", config])
        #expect(result.status == 1)
        #expect(result.stderr.contains("num_threads"))
        #expect(result.stderr.contains("-3"))
        #expect(result.stderr.contains("remoteDetails.engine"))
        #expect(result.stderr.contains("ftp"))
        #expect(!result.stderr.contains("pw-secret-999"))
    }

    @Test func missingConfigFileIsAClearError() async throws {
        let directory = try TemporaryDirectory(prefix: "kafkasync-config")
        defer { directory.remove() }
        let result = try await runProcess(try kafkasyncExecutable(), ["config", "check"],
                                          currentDirectory: directory.path)
        #expect(result.status == 1)
        #expect(result.stderr.contains("config.toml"), "--config defaults to ./config.toml")
    }

    /// `config check --probe` against real servers: one the native engine serves, an RSA-only one that goes to lftp
    /// (OpenSSH verifies its host key), one whose host key is not in known_hosts, and a port nobody listens on.
    @Test func probeReportsEachRemotesAlgorithmsEngineAndLogin() async throws {
        try await withSSHServer { server in
            try await withSSHServer(hostKeyType: "rsa") { rsaOnly in
                let directory = try TemporaryDirectory(prefix: "kafkasync-probe")
                defer { directory.remove() }
                let empty = try directory.write("empty_known_hosts", "")
                func remote(_ table: String, _ server: SSHServerFixture, knownHosts: String? = nil) -> String {
                    """
                    [\(table)]
                    host = "127.0.0.1:\(server.port)"
                    username = "\(server.username)"
                    private_key = "\(server.clientKey)"
                    known_hosts = "\(knownHosts ?? server.knownHosts)"
                    """
                }
                let base = """
                    kafka_url = "localhost:9094"
                    [locations]
                    incompletes = "\(directory.file("incompletes"))/"
                    completes = "\(directory.file("completes"))/"

                    """
                let good = try directory.write("good.toml", base + remote("remoteDetails", server) + "\n" + remote("remotes.rsa", rsaOnly))
                let result = try await runProcess(try kafkasyncExecutable(), ["config", "check", "--probe", "--config", good])
                #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
                let sections = result.stdout.components(separatedBy: "\nremote ")
                let native = try #require(sections.first { $0.hasPrefix("remoteDetails ") })
                #expect(native.contains("server       SSH-2.0-OpenSSH"))
                #expect(native.contains("host keys    ssh-ed25519"))
                #expect(native.contains("native       curve25519-sha256, ssh-ed25519, aes"))
                #expect(native.contains("engine       native\n"))
                #expect(native.contains("ok           logged in as \(server.username), SFTP home /"))
                let rsa = try #require(sections.first { $0.hasPrefix("rsa ") })
                #expect(rsa.contains("engine       lftp (the server offers no host key algorithm the native engine speaks (only rsa-sha2"))
                #expect(rsa.contains("ok           logged in through lftp"))

                let closed = try freeLoopbackPort()
                let bad = try directory.write("bad.toml", base + remote("remoteDetails", server, knownHosts: empty) + """

                    [remotes.down]
                    host = "127.0.0.1:\(closed)"
                    username = "nobody"
                    private_key = "\(server.clientKey)"
                    """)
                let failed = try await runProcess(try kafkasyncExecutable(), ["config", "check", "--probe", "--config", bad])
                #expect(failed.status == 1, "\(failed.stdout)\n\(failed.stderr)")
                #expect(failed.stdout.contains("FAILED       host_key_unknown"), "\(failed.stdout)")
                #expect(failed.stdout.contains("FAILED       connection_failed"), "\(failed.stdout)")
            }
        }
    }
}
