import Foundation
import TestSupport
import Testing
@testable import KafkaSyncCore

/// `[http]`: where the consumer's HTTP server listens, and its token.
@Suite struct HTTPConfigTests {
    let base = ConfigFixtures.minimal()

    private func parse(_ http: String, environment: [String: String] = [:]) throws(ConfigError) -> KafkaSyncConfig {
        try KafkaSyncConfig.parse(toml: base + "\n[http]\n" + http + "\n", configFile: "/etc/kafkasync/config.toml",
                                  environment: environment)
    }

    private func issues(_ http: String, environment: [String: String] = [:]) -> [ConfigIssue] {
        do {
            _ = try parse(http, environment: environment)
            return []
        } catch {
            return error.issues
        }
    }

    @Test func theDefaultIsLoopbackPort8080() throws {
        let config = try KafkaSyncConfig.parse(toml: base, configFile: "/etc/kafkasync/config.toml", environment: [:])
        #expect(config.http.listen == ListenAddress(host: "127.0.0.1", port: 8080))
        #expect(config.http.token == nil)
        #expect(config.renderedRedacted().contains("[http]\nlisten = \"127.0.0.1:8080\""))
    }

    @Test func anEmptyListenTurnsTheServerOff() throws {
        #expect(try parse("listen = \"\"").http.listen == nil)
        #expect(try parse("").http.listen == ListenAddress(host: "127.0.0.1", port: 8080))
    }

    @Test(arguments: [
        ("127.0.0.1:0", "127.0.0.1", 0), ("localhost:9000", "localhost", 9000), ("[::1]:8081", "::1", 8081),
        ("127.1.2.3:65535", "127.1.2.3", 65535),
    ])
    func loopbackAddressesAreAccepted(text: String, host: String, port: Int) throws {
        let address = try #require(try parse("listen = \"\(text)\"").http.listen)
        #expect(address == ListenAddress(host: host, port: port))
        #expect(address.isLoopback)
        #expect(address.description == text)
    }

    @Test(arguments: ["8080", "127.0.0.1", "127.0.0.1:", ":8080", "127.0.0.1:65536", "127.0.0.1:-1", "::1:8080",
                      "127.0.0.1:80:80", "http://127.0.0.1:8080", "local host:8080", "[::1"])
    func malformedAddressesNameTheKeyTheValueAndTheForm(text: String) {
        let found = issues("listen = \"\(text)\"")
        #expect(found.count == 1)
        #expect(found.first?.key == "http.listen")
        #expect(found.first?.value == "\"\(text)\"")
        #expect(found.first?.expected.contains("\"HOST:PORT\" with a port 0-65535") == true, "\(found)")
    }

    @Test func aNumberIsTheWrongType() {
        let found = issues("listen = 8080")
        #expect(found.first?.code == .wrongType)
        #expect(found.first?.description == """
            http.listen = 8080: expected "HOST:PORT" with a port 0-65535, like "127.0.0.1:8080" or "[::1]:8080", \
            or "" for no HTTP server, not an integer
            """)
    }

    @Test(arguments: ["0.0.0.0:8080", "192.168.1.10:8080", "[::]:8080", "dashboard.internal:80", "128.0.0.1:1"])
    func aNonLoopbackAddressNeedsAToken(text: String) throws {
        let found = issues("listen = \"\(text)\"")
        #expect(found.count == 1)
        #expect(found.first?.key == "http.listen")
        #expect(found.first?.value == "\"\(text)\"")
        #expect(found.first?.expected.contains("unless http.token_env or http.token_file") == true, "\(found)")

        let config = try parse("listen = \"\(text)\"\ntoken_env = \"HTTP_TOKEN\"", environment: ["HTTP_TOKEN": "tok-4242"])
        #expect(config.http.listen?.isLoopback == false)
        #expect(config.http.token?.revealed == "tok-4242")
    }

    @Test func theTokenComesFromAFileAndIsNeverShown() throws {
        let directory = try TemporaryDirectory(prefix: "kafkasync-http-config")
        defer { directory.remove() }
        let file = try directory.write("token", "file-token-31337\n")
        let config = try parse("listen = \"0.0.0.0:0\"\ntoken_file = \"\(file)\"")
        #expect(config.http.token?.revealed == "file-token-31337")
        let rendered = config.renderedRedacted()
        #expect(rendered.contains("token = <redacted> (from token_file \(file))"))
        #expect(!rendered.contains("file-token-31337"))
        #expect(!"\(config)".contains("file-token-31337"))
    }

    @Test func tokenProblemsNameTheKeyAndNeverTheToken() throws {
        #expect(issues("token_env = \"UNSET_TOKEN\"").map(\.key) == ["http.token_env"])
        let both = issues("token_env = \"T\"\ntoken_file = \"/dev/null\"", environment: ["T": "env-token-5555"])
        #expect(both.map(\.code) == [.conflict])
        #expect(both.map(\.key) == ["http.token_file"])
        #expect(!both.description.contains("env-token-5555"))
        let directory = try TemporaryDirectory(prefix: "kafkasync-http-config")
        defer { directory.remove() }
        let empty = try directory.write("empty", "")
        #expect(issues("token_file = \"\(empty)\"").first?.expected == "a file holding a non-empty token")
    }

    @Test func theEnvironmentOverridesListen() throws {
        let config = try parse("listen = \"127.0.0.1:8080\"", environment: ["KAFKASYNC_HTTP_LISTEN": "127.0.0.1:0"])
        #expect(config.http.listen?.port == 0)
        let found = issues("", environment: ["KAFKASYNC_HTTP_LISTEN": "0.0.0.0:80"])
        #expect(found.map(\.key) == ["KAFKASYNC_HTTP_LISTEN"])
    }

    @Test func unknownKeysInHTTPAreWarnings() throws {
        let config = try parse("listne = \"127.0.0.1:1\"")
        #expect(config.warnings.map(\.description).contains { $0.hasPrefix("http.listne") && $0.contains("\"listen\"") })
    }
}
