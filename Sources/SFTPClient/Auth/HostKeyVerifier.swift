import Crypto
import Foundation
import NIOSSH

/// How strictly an unknown host key is treated.
public enum HostKeyTrust: Sendable, Equatable {
    /// Unknown and changed keys are refused.
    case strict
    /// Unknown keys are recorded in the known_hosts file (trust on first use); changed keys are refused.
    case acceptNew
}

/// Checks the server's host key before authentication: against a pinned `SHA256:` fingerprint, or against an
/// OpenSSH known_hosts file (plain and hashed `|1|` entries, `[host]:port`, wildcards, `@revoked`).
public struct HostKeyVerifier: Sendable {
    /// The host as the client connects to it.
    public var host: String
    /// The port (known_hosts writes non-22 ports as `[host]:port`).
    public var port: Int
    /// The known_hosts file.
    public var knownHosts: String
    /// A pinned fingerprint (`SHA256:…`); when set, known_hosts is not consulted.
    public var pinnedFingerprint: String?
    /// What to do with an unknown key.
    public var trust: HostKeyTrust

    /// Creates a verifier. `knownHosts` defaults to `~/.ssh/known_hosts`.
    public init(host: String, port: Int, knownHosts: String? = nil, pinnedFingerprint: String? = nil,
                trust: HostKeyTrust = .strict) {
        self.host = host
        self.port = port
        self.knownHosts = knownHosts ?? (NSHomeDirectory() as NSString).appendingPathComponent(".ssh/known_hosts")
        self.pinnedFingerprint = pinnedFingerprint
        self.trust = trust
    }

    /// The fingerprint of a key as `ssh-keygen -lf` prints it: `SHA256:` and unpadded base64.
    public static func fingerprint(_ key: NIOSSHPublicKey) -> String {
        let blob = Data(base64Encoded: String(String(openSSHPublicKey: key).split(separator: " ")[1])) ?? Data()
        return "SHA256:" + Data(SHA256.hash(data: blob)).base64EncodedString().replacingOccurrences(of: "=", with: "")
    }

    /// The name known_hosts uses for this host: `host`, or `[host]:port` for other ports than 22.
    var hostEntryName: String { port == 22 ? host : "[\(host)]:\(port)" }

    /// Accepts the key, records it (accept-new), or throws why not.
    /// - Throws: ``SFTPError`` `hostKeyUnknown`, `hostKeyChanged` or `hostKeyRevoked`, with the offered
    ///   fingerprint and the fix.
    public func verify(_ key: NIOSSHPublicKey) throws(SFTPError) {
        let offered = Self.fingerprint(key)
        if let pinnedFingerprint {
            guard pinnedFingerprint == offered else {
                throw SFTPError(.hostKeyChanged, """
                    the host key of \(hostEntryName) is \(offered), not the pinned host_key_fingerprint \
                    \(pinnedFingerprint): if the server's key really changed, pin the new fingerprint
                    """)
            }
            return
        }
        let line = String(openSSHPublicKey: key).split(separator: " ")
        let (type, blob) = (String(line[0]), String(line[1]))
        let contents: [UInt8]
        do {
            contents = try Self.contents(of: knownHosts)
        } catch {
            throw SFTPError(.hostKeyUnknown, "cannot read \(knownHosts) to check the host key \(offered) of \(hostEntryName): \(error)")
        }
        switch check(Self.entries(contents), type: type, blob: blob, offered: offered) {
        case .known: return
        case .refused(let error): throw error
        case .unknown:
            guard trust == .acceptNew else {
                throw SFTPError(.hostKeyUnknown, """
                    the host key \(offered) of \(hostEntryName) is not in \(knownHosts): check it with the server's \
                    owner, then add it (ssh-keyscan -p \(port) \(host) >> \(knownHosts)), pin it with \
                    host_key_fingerprint = "\(offered)", or set host_key_policy = "accept-new"
                    """)
            }
            try record(type: type, blob: blob, offered: offered)
        }
    }

    private enum Check {
        case known, unknown, refused(SFTPError)
    }

    /// What the entries say about the offered key: known, unknown (never seen for this host and key type), or
    /// refused (revoked, or the host has another key of this type).
    private func check(_ entries: [Entry], type: String, blob: String, offered: String) -> Check {
        if entries.contains(where: { $0.marker == "@revoked" && $0.type == type && $0.key == blob }) {
            return .refused(SFTPError(.hostKeyRevoked, "the host key \(offered) of \(hostEntryName) is marked @revoked in \(knownHosts)"))
        }
        let forHost = entries.filter { $0.marker == nil && $0.matches(hostEntryName) }
        if forHost.contains(where: { $0.type == type && $0.key == blob }) { return .known }
        if forHost.contains(where: { $0.type == type }) {
            return .refused(SFTPError(.hostKeyChanged, """
                the host key of \(hostEntryName) changed: it offers \(offered), which differs from the \(type) key \
                in \(knownHosts). This may be an attack; if the server's key really changed, remove the old entry \
                (ssh-keygen -R '\(hostEntryName)' -f \(knownHosts)) and connect again
                """))
        }
        return .unknown
    }

