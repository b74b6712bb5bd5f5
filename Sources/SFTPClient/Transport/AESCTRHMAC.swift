import Crypto
import CryptoExtras
import Foundation
import NIOCore
import NIOSSH

/// `aes128-ctr` / `aes256-ctr` with `hmac-sha2-256`, and its encrypt-then-MAC form (`hmac-sha2-256-etm@openssh.com`),
/// as RFC 4344, RFC 6668 and OpenSSH's PROTOCOL define them: for servers that offer no AES-GCM (older ones,
/// appliances). swift-nio-ssh bundles only AES-GCM; these plug in through its public `NIOSSHTransportProtection`.
/// AES-GCM stays preferred: these come after it in the offer. Not `hmac-sha2-512`: its 64-byte key is longer than
/// the SHA-256 digest of curve25519 key exchange, and swift-nio-ssh derives keys without RFC 4253's extension (it
/// asserts the key fits one digest), so it could not key it.
///
/// CTR mode keeps one counter per direction across packets (every packet is a whole number of blocks). Without
/// encrypt-then-MAC the length is encrypted and the MAC covers the sequence number and the plaintext packet; with it
/// the length travels in clear and the MAC covers the sequence number, the length and the ciphertext, checked
/// before anything is decrypted. A MAC mismatch is an error: the connection fails.
///
/// One generic class, as swift-nio-ssh negotiates by type: `AESCTRHMAC<AES128, HMACSHA256ETM>` and its three
/// siblings. Mutable state used only on its connection's event loop, as swift-nio-ssh's own AES-GCM protections.
final class AESCTRHMAC<Key: AESCTRKeySize, MAC: AESCTRMACForm>: NIOSSHTransportProtection {
    static var cipherName: String { Key.cipherName }
    static var macName: String? { MAC.name }
    static var cipherBlockSize: Int { 16 }
    static var keySizes: ExpectedKeySizes { ExpectedKeySizes(ivSize: 16, encryptionKeySize: Key.bytes, macKeySize: 32) }

    /// HMAC-SHA-256's length.
    private let macBytesCount = 32
    private let encryptThenMAC = MAC.encryptThenMAC
    private var inbound: Direction
    private var outbound: Direction

    /// The state of one direction: its key, its counter block and its MAC key.
    private struct Direction {
        var key: SymmetricKey
        var counter: [UInt8]
        var macKey: SymmetricKey

        /// XORs `count` bytes of `buffer` at `index` with the key stream, and moves the counter past them.
        mutating func apply(_ buffer: inout ByteBuffer, at index: Int, count: Int) throws {
            guard count > 0 else { return }
            let input = buffer.getBytes(at: index, length: count)!
            let output = try AES._CTR.encrypt(input, using: key, nonce: try AES._CTR.Nonce(nonceBytes: counter))
            buffer.setBytes(output, at: index)
            advance(by: count / 16)
        }

        /// The counter is a 128-bit big-endian number.
        private mutating func advance(by blocks: Int) {
            var carry = UInt64(blocks)
            for index in stride(from: 15, through: 0, by: -1) where carry > 0 {
                let sum = UInt64(counter[index]) + (carry & 0xFF)
                counter[index] = UInt8(truncatingIfNeeded: sum)
                carry = (carry >> 8) + (sum >> 8)
            }
        }
    }

    init(initialKeys keys: NIOSSHSessionKeys) throws {
        guard keys.inboundEncryptionKey.bitCount == Key.bytes * 8, keys.outboundEncryptionKey.bitCount == Key.bytes * 8,
              keys.initialInboundIV.count == 16, keys.initialOutboundIV.count == 16 else {
            throw SFTPError(.protocolError, "the SSH key exchange gave an AES-CTR key or IV of the wrong size")
        }
        inbound = Direction(key: keys.inboundEncryptionKey, counter: keys.initialInboundIV, macKey: keys.inboundMACKey)
        outbound = Direction(key: keys.outboundEncryptionKey, counter: keys.initialOutboundIV, macKey: keys.outboundMACKey)
    }

    var macBytes: Int { macBytesCount }
    var lengthEncrypted: Bool { !encryptThenMAC }

    func updateKeys(_ newKeys: NIOSSHSessionKeys) throws {
        inbound = Direction(key: newKeys.inboundEncryptionKey, counter: newKeys.initialInboundIV, macKey: newKeys.inboundMACKey)
        outbound = Direction(key: newKeys.outboundEncryptionKey, counter: newKeys.initialOutboundIV,
                             macKey: newKeys.outboundMACKey)
    }

    func decryptFirstBlock(_ source: inout ByteBuffer) throws {
        // With encrypt-then-MAC the length is in clear; otherwise the first block holds it.
        guard !encryptThenMAC else { return }
        try inbound.apply(&source, at: source.readerIndex, count: 16)
    }

