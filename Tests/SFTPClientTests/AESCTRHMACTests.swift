import Crypto
import NIOCore
import NIOSSH
import Testing
@testable import SFTPClient

/// The AES-CTR + HMAC-SHA-256 transport protections against themselves (one side's outbound keys are the other's
/// inbound): packets round-trip across many packets (the counter runs on), and a packet changed in transit fails
/// its MAC. (Against a real server: OtherServersTests, an sshd offering only these.)
@Suite struct AESCTRHMACTests {
    static func keys(_ keyBytes: Int, swapped: Bool) -> NIOSSHSessionKeys {
        let ivA = (0..<16).map { UInt8($0) }, ivB = (0..<16).map { UInt8(255 - $0) }
        func bytes(_ count: Int, _ factor: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* factor) } }
        let keyA = SymmetricKey(data: bytes(keyBytes, 3)), keyB = SymmetricKey(data: bytes(keyBytes, 5))
        let macA = SymmetricKey(data: bytes(32, 7)), macB = SymmetricKey(data: bytes(32, 11))
        return swapped
            ? NIOSSHSessionKeys(initialInboundIV: ivB, initialOutboundIV: ivA, inboundEncryptionKey: keyB,
                                outboundEncryptionKey: keyA, inboundMACKey: macB, outboundMACKey: macA)
            : NIOSSHSessionKeys(initialInboundIV: ivA, initialOutboundIV: ivB, inboundEncryptionKey: keyA,
                                outboundEncryptionKey: keyB, inboundMACKey: macA, outboundMACKey: macB)
    }

    /// A packet as swift-nio-ssh lays it out before encryption: length, padding length, payload, padding.
    static func packet(_ payload: [UInt8], lengthEncrypted: Bool) -> ByteBuffer {
        let counted = payload.count + 1 + (lengthEncrypted ? 4 : 0)
        var padding = 16 - counted % 16
        if padding < 4 { padding += 16 }
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(1 + payload.count + padding))
        buffer.writeInteger(UInt8(padding))
        buffer.writeBytes(payload)
        buffer.writeBytes([UInt8](repeating: 0xA5, count: padding))
        return buffer
    }

    static var schemes: [(any NIOSSHTransportProtection.Type, Int)] { [
        (AESCTRHMAC<AES128, HMACSHA256>.self, 16), (AESCTRHMAC<AES256, HMACSHA256>.self, 32),
        (AESCTRHMAC<AES128, HMACSHA256ETM>.self, 16), (AESCTRHMAC<AES256, HMACSHA256ETM>.self, 32),
    ] }

    @Test(arguments: 0..<4)
    func packetsRoundTripAndATamperedOneFailsItsMAC(_ index: Int) throws {
        let (scheme, keyBytes) = Self.schemes[index]
        let sender = try scheme.init(initialKeys: Self.keys(keyBytes, swapped: true))
        let receiver = try scheme.init(initialKeys: Self.keys(keyBytes, swapped: false))
        for (sequence, size) in [1, 15, 16, 200, 33_000, 7].enumerated() {
            let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &+ sequence) }
            var wire = Self.packet(payload, lengthEncrypted: sender.lengthEncrypted)
            try sender.encryptPacket(&wire, sequenceNumber: UInt32(sequence))
            #expect(wire.getBytes(at: wire.readerIndex + 5, length: size) != payload, "the payload is encrypted")
            try receiver.decryptFirstBlock(&wire)
            #expect(wire.getInteger(at: wire.readerIndex, as: UInt32.self).map { Int($0) + 4 + 32 } == wire.readableBytes)
            var received = try receiver.decryptAndVerifyRemainingPacket(&wire, sequenceNumber: UInt32(sequence))
            #expect(received.readBytes(length: received.readableBytes) == payload)
        }
        var tampered = Self.packet([1, 2, 3, 4, 5], lengthEncrypted: sender.lengthEncrypted)
        try sender.encryptPacket(&tampered, sequenceNumber: 6)
        let at = tampered.readerIndex + 20
        tampered.setInteger(tampered.getInteger(at: at, as: UInt8.self)! ^ 0x01, at: at)
        try receiver.decryptFirstBlock(&tampered)
        #expect(throws: SFTPError.self) { _ = try receiver.decryptAndVerifyRemainingPacket(&tampered, sequenceNumber: 6) }
    }
}