    /// Appends the key (accept-new) under an exclusive `flock` of the file, after checking again what the file
    /// holds then: another process or connection may have recorded a key for this host in the meantime. The
    /// line is one `write(2)` to a file opened with `O_APPEND`, so concurrent writers never overwrite each
    /// other, and starts on a line of its own even when the file does not end with a newline.
    private func record(type: String, blob: String, offered: String) throws(SFTPError) {
        func failure(_ what: String) -> SFTPError {
            SFTPError(.hostKeyUnknown, "cannot record the new host key \(offered) of \(hostEntryName) in \(knownHosts): \(what)")
        }
        let directory = (knownHosts as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw failure(error.localizedDescription)
        }
        let descriptor = open(knownHosts, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw failure(String(cString: strerror(errno))) }
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else { throw failure(String(cString: strerror(errno))) }
        }
        let contents: [UInt8]
        do {
            contents = try Self.readAll(descriptor)
        } catch {
            throw failure(error.description)
        }
        switch check(Self.entries(contents), type: type, blob: blob, offered: offered) {
        case .known: return
        case .refused(let error): throw error
        case .unknown: break
        }
        let line = (contents.last.map { $0 != UInt8(ascii: "\n") } ?? false ? "\n" : "") + "\(hostEntryName) \(type) \(blob)\n"
        var bytes = Array(line.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                guard errno == EINTR else { throw failure(String(cString: strerror(errno))) }
                continue
            }
            bytes = bytes.dropFirst(written)
        }
    }

    /// The bytes of a known_hosts file; none when it does not exist.
    /// - Throws: the `errno` description when it exists but cannot be read.
    static func contents(of path: String) throws(ReadError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            if errno == ENOENT { return [] }
            throw ReadError(errno: errno)
        }
        defer { close(descriptor) }
        return try readAll(descriptor)
    }

    /// Everything from offset 0 of an open file (with `pread`, so an `O_APPEND` descriptor works too).
    private static func readAll(_ descriptor: Int32) throws(ReadError) -> [UInt8] {
        var contents: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, off_t(contents.count)) }
            if count < 0 {
                if errno == EINTR { continue }
                throw ReadError(errno: errno)
            }
            if count == 0 { return contents }
            contents += chunk[..<count]
        }
    }

    /// A failed read of the known_hosts file.
    struct ReadError: Error, CustomStringConvertible {
        var errno: Int32
        var description: String { String(cString: strerror(errno)) }
    }

    /// One known_hosts line.
    struct Entry {
        var marker: String?
        var patterns: [Substring]
        var type: String
        var key: String

        func matches(_ name: String) -> Bool {
            var matched = false
            for pattern in patterns {
                if pattern.hasPrefix("|1|") {
                    if Self.hashedMatches(pattern, name) { matched = true }
                } else if pattern.hasPrefix("!") {
                    if Self.wildcardMatches(pattern.dropFirst(), name) { return false }
                } else if Self.wildcardMatches(pattern, name) {
                    matched = true
                }
            }
            return matched
        }

        /// OpenSSH patterns: `*` is any run of characters, `?` any one character; nothing else is special
        /// (so `[host]:port` is literal). Case-insensitive, as host names are.
        static func wildcardMatches(_ pattern: Substring, _ name: String) -> Bool {
            let pattern = Array(pattern.lowercased()), name = Array(name.lowercased())
            var p = 0, n = 0, star: Int?, resume = 0
            while n < name.count {
                if p < pattern.count && (pattern[p] == "?" || pattern[p] == name[n]) {
                    p += 1
                    n += 1
                } else if p < pattern.count && pattern[p] == "*" {
                    star = p
                    resume = n
                    p += 1
                } else if let star {
                    p = star + 1
                    resume += 1
                    n = resume
                } else {
                    return false
                }
            }
            while p < pattern.count && pattern[p] == "*" { p += 1 }
            return p == pattern.count
        }

        /// `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`.
        static func hashedMatches(_ pattern: Substring, _ name: String) -> Bool {
            let parts = pattern.split(separator: "|")
            guard parts.count == 3, let salt = Data(base64Encoded: String(parts[1])),
                  let expected = Data(base64Encoded: String(parts[2])) else { return false }
            let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Data(name.utf8), using: SymmetricKey(data: salt))
            return Data(mac) == expected
        }
    }

    /// Parses known_hosts bytes as OpenSSH does: line by line, fields separated by spaces or tabs, comments and
    /// malformed lines skipped. Bytes that are not UTF-8 (a Latin-1 comment, a damaged line) affect only their
    /// own line, never the others.
    static func entries(_ bytes: [UInt8]) -> [Entry] {
        bytes.split(separator: UInt8(ascii: "\n")).compactMap { line in
            var fields = line.split(whereSeparator: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\r") })
                .map { String(decoding: $0, as: UTF8.self) }
            guard let first = fields.first, !first.hasPrefix("#") else { return nil }
            var marker: String?
            if first.hasPrefix("@") {
                marker = first
                fields.removeFirst()
            }
            guard fields.count >= 3 else { return nil }
            return Entry(marker: marker, patterns: fields[0].split(separator: ","), type: fields[1], key: fields[2])
        }
    }
}
