import Foundation
import NIOCore
import Testing
@testable import SFTPClient

/// Builds bytes from hex with spaces, e.g. `"00 00 00 05 02"`.
func bytes(_ hex: String) -> ByteBuffer {
    let digits = hex.filter { !$0.isWhitespace }
    var buffer = ByteBuffer()
    var index = digits.startIndex
    while index < digits.endIndex {
        let next = digits.index(index, offsetBy: 2)
        buffer.writeInteger(UInt8(digits[index..<next], radix: 16)!)
        index = next
    }
    return buffer
}

/// Hex of an SSH string.
func str(_ text: String) -> String {
    String(format: "%08x", text.utf8.count) + text.utf8.map { String(format: "%02x", $0) }.joined()
}

/// A whole packet: length, then the body given as hex.
func packet(_ body: String) -> ByteBuffer {
    let payload = bytes(body)
    var buffer = ByteBuffer()
    buffer.writeInteger(UInt32(payload.readableBytes))
    buffer.writeImmutableBuffer(payload)
    return buffer
}

@Suite struct SFTPPacketSerializerTests {
    func encoded(_ request: SFTPRequest) -> ByteBuffer {
        var buffer = ByteBuffer()
        SFTPPacketSerializer.write(request, into: &buffer)
        return buffer
    }

    let handle = bytes("de ad be ef")

    @Test func everyRequestHasItsWireForm() {
        #expect(encoded(.initialize(version: 3)) == packet("01 00000003"))
        #expect(encoded(.open(id: 7, path: "/a b", flags: .read, attributes: .empty))
                == packet("03 00000007" + str("/a b") + "00000001" + "00000000"))
        #expect(encoded(.close(id: 8, handle: handle)) == packet("04 00000008 00000004 deadbeef"))
        #expect(encoded(.read(id: 9, handle: handle, offset: 0x1_0000_0000, length: 261_120))
                == packet("05 00000009 00000004 deadbeef 0000000100000000 0003fc00"))
        #expect(encoded(.lstat(id: 10, path: "x")) == packet("07 0000000a" + str("x")))
        #expect(encoded(.fstat(id: 11, handle: handle)) == packet("08 0000000b 00000004 deadbeef"))
        #expect(encoded(.opendir(id: 12, path: "/d")) == packet("0b 0000000c" + str("/d")))
        #expect(encoded(.readdir(id: 13, handle: handle)) == packet("0c 0000000d 00000004 deadbeef"))
        #expect(encoded(.realpath(id: 14, path: ".")) == packet("10 0000000e" + str(".")))
        #expect(encoded(.stat(id: 15, path: "ü")) == packet("11 0000000f 00000002 c3bc"))
        #expect(encoded(.limits(id: 16)) == packet("c8 00000010" + str("limits@openssh.com")))
    }

    @Test func attributesEncodeOnlyWhatIsSet() {
        var attributes = SFTPAttributes()
        attributes.size = 5
        attributes.permissions = 0o100644
        attributes.accessTime = 1
        attributes.modificationTime = 2
        #expect(encoded(.open(id: 1, path: "f", flags: [.write, .create, .truncate], attributes: attributes))
                == packet("03 00000001" + str("f") + "0000001a" + "0000000d 0000000000000005 000081a4 00000001 00000002"))
    }
}

@Suite struct SFTPPacketParserTests {
    /// Every response type, as the bytes a server sends and the message they mean.
    static let fixtures: [(String, ByteBuffer, SFTPResponse)] = [
        ("version with extensions", packet("02 00000003" + str("limits@openssh.com") + str("1") + str("statvfs@openssh.com") + str("2")),
         .version(version: 3, extensions: [("limits@openssh.com", "1"), ("statvfs@openssh.com", "2")])),
        ("version without extensions", packet("02 00000003"), .version(version: 3, extensions: [])),
        ("status ok", packet("65 00000001 00000000" + str("Success") + str("")), .status(id: 1, code: .ok, message: "Success")),
        ("status eof", packet("65 00000002 00000001" + str("End of file") + str("en")), .status(id: 2, code: .endOfFile, message: "End of file")),
        ("status no such file", packet("65 00000003 00000002" + str("No such file") + str("")), .status(id: 3, code: .noSuchFile, message: "No such file")),
        ("status permission denied", packet("65 00000004 00000003" + str("Permission denied") + str("")), .status(id: 4, code: .permissionDenied, message: "Permission denied")),
        ("status unknown code", packet("65 00000005 0000002a" + str("?") + str("")), .status(id: 5, code: .other(42), message: "?")),
        ("status without message", packet("65 00000006 00000004"), .status(id: 6, code: .failure, message: "")),
        ("handle", packet("66 00000007 00000004 deadbeef"), .handle(id: 7, handle: bytes("deadbeef"))),
        ("data", packet("67 00000008 00000003 616263"), .data(id: 8, data: bytes("616263"))),
        ("empty data", packet("67 00000009 00000000"), .data(id: 9, data: ByteBuffer())),
        ("name with two entries", packet("68 0000000a 00000002" + str("a") + str("-rw a") + "00000001 0000000000000010"
                                        + str("dir") + str("drwx dir") + "00000004 000041ed"),
         .name(id: 10, entries: [
            SFTPName(filename: "a", longname: "-rw a", attributes: SFTPAttributes(size: 16)),
            SFTPName(filename: "dir", longname: "drwx dir", attributes: SFTPAttributes(permissions: 0o40755)),
         ])),
        ("attributes, all fields", packet("69 0000000b 8000000f 0000000000000400 000003e8 000003e9 000081a4 00000001 00000002 00000001" + str("t") + str("d")),
         .attributes(id: 11, attributes: SFTPAttributes(size: 1024, uid: 1000, gid: 1001, permissions: 0o100644,
                                                        accessTime: 1, modificationTime: 2, extended: [("t", "d")]))),
        ("extended reply", packet("c9 0000000c 0000000000040000 000000000003fc00 000000000003fc00 0000000000000400"),
         .extendedReply(id: 12, data: bytes("0000000000040000 000000000003fc00 000000000003fc00 0000000000000400"))),
    ]

