import Crypto
import Foundation
import NIOCore
import NIOSSH

/// Reads private key files as `ssh-keygen` writes them: the OpenSSH format (`openssh-key-v1`, ed25519 and
/// ECDSA P-256/384/521, unencrypted) and PEM ECDSA keys (`-m PEM`, PKCS#8). Anything else is a clear error.
public enum OpenSSHPrivateKey {
    /// Parses the text of a private key file.
    /// - Parameter name: how to refer to the key in errors (its path).
    /// - Throws: ``SFTPError`` `unreadableKey` or `unsupportedKey`, never showing key material.
    public static func parse(_ text: String, name: String) throws(SFTPError) -> NIOSSHPrivateKey {
        if text.contains("-----BEGIN OPENSSH PRIVATE KEY-----") {
            return try parseOpenSSH(try armoredBody(text, label: "OPENSSH PRIVATE KEY", name: name), name: name)
        }
        if text.contains("-----BEGIN EC PRIVATE KEY-----") || text.contains("-----BEGIN PRIVATE KEY-----") {
            if let key = try? P256.Signing.PrivateKey(pemRepresentation: text) { return NIOSSHPrivateKey(p256Key: key) }
            if let key = try? P384.Signing.PrivateKey(pemRepresentation: text) { return NIOSSHPrivateKey(p384Key: key) }
            if let key = try? P521.Signing.PrivateKey(pemRepresentation: text) { return NIOSSHPrivateKey(p521Key: key) }
            throw SFTPError(.unsupportedKey, "\(name) is a PEM key but not an ECDSA P-256/384/521 key: use an ed25519 or ECDSA key, or engine = \"lftp\"")
        }
        if text.contains("-----BEGIN RSA PRIVATE KEY-----") {
            throw SFTPError(.unsupportedKey, "\(name) is an RSA key, which the native engine cannot use: create an ed25519 key (ssh-keygen -t ed25519) or set engine = \"lftp\" for this remote")
        }
        if text.contains("ENCRYPTED") {
            throw encrypted(name)
        }
        throw SFTPError(.unreadableKey, "\(name) is not an OpenSSH or PEM private key")
    }

    private static func encrypted(_ name: String) -> SFTPError {
        SFTPError(.unsupportedKey, "\(name) is protected by a passphrase, which the native engine cannot decrypt yet: remove it (ssh-keygen -p -N \"\" -f KEY) for a key only this service reads, or set engine = \"lftp\" for this remote")
    }

    private static func armoredBody(_ text: String, label: String, name: String) throws(SFTPError) -> ByteBuffer {
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        guard let start = lines.firstIndex(of: "-----BEGIN \(label)-----"),
              let end = lines.firstIndex(of: "-----END \(label)-----"), start < end,
              let data = Data(base64Encoded: lines[(start + 1)..<end].joined()) else {
            throw SFTPError(.unreadableKey, "\(name) has a damaged \(label) block")
        }
        return ByteBuffer(bytes: data)
    }

    /// `openssh-key-v1` (OpenSSH PROTOCOL.key).
    private static func parseOpenSSH(_ blob: ByteBuffer, name: String) throws(SFTPError) -> NIOSSHPrivateKey {
        var blob = blob
        let damaged = SFTPError(.unreadableKey, "\(name) is a damaged OpenSSH private key")
        let magic = Array("openssh-key-v1\0".utf8)
        guard blob.readBytes(length: magic.count) == magic else { throw damaged }
        do {
            let cipher = try blob.readSFTPString("cipher")
            let kdf = try blob.readSFTPString("kdf")
            _ = try blob.readSFTPBytes("kdf options")
            guard cipher == "none" && kdf == "none" else { throw encrypted(name) }
            guard try blob.readSFTP(UInt32.self, "key count") == 1 else {
                throw SFTPError(.unsupportedKey, "\(name) holds several keys; use a file with one")
            }
            _ = try blob.readSFTPBytes("public key")
            var secret = try blob.readSFTPBytes("private section")
            guard try secret.readSFTP(UInt32.self, "check") == (try secret.readSFTP(UInt32.self, "check")) else {
                throw damaged
            }
            let type = try secret.readSFTPString("key type")
            switch type {
            case "ssh-ed25519":
                _ = try secret.readSFTPBytes("public key")
                let pair = try secret.readSFTPBytes("private key")
                guard pair.readableBytes == 64, let seed = pair.getBytes(at: pair.readerIndex, length: 32) else { throw damaged }
                return NIOSSHPrivateKey(ed25519Key: try Curve25519.Signing.PrivateKey(rawRepresentation: seed))
            case "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521":
                _ = try secret.readSFTPString("curve")
                _ = try secret.readSFTPBytes("public point")
                var scalar = try secret.readSFTPBytes("private scalar")
                // An SSH mpint: drop the sign byte, left-pad to the curve's size.
                var bytes = scalar.readBytes(length: scalar.readableBytes) ?? []
                while bytes.first == 0 { bytes.removeFirst() }
                switch type {
                case "ecdsa-sha2-nistp256":
                    return NIOSSHPrivateKey(p256Key: try P256.Signing.PrivateKey(rawRepresentation: padded(bytes, to: 32)))
                case "ecdsa-sha2-nistp384":
                    return NIOSSHPrivateKey(p384Key: try P384.Signing.PrivateKey(rawRepresentation: padded(bytes, to: 48)))
                default:
                    return NIOSSHPrivateKey(p521Key: try P521.Signing.PrivateKey(rawRepresentation: padded(bytes, to: 66)))
                }
            case "ssh-rsa":
                throw SFTPError(.unsupportedKey, "\(name) is an RSA key, which the native engine cannot use: create an ed25519 key (ssh-keygen -t ed25519) or set engine = \"lftp\" for this remote")
            default:
                throw SFTPError(.unsupportedKey, "\(name) is a \(type) key; the native engine uses ed25519 and ECDSA keys")
            }
        } catch let error as SFTPError {
            throw error
        } catch {
            throw damaged
        }
    }

    private static func padded(_ bytes: [UInt8], to length: Int) -> [UInt8] {
        bytes.count >= length ? bytes : Array(repeating: 0, count: length - bytes.count) + bytes
    }
}

