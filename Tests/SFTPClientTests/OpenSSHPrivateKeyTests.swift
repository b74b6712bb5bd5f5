import Foundation
import NIOSSH
import TestSupport
import Testing
@testable import SFTPClient

/// Keys made by the real ssh-keygen, parsed, and checked against the public key ssh-keygen wrote beside them.
@Suite struct OpenSSHPrivateKeyTests {
    func keygen(_ arguments: [String], in directory: TemporaryDirectory, name: String) async throws -> String {
        let path = directory.file(name)
        let result = try await runProcess("ssh-keygen", ["-q", "-f", path, "-C", "test"] + arguments)
        #expect(result.status == 0, "\(result.stderr)")
        return path
    }

    static let supported: [(String, [String])] = [
        ("ed25519", ["-t", "ed25519", "-N", ""]),
        ("ecdsa-256", ["-t", "ecdsa", "-b", "256", "-N", ""]),
        ("ecdsa-384", ["-t", "ecdsa", "-b", "384", "-N", ""]),
        ("ecdsa-521", ["-t", "ecdsa", "-b", "521", "-N", ""]),
        ("ecdsa-256 PEM", ["-t", "ecdsa", "-b", "256", "-N", "", "-m", "PEM"]),
        ("ecdsa-384 PKCS8", ["-t", "ecdsa", "-b", "384", "-N", "", "-m", "PKCS8"]),
    ]

    @Test(arguments: supported.indices)
    func parsedKeyMatchesItsPublicKey(_ index: Int) async throws {
        let (label, arguments) = Self.supported[index]
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try await keygen(arguments, in: directory, name: "key")
        let key = try OpenSSHPrivateKey.parse(try String(contentsOfFile: path, encoding: .utf8), name: path)
        let expected = try String(contentsOfFile: path + ".pub", encoding: .utf8).split(separator: " ").prefix(2)
            .joined(separator: " ")
        #expect(String(openSSHPublicKey: key.publicKey) == expected, "\(label)")
    }

    static let refused: [(String, [String], String)] = [
        ("RSA", ["-t", "rsa", "-b", "2048", "-N", ""], "unsupported_key"),
        ("RSA PEM", ["-t", "rsa", "-b", "2048", "-N", "", "-m", "PEM"], "unsupported_key"),
        ("passphrase ed25519", ["-t", "ed25519", "-N", "secret-passphrase"], "unsupported_key"),
        ("passphrase ecdsa PEM", ["-t", "ecdsa", "-N", "secret-passphrase", "-m", "PEM"], "unsupported_key"),
    ]

    @Test(arguments: refused.indices)
    func unusableKeysAreClearErrors(_ index: Int) async throws {
        let (_, arguments, code) = Self.refused[index]
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try await keygen(arguments, in: directory, name: "key")
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect { try OpenSSHPrivateKey.parse(text, name: path) } throws: { error in
            guard let error = error as? SFTPError else { return false }
            return error.code.description == code && error.message.contains(path) && error.message.contains("lftp")
                && !error.message.contains("secret-passphrase")
        }
    }

    @Test func damagedKeysAreUnreadable() throws {
        for text in ["", "hello", "-----BEGIN OPENSSH PRIVATE KEY-----\n!!!\n-----END OPENSSH PRIVATE KEY-----\n",
                     "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----\n"] {
            #expect { try OpenSSHPrivateKey.parse(text, name: "k") } throws: {
                ($0 as? SFTPError)?.code == .unreadableKey
            }
        }
    }
}
