import Foundation
import NIOCore
import TestSupport
import Testing
@testable import SFTPClient

/// Reading what an SSH server offers before any login (`config check --probe`): from real sshd servers, a silent
/// listener, and crafted bytes from servers that lie.
@Suite struct SSHServerOfferTests {
    /// An identification line and a KEXINIT packet with `lists` as its ten name-lists.
    static func offerBytes(preamble: String = "", version: String = "SSH-2.0-Test_1.0",
                           lists: [String] = ["curve25519-sha256", "ssh-rsa", "aes128-ctr", "aes256-ctr",
                                              "hmac-sha1", "hmac-sha2-256", "none", "none", "", ""]) -> ByteBuffer {
        var payload = ByteBuffer(bytes: [20] + [UInt8](repeating: 7, count: 16))
        for list in lists {
            payload.writeInteger(UInt32(list.utf8.count))
            payload.writeString(list)
        }
        payload.writeBytes([0, 0, 0, 0, 0])
        let padding = 8 - (payload.readableBytes + 5) % 8 + 4
        var bytes = ByteBuffer(string: preamble + version + "\r\n")
        bytes.writeInteger(UInt32(1 + payload.readableBytes + padding))
        bytes.writeInteger(UInt8(padding))
        bytes.writeImmutableBuffer(payload)
        bytes.writeBytes([UInt8](repeating: 0, count: padding))
        return bytes
    }

    @Test func anOfferIsReadWholeAndNotBefore() throws {
        let bytes = Self.offerBytes(preamble: "Welcome\r\nauthorized use only\n")
        for cut in [0, 10, 40, bytes.readableBytes - 1] {
            #expect(try SSHServerOffer.parse(bytes.getSlice(at: 0, length: cut)!) == nil, "incomplete at \(cut)")
        }
        let offer = try #require(try SSHServerOffer.parse(bytes))
        #expect(offer.version == "SSH-2.0-Test_1.0")
        #expect(offer.keyExchange == ["curve25519-sha256"])
        #expect(offer.hostKeys == ["ssh-rsa"])
        #expect(offer.ciphers == ["aes256-ctr"], "the server-to-client list")
        #expect(offer.macs == ["hmac-sha2-256"])
        guard case .failure(let none) = offer.nativeMatch else { Issue.record("ssh-rsa only has no match"); return }
        #expect(none.what == "host key algorithm")
        #expect("\(none)".contains("only ssh-rsa"))
    }

    @Test func theNativeEngineChoosesItsOwnFirstCipherTheServerOffers() throws {
        let offer = SSHServerOffer(version: "SSH-2.0-x", keyExchange: ["diffie-hellman-group14-sha256", "ecdh-sha2-nistp256"],
                                   hostKeys: ["rsa-sha2-512", "ecdsa-sha2-nistp256"],
                                   ciphers: ["aes128-ctr", "aes256-gcm@openssh.com"], macs: ["hmac-sha2-256"])
        let match = try offer.nativeMatch.get()
        #expect(match.keyExchange == "ecdh-sha2-nistp256" && match.hostKey == "ecdsa-sha2-nistp256")
        #expect(match.cipher == "aes256-gcm@openssh.com")
        var ctrOnly = offer
        ctrOnly.ciphers = ["aes128-ctr"]
        #expect(try ctrOnly.nativeMatch.get().cipher == "aes128-ctr + hmac-sha2-256", "a MAC the server offers")
        ctrOnly.macs = ["hmac-sha2-256-etm@openssh.com", "hmac-sha2-256"]
        #expect(try ctrOnly.nativeMatch.get().cipher == "aes128-ctr + hmac-sha2-256-etm@openssh.com", "encrypt-then-MAC first")
        ctrOnly.macs = ["hmac-sha1"]
        guard case .failure(let none) = ctrOnly.nativeMatch else { Issue.record("no MAC in common"); return }
        #expect(none.what == "cipher and MAC")
    }

    @Test(arguments: [
        ("SSH-1.5-old\r\n", "not SSH 2"),
        (String(repeating: "x", count: 20_000), "without an SSH identification line"),
        (String(repeating: "banner line\r\n", count: 2_000), "without an SSH identification line"),
    ])
    func somethingElseThanAnSSH2ServerIsAProtocolError(_ text: String, _ expected: String) throws {
        #expect { try SSHServerOffer.parse(ByteBuffer(string: text)) } throws: { error in
            (error as? SFTPError)?.code == .protocolError && "\(error)".contains(expected)
        }
    }

    @Test func aLyingPacketIsAProtocolErrorAndNamesAreBounded() throws {
        var huge = ByteBuffer(string: "SSH-2.0-liar\r\n")
        huge.writeInteger(UInt32(1 << 30))
        #expect(throws: SFTPError.self) { try SSHServerOffer.parse(huge) }

        var notKexinit = Self.offerBytes()
        let start = "SSH-2.0-Test_1.0\r\n".utf8.count + 5
        notKexinit.setInteger(UInt8(21), at: start)
        #expect { try SSHServerOffer.parse(notKexinit) } throws: { "\($0)".contains("not a key exchange offer") }

        // A list that claims more than the packet holds.
        var truncated = Self.offerBytes()
        truncated.setInteger(UInt32(5_000), at: start + 17)
        #expect { try SSHServerOffer.parse(truncated) } throws: { "\($0)".contains("truncated") }

        let many = (0..<150).map { "alg\($0)-" + String(repeating: "z", count: 180) + "\u{7}" }.joined(separator: ",")
        let offer = try #require(try SSHServerOffer.parse(Self.offerBytes(
            version: "SSH-2.0-\u{1B}[31mred", lists: [many, "ssh-ed25519", "a", "a", "m", "m", "none", "none", "", ""])))
        #expect(offer.keyExchange.count == SSHServerOffer.maxNames)
        #expect(offer.keyExchange.allSatisfy { $0.utf8.count <= SSHServerOffer.maxNameLength })
        #expect(offer.version == "SSH-2.0-?[31mred", "control characters from the server are not printed")
    }

    @Test(arguments: ["ed25519", "rsa"])
    func aRealServersOfferIsRead(_ hostKeyType: String) async throws {
        try await withSSHServer(hostKeyType: hostKeyType) { server in
            let offer = try await SSHServerOffer.read(host: "127.0.0.1", port: server.port)
            #expect(offer.version.hasPrefix("SSH-2.0-OpenSSH"))
            #expect(offer.keyExchange.contains("curve25519-sha256"))
            #expect(!offer.ciphers.isEmpty && !offer.macs.isEmpty)
            if hostKeyType == "rsa" {
                #expect(offer.hostKeys.allSatisfy { $0.contains("rsa") }, "\(offer.hostKeys)")
                #expect(throws: SSHServerOffer.NoCommonAlgorithm.self) { try offer.nativeMatch.get() }
            } else {
                #expect(try offer.nativeMatch.get().hostKey == "ssh-ed25519")
            }
        }
    }

    @Test func aSilentListenerTimesOutAndAClosedPortIsRefused() async throws {
        let (fd, port) = try boundLoopbackSocket(listening: true)
        defer { close(fd) }
        let started = ContinuousClock.now
        await #expect { try await SSHServerOffer.read(host: "127.0.0.1", port: port, timeout: .milliseconds(500)) }
            throws: { ($0 as? SFTPError)?.code == .timedOut }
        #expect(ContinuousClock.now - started < .seconds(5))
        let closed = try freeLoopbackPort()
        await #expect { try await SSHServerOffer.read(host: "127.0.0.1", port: closed) }
            throws: { ($0 as? SFTPError)?.code == .connectionFailed }
    }
}
