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
}