    @Test(arguments: fixtures.indices)
    func responseFedWholeAndByteByByte(_ index: Int) throws {
        let (_, wire, expected) = Self.fixtures[index]
        var whole = SFTPPacketParser()
        whole.append(wire)
        #expect(try whole.nextResponse() == expected)
        #expect(try whole.nextResponse() == nil)

        var fragmented = SFTPPacketParser()
        var remaining = wire
        var parsed: [SFTPResponse] = []
        while let byte = remaining.readSlice(length: 1) {
            fragmented.append(byte)
            if let response = try fragmented.nextResponse() { parsed.append(response) }
        }
        #expect(parsed == [expected])
    }

    @Test func severalPacketsInOneRead() throws {
        var parser = SFTPPacketParser()
        var wire = packet("66 00000001 00000001 aa")
        wire.writeImmutableBuffer(packet("67 00000002 00000001 bb"))
        wire.writeImmutableBuffer(bytes("00 00 00"))  // the start of a third packet
        parser.append(wire)
        #expect(try parser.nextResponse() == .handle(id: 1, handle: bytes("aa")))
        #expect(try parser.nextResponse() == .data(id: 2, data: bytes("bb")))
        #expect(try parser.nextResponse() == nil)
    }

    @Test func limitsReply() throws {
        let limits = try SFTPPacketParser.limits(bytes("0000000000040000 000000000003fc00 000000000003fc00 0000000000000400"))
        #expect(limits == SFTPLimits(maximumPacketLength: 262_144, maximumReadLength: 261_120,
                                     maximumWriteLength: 261_120, maximumOpenHandles: 1024))
        #expect(throws: SFTPProtocolError.self) { try SFTPPacketParser.limits(bytes("00000000")) }
    }

    /// Packets a broken or hostile server might send: each is an error, never a crash or a huge allocation.
    static let malformed: [(String, ByteBuffer)] = [
        ("zero length", bytes("00000000")),
        ("length over the limit", bytes("7fffffff 65")),
        ("length of 4 GiB", bytes("ffffffff")),
        ("unknown type", packet("ee 00000001")),
        ("client-only type", packet("05 00000001")),
        ("truncated id", packet("66 0000")),
        ("string longer than the packet", packet("66 00000001 ffffffff aa")),
        ("handle too long", packet("66 00000001 00000105" + String(repeating: "00", count: 261))),
        ("name count far beyond the packet", packet("68 00000001 7fffffff")),
        ("name entry truncated", packet("68 00000001 00000001" + str("a"))),
        ("attributes truncated", packet("69 00000001 00000001 0000")),
        ("extended attribute count beyond the packet", packet("69 00000001 80000000 ffffffff")),
        ("trailing bytes", packet("66 00000001 00000001 aa bb")),
        ("version with half an extension", packet("02 00000003" + str("name"))),
    ]

    @Test(arguments: malformed.indices)
    func malformedPacketIsAnError(_ index: Int) {
        var parser = SFTPPacketParser()
        parser.append(Self.malformed[index].1)
        #expect(throws: SFTPProtocolError.self, "\(Self.malformed[index].0)") { try parser.nextResponse() }
    }

    @Test func attributesKnowDirectoriesAndFiles() {
        #expect(SFTPAttributes(permissions: 0o40755).isDirectory)
        #expect(!SFTPAttributes(permissions: 0o40755).isRegularFile)
        #expect(SFTPAttributes(permissions: 0o100644).isRegularFile)
        #expect(!SFTPAttributes().isDirectory)
    }
}