    func decryptAndVerifyRemainingPacket(_ source: inout ByteBuffer, sequenceNumber: UInt32) throws -> ByteBuffer {
        let start = source.readerIndex
        let packetBytes = source.readableBytes - macBytesCount  // length field, padding length, payload, padding
        guard packetBytes >= 16 + (encryptThenMAC ? 4 : 0),
              (packetBytes - (encryptThenMAC ? 4 : 0)) % 16 == 0 else {
            throw SFTPError(.protocolError, "the server sent an SSH packet of \(packetBytes) bytes, not whole AES blocks")
        }
        let received = source.getBytes(at: start + packetBytes, length: macBytesCount)!
        if encryptThenMAC {
            try verify(received, over: source.getBytes(at: start, length: packetBytes)!, sequenceNumber: sequenceNumber)
            try inbound.apply(&source, at: start + 4, count: packetBytes - 4)
        } else {
            // The first block was decrypted by decryptFirstBlock.
            try inbound.apply(&source, at: start + 16, count: packetBytes - 16)
            try verify(received, over: source.getBytes(at: start, length: packetBytes)!, sequenceNumber: sequenceNumber)
        }
        source.moveReaderIndex(forwardBy: 4)
        guard let paddingLength = source.readInteger(as: UInt8.self),
              Int(paddingLength) >= 4, Int(paddingLength) + 1 <= packetBytes - 4 else {
            throw SFTPError(.protocolError, "the server sent an SSH packet with an impossible padding length")
        }
        let payload = source.readSlice(length: packetBytes - 4 - 1 - Int(paddingLength))!
        source.moveReaderIndex(forwardBy: Int(paddingLength) + macBytesCount)
        return payload
    }

    func encryptPacket(_ destination: inout ByteBuffer, sequenceNumber: UInt32) throws {
        let start = destination.readerIndex
        let packetBytes = destination.readableBytes
        if encryptThenMAC {
            try outbound.apply(&destination, at: start + 4, count: packetBytes - 4)
            destination.writeBytes(mac(over: destination.getBytes(at: start, length: packetBytes)!, sequenceNumber: sequenceNumber,
                                       key: outbound.macKey))
        } else {
            let tag = mac(over: destination.getBytes(at: start, length: packetBytes)!, sequenceNumber: sequenceNumber,
                          key: outbound.macKey)
            try outbound.apply(&destination, at: start, count: packetBytes)
            destination.writeBytes(tag)
        }
    }

    private func verify(_ received: [UInt8], over bytes: [UInt8], sequenceNumber: UInt32) throws {
        let expected = mac(over: bytes, sequenceNumber: sequenceNumber, key: inbound.macKey)
        // Compared in constant time.
        guard received.count == expected.count,
              zip(received, expected).reduce(UInt8(0), { $0 | ($1.0 ^ $1.1) }) == 0 else {
            throw SFTPError(.protocolError, "an SSH packet from the server failed its MAC check")
        }
    }

    private func mac(over bytes: [UInt8], sequenceNumber: UInt32, key: SymmetricKey) -> [UInt8] {
        var sequence = sequenceNumber.bigEndian
        let prefix = withUnsafeBytes(of: &sequence) { Array($0) }
        var hmac = HMAC<SHA256>(key: key)
        hmac.update(data: prefix)
        hmac.update(data: bytes)
        return Array(hmac.finalize())
    }
}

/// An AES key length of ``AESCTRHMAC``.
protocol AESCTRKeySize {
    static var bytes: Int { get }
    static var cipherName: String { get }
}

/// The MAC form of ``AESCTRHMAC``: HMAC-SHA-256 over the plaintext, or encrypt-then-MAC.
protocol AESCTRMACForm {
    static var name: String { get }
    static var encryptThenMAC: Bool { get }
}

enum AES128: AESCTRKeySize { static let bytes = 16, cipherName = "aes128-ctr" }
enum AES256: AESCTRKeySize { static let bytes = 32, cipherName = "aes256-ctr" }
enum HMACSHA256: AESCTRMACForm { static let name = "hmac-sha2-256", encryptThenMAC = false }
enum HMACSHA256ETM: AESCTRMACForm { static let name = "hmac-sha2-256-etm@openssh.com", encryptThenMAC = true }

/// What the native engine offers, in order of preference: AES-GCM first (swift-nio-ssh's own), then CTR with
/// encrypt-then-MAC, then CTR with MAC-then-encrypt.
var transportProtectionSchemes: [NIOSSHTransportProtection.Type] {
    Constants.bundledTransportProtectionSchemes.map { $0 } + [
        AESCTRHMAC<AES256, HMACSHA256ETM>.self, AESCTRHMAC<AES128, HMACSHA256ETM>.self,
        AESCTRHMAC<AES256, HMACSHA256>.self, AESCTRHMAC<AES128, HMACSHA256>.self,
    ]
}
