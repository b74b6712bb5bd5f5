import Testing
import TransferStore
@testable import KafkaSyncCore

/// The smallest valid config: a broker and the default remote.
let minimalConfig = """
    kafka_url = "localhost:9094"
    [remoteDetails]
    host = "h"
    username = "u"
    password = "p"
    """

/// `[store] url` with PostgreSQL TLS parameters in a config file.
@Suite struct StoreTLSConfigTests {
    let base = minimalConfig + "\n[store]"

    @Test func sslModeAndRootCertificateAreRead() throws {
        let config = try KafkaSyncConfig.parse(
            toml: base + "\nurl = \"postgres://ks@db:5432/ks?sslmode=verify-full&sslrootcert=certs/db-ca.pem\"\n",
            configFile: "/etc/kafkasync/config.toml", environment: [:])
        #expect(config.store.location == .postgres(host: "db", port: 5432, username: "ks", database: "ks", password: nil,
                                                   tls: PostgresTLS(mode: .verifyFull,
                                                                    rootCertificate: "/etc/kafkasync/certs/db-ca.pem")))
    }

    @Test func aBadSSLModeNamesTheKeyTheValueAndWhatIsExpected() {
        let error = #expect(throws: ConfigError.self) {
            try KafkaSyncConfig.parse(toml: base + "\nurl = \"postgres://ks@db/ks?sslmode=verify_full\"\n",
                                      configFile: "/etc/kafkasync/config.toml", environment: [:])
        }
        let issue = error?.issues.first
        #expect(issue?.key == "store.url")
        #expect(issue?.description.contains("verify_full") == true, "\(String(describing: issue))")
        #expect(issue?.description.contains("disable, prefer, require, verify-ca, verify-full") == true)
    }
}
