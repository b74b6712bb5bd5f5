import Foundation
import KafkaClient

/// The state file through which a process hosting the embedded Kafka cluster tells other processes of the
/// same configuration where it listens: `.kafkasync/embedded-bootstrap` beside the config file.
public struct EmbeddedBootstrapFile: Sendable {
    /// The state file's absolute path.
    public let path: String

    /// The state file for the configuration file at `configFile`.
    public init(configFile: String) {
        let directory = (URL(fileURLWithPath: configFile).standardizedFileURL.path as NSString).deletingLastPathComponent
        path = (directory as NSString).appendingPathComponent(".kafkasync/embedded-bootstrap")
    }

    /// Writes the bootstrap servers atomically, creating `.kafkasync/` if needed.
    public func write(bootstrapServers: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        // Write beside, then rename: readers never see a half-written file.
        let temporary = path + ".\(ProcessInfo.processInfo.processIdentifier).tmp"
        try Data((bootstrapServers + "\n").utf8).write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: temporary)
            throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: "cannot write \(path): \(reason)"])
        }
    }

    /// Removes the state file (nothing happens if it is gone already).
    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Reads the bootstrap servers a running embedded cluster wrote.
    /// - Throws: ``KafkaError/Code/embeddedBrokerNotRunning`` with the command that starts one.
    public func read() throws(KafkaError) -> String {
        guard let contents = try? String(contentsOfFile: path, encoding: .utf8),
              case let servers = contents.trimmingCharacters(in: .whitespacesAndNewlines), !servers.isEmpty else {
            throw KafkaError(code: .embeddedBrokerNotRunning, message: """
                kafka_url = "embedded" but no embedded broker is running for this configuration \
                (\(path) does not exist). Start one in another terminal with \
                `kafkasync broker --config <this config file>`, or set kafka_url to your Kafka brokers.
                """, isTransient: true)
        }
        guard servers.split(separator: ",").contains(where: { isListening(String($0)) }) else {
            throw KafkaError(code: .embeddedBrokerNotRunning, message: """
                kafka_url = "embedded" but the embedded broker recorded in \(path) (\(servers)) is not running \
                any more. Start one with `kafkasync broker --config <this config file>`.
                """, isTransient: true)
        }
        return servers
    }
}

/// Whether something accepts TCP connections at `host:port` (a loopback address written by a local broker).
private func isListening(_ address: String) -> Bool {
    guard let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...]) else {
        return false
    }
    var info = addrinfo()
    info.ai_socktype = Int32(SOCK_STREAM.rawValue)
    var results: UnsafeMutablePointer<addrinfo>?
    guard getaddrinfo(String(address[..<colon]), String(port), &info, &results) == 0, let results else { return false }
    defer { freeaddrinfo(results) }
    let fd = socket(results.pointee.ai_family, results.pointee.ai_socktype, 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    return connect(fd, results.pointee.ai_addr, results.pointee.ai_addrlen) == 0
}
