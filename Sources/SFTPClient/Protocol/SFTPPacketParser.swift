import NIOCore

/// Splits the server's byte stream into packets (uint32 length, then that many bytes) and decodes each one
/// into an ``SFTPResponse``. Bytes may arrive in any fragments.
struct SFTPPacketParser {
    /// The largest packet accepted: OpenSSH's own limit (256 KiB) plus room for headers.
    static let defaultMaximumPacketLength = 256 * 1024 + 1024

    private var buffer: ByteBuffer
    private let maximumPacketLength: Int

    init(maximumPacketLength: Int = Self.defaultMaximumPacketLength) {
        self.buffer = ByteBuffer()
        self.maximumPacketLength = maximumPacketLength
    }

    /// Adds bytes received from the channel.
    mutating func append(_ bytes: ByteBuffer) {
        var bytes = bytes
        buffer.writeBuffer(&bytes)
    }

    /// The next complete response, or `nil` until more bytes arrive.
    /// - Throws: ``SFTPProtocolError`` for an oversized, empty or malformed packet; the stream is unusable then.
    mutating func nextResponse() throws(SFTPProtocolError) -> SFTPResponse? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        guard length > 0 else { throw SFTPProtocolError(reason: "a packet of length 0") }
        guard length <= maximumPacketLength else {
            throw SFTPProtocolError(reason: "a packet of \(length) bytes exceeds the limit of \(maximumPacketLength)")
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        var packet = buffer.readSlice(length: Int(length))!
        buffer.discardReadBytes()
        return try Self.decode(&packet)
    }

    /// Decodes one packet body (type byte onwards).
    static func decode(_ packet: inout ByteBuffer) throws(SFTPProtocolError) -> SFTPResponse {
        let rawType = try packet.readSFTP(UInt8.self, "type")
        guard let type = SFTPPacketType(rawValue: rawType) else {
            throw SFTPProtocolError(reason: "unknown packet type \(rawType)")
        }
        let response: SFTPResponse
        switch type {
        case .version:
            let version = try packet.readSFTP(UInt32.self, "version")
            var extensions: [(name: String, data: String)] = []
            while packet.readableBytes > 0 {
                extensions.append((try packet.readSFTPString("extension name"), try packet.readSFTPString("extension data")))
            }
            return .version(version: version, extensions: extensions)
        case .status:
            let id = try packet.readSFTP(UInt32.self, "id")
            let code = SFTPStatusCode(try packet.readSFTP(UInt32.self, "status code"))
            // OpenSSH always sends message and language; very old servers omit both.
            let message = packet.readableBytes > 0 ? try packet.readSFTPString("message") : ""
            if packet.readableBytes > 0 { _ = try packet.readSFTPString("language tag") }
            response = .status(id: id, code: code, message: message)
        case .handle:
            let id = try packet.readSFTP(UInt32.self, "id")
            let handle = try packet.readSFTPBytes("handle")
            guard handle.readableBytes <= 256 else { throw SFTPProtocolError(reason: "a handle longer than 256 bytes") }
            response = .handle(id: id, handle: handle)
        case .data:
            response = .data(id: try packet.readSFTP(UInt32.self, "id"), data: try packet.readSFTPBytes("data"))
        case .name:
            let id = try packet.readSFTP(UInt32.self, "id")
            let count = try packet.readSFTP(UInt32.self, "count")
            // Each entry takes at least 12 bytes: bound the count by what the packet can hold before reserving.
            guard Int(count) <= packet.readableBytes / 12 else {
                throw SFTPProtocolError(reason: "\(count) names cannot fit in \(packet.readableBytes) bytes")
            }
            var entries: [SFTPName] = []
            entries.reserveCapacity(Int(count))
            for _ in 0..<count {
                entries.append(SFTPName(filename: try packet.readSFTPString("filename"),
                                        longname: try packet.readSFTPString("longname"),
                                        attributes: try packet.readSFTPAttributes()))
            }
            response = .name(id: id, entries: entries)
        case .attributes:
            response = .attributes(id: try packet.readSFTP(UInt32.self, "id"), attributes: try packet.readSFTPAttributes())
        case .extendedReply:
            let id = try packet.readSFTP(UInt32.self, "id")
            return .extendedReply(id: id, data: packet.readSlice(length: packet.readableBytes)!)
        default:
            throw SFTPProtocolError(reason: "packet type \(type) is not sent by servers")
        }
        guard packet.readableBytes == 0 else {
            throw SFTPProtocolError(reason: "\(packet.readableBytes) unexpected bytes after a \(type) packet")
        }
        return response
    }

    /// Decodes the reply to `limits@openssh.com`.
    static func limits(_ data: ByteBuffer) throws(SFTPProtocolError) -> SFTPLimits {
        var data = data
        return SFTPLimits(maximumPacketLength: try data.readSFTP(UInt64.self, "max packet length"),
                          maximumReadLength: try data.readSFTP(UInt64.self, "max read length"),
                          maximumWriteLength: try data.readSFTP(UInt64.self, "max write length"),
                          maximumOpenHandles: try data.readSFTP(UInt64.self, "max open handles"))
    }
}

extension ByteBuffer {
    mutating func readSFTP<T: FixedWidthInteger>(_ type: T.Type, _ what: String) throws(SFTPProtocolError) -> T {
        guard let value = readInteger(as: T.self) else { throw SFTPProtocolError(reason: "truncated \(what)") }
        return value
    }

    /// An SSH `string`: uint32 length, then bytes (never trusting the length beyond what is there).
    mutating func readSFTPBytes(_ what: String) throws(SFTPProtocolError) -> ByteBuffer {
        let length = try readSFTP(UInt32.self, "length of \(what)")
        guard Int(length) <= readableBytes, let bytes = readSlice(length: Int(length)) else {
            throw SFTPProtocolError(reason: "\(what) of \(length) bytes runs past the packet")
        }
        return bytes
    }

    /// An SSH `string` as UTF-8 text (invalid sequences are replaced, as file names come from other systems).
    mutating func readSFTPString(_ what: String) throws(SFTPProtocolError) -> String {
        var bytes = try readSFTPBytes(what)
        return bytes.readString(length: bytes.readableBytes) ?? ""
    }

    mutating func readSFTPAttributes() throws(SFTPProtocolError) -> SFTPAttributes {
        let flags = SFTPAttributes.Flags(rawValue: try readSFTP(UInt32.self, "attribute flags"))
        var attributes = SFTPAttributes()
        if flags.contains(.size) { attributes.size = try readSFTP(UInt64.self, "size") }
        if flags.contains(.uidgid) {
            attributes.uid = try readSFTP(UInt32.self, "uid")
            attributes.gid = try readSFTP(UInt32.self, "gid")
        }
        if flags.contains(.permissions) { attributes.permissions = try readSFTP(UInt32.self, "permissions") }
        if flags.contains(.accessModificationTime) {
            attributes.accessTime = try readSFTP(UInt32.self, "atime")
            attributes.modificationTime = try readSFTP(UInt32.self, "mtime")
        }
        if flags.contains(.extended) {
            let count = try readSFTP(UInt32.self, "extended count")
            guard Int(count) <= readableBytes / 8 else {
                throw SFTPProtocolError(reason: "\(count) extended attributes cannot fit in the packet")
            }
            for _ in 0..<count {
                attributes.extended.append((try readSFTPString("extended type"), try readSFTPString("extended data")))
            }
        }
        return attributes
    }
}
