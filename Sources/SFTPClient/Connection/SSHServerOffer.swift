import NIOCore
import NIOPosix

/// What an SSH server offers, read from its identification line and its first key-exchange message (RFC 4253
/// §4.2 and §7.1), which it sends in clear before any key is exchanged: enough to tell which algorithms a client
/// has in common with it, without logging in. Everything here comes from the server: names are bounded in number
/// and length and kept to printable ASCII, and the packet is bounded in size.
public struct SSHServerOffer: Sendable, Equatable {
    /// The server's identification line (`SSH-2.0-OpenSSH_9.2p1 …`), without its line end.
    public var version: String
    /// Key exchange methods, in the server's order.
    public var keyExchange: [String]
    /// Host key algorithms.
    public var hostKeys: [String]
    /// Ciphers from the server to the client.
    public var ciphers: [String]
    /// MACs from the server to the client.
    public var macs: [String]

    /// Creates an offer (tests; ``read(host:port:timeout:group:)`` reads a real one).
    public init(version: String, keyExchange: [String], hostKeys: [String], ciphers: [String], macs: [String]) {
        self.version = version
        self.keyExchange = keyExchange
        self.hostKeys = hostKeys
        self.ciphers = ciphers
        self.macs = macs
    }

    /// Key exchange methods the native engine speaks (swift-nio-ssh's).
    public static let nativeKeyExchange = ["curve25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp256",
                                           "ecdh-sha2-nistp384", "ecdh-sha2-nistp521"]
    /// Host key algorithms the native engine verifies (swift-nio-ssh's).
    public static let nativeHostKeys = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"]
    /// Ciphers the native engine speaks, with the MACs each needs (none: an AEAD cipher).
    public static var nativeCiphers: [(cipher: String, mac: String?)] {
        transportProtectionSchemes.map { ($0.cipherName, $0.macName) }
    }

    /// What the native engine and this server have in common, or why they have nothing.
    public var nativeMatch: Result<(keyExchange: String, hostKey: String, cipher: String), NoCommonAlgorithm> {
        guard let kex = keyExchange.first(where: Self.nativeKeyExchange.contains) else {
            return .failure(NoCommonAlgorithm(what: "key exchange method", offered: keyExchange))
        }
        guard let hostKey = hostKeys.first(where: Self.nativeHostKeys.contains) else {
            return .failure(NoCommonAlgorithm(what: "host key algorithm", offered: hostKeys))
        }
        // The client's order decides (RFC 4253 §7.1): the native engine's first cipher the server offers, with a
        // MAC it offers when the cipher needs one.
        let cipher = Self.nativeCiphers.first { scheme in
            ciphers.contains(scheme.cipher) && scheme.mac.map(macs.contains) ?? true
        }
        guard let cipher else {
            return .failure(NoCommonAlgorithm(what: "cipher and MAC", offered: ciphers + macs))
        }
        return .success((kex, hostKey, cipher.cipher + (cipher.mac.map { " + " + $0 } ?? "")))
    }

    /// No algorithm of one kind in common.
    public struct NoCommonAlgorithm: Error, Sendable, Equatable, CustomStringConvertible {
        /// The kind: "host key algorithm", …
        public var what: String
        /// What the server offers of that kind.
        public var offered: [String]
        public var description: String {
            "the server offers no \(what) the native engine speaks (only \(offered.joined(separator: ", ")))"
        }
    }

    /// Names kept per list at most, and their longest length.
    static let maxNames = 64, maxNameLength = 64
    /// The largest packet read (RFC 4253 §6.1's minimum a client must accept).
    static let maxPacket = 35_000
    /// Lines a server may send before its identification line (RFC 4253 §4.2 allows some), and their total.
    static let maxPreambleBytes = 16_384

    /// Connects to `host`:`port`, reads the offer and closes: no key exchange, no login.
    /// - Throws: ``SFTPError``: `connectionFailed`, `timedOut` (nothing complete within `timeout`), `protocolError`
    ///   (not an SSH server, or a malformed offer).
    public static func read(host: String, port: Int, timeout: Duration = .seconds(10),
                            group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton)
        async throws(SFTPError) -> SSHServerOffer
    {
        let address = "\(host):\(port)"
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(TimeAmount(timeout))
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            if case ChannelError.connectTimeout = error {
                throw SFTPError(.timedOut, "connecting to \(address) timed out after \(timeout)")
            }
            throw SFTPError(.connectionFailed, "cannot connect to \(address): \(error)")
        }
        do {
            return try await withTimeout(timeout, onTimeout: { channel.channel.close(promise: nil) }) {
                try await channel.executeThenClose { inbound, outbound in
                    try await outbound.write(ByteBuffer(string: "SSH-2.0-kafkasync_probe\r\n"))
                    var received = ByteBuffer()
                    for try await chunk in inbound {
                        received.writeImmutableBuffer(chunk)
                        if let offer = try parse(received) { return offer }
                    }
                    throw SFTPError(.protocolError, "\(address) closed the connection before it sent its offer")
                }
            }
        } catch let error as SFTPError {
            throw error
        } catch is HandshakeTimedOut {
            throw SFTPError(.timedOut, "\(address) sent no SSH key exchange offer within \(timeout)")
        } catch {
            throw SFTPError(.connectionLost, "reading the SSH offer of \(address) failed: \(error)")
        }
    }

    /// The offer in `bytes` (what the server sent from the start), or `nil` while it is incomplete.
    /// - Throws: ``SFTPError`` `protocolError` for anything that is not an SSH 2 identification and KEXINIT.
    static func parse(_ bytes: ByteBuffer) throws(SFTPError) -> SSHServerOffer? {
        var buffer = bytes
        // The identification line, after any other lines (each ends with LF; CR before it is optional).
        var version: String?
        while version == nil {
            guard let end = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
                guard buffer.readerIndex + buffer.readableBytes <= maxPreambleBytes else {
                    throw SFTPError(.protocolError, "the server sent \(maxPreambleBytes) bytes without an SSH identification line")
                }
                return nil
            }
            var line = buffer.readBytes(length: end - buffer.readerIndex + 1)!.dropLast()
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            if line.starts(with: Array("SSH-".utf8)) {
                guard line.starts(with: Array("SSH-2.0-".utf8)) || line.starts(with: Array("SSH-1.99-".utf8)) else {
                    throw SFTPError(.protocolError, "the server speaks \(printable(line.prefix(32))), not SSH 2")
                }
                version = printable(line.prefix(255))
            } else if buffer.readerIndex > maxPreambleBytes {
                throw SFTPError(.protocolError, "the server sent \(maxPreambleBytes) bytes without an SSH identification line")
            }
        }
        // The binary packet: length, padding length, payload (SSH_MSG_KEXINIT = 20), padding.
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        guard length >= 5, length <= maxPacket else {
            throw SFTPError(.protocolError, "the server's first packet claims \(length) bytes (at most \(maxPacket))")
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        var packet = buffer.readSlice(length: Int(length))!
        let padding = Int(packet.readInteger(as: UInt8.self)!)
        guard padding < packet.readableBytes, var payload = packet.readSlice(length: packet.readableBytes - padding),
              payload.readInteger(as: UInt8.self) == 20, payload.readSlice(length: 16) != nil else {
            throw SFTPError(.protocolError, "the server's first packet is not a key exchange offer (KEXINIT)")
        }
        var lists: [[String]] = []
        for _ in 0..<6 {
            guard let count = payload.readInteger(as: UInt32.self), count <= payload.readableBytes,
                  let text = payload.readSlice(length: Int(count)) else {
                throw SFTPError(.protocolError, "the server's key exchange offer is truncated")
            }
            let names = text.readableBytesView.split(separator: UInt8(ascii: ","))
            lists.append(names.prefix(maxNames).map { printable($0.prefix(maxNameLength)) })
        }
        // Lists 2 and 4 are client-to-server cipher and MAC; a download reads what the server sends.
        return SSHServerOffer(version: version!, keyExchange: lists[0], hostKeys: lists[1], ciphers: lists[3], macs: lists[5])
    }

    /// Bytes from the server as text: printable ASCII kept, anything else as `?`.
    private static func printable<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> String {
        String(decoding: bytes.map { (0x20...0x7E).contains($0) ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
    }
}
