import Crypto
import Foundation
import Testing
@testable import ObjectStorage

struct CRC32CTests {
    /// The check value of the CRC catalogue and the vectors of RFC 3720 appendix B.4.
    @Test(arguments: [
        (Array("123456789".utf8), UInt32(0xE306_9283)),
        ([UInt8](), UInt32(0)),
        ([UInt8](repeating: 0, count: 32), UInt32(0x8A91_36AA)),
        ([UInt8](repeating: 0xFF, count: 32), UInt32(0x62A8_AB43)),
        ((0..<32).map { UInt8($0) }, UInt32(0x46DD_794E)),
        ((0..<32).reversed().map { UInt8($0) }, UInt32(0x113F_DB5C)),
    ])
    func knownVectors(bytes: [UInt8], expected: UInt32) {
        var crc = CRC32C()
        crc.update(bytes)
        #expect(crc.value == expected)
    }

    /// Updating in pieces of any size gives the same value as one update, across the 8-byte fast path.
    @Test func incrementalMatchesWhole() {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<10_007).map { _ in UInt8.random(in: 0...255, using: &generator) }
        var whole = CRC32C()
        whole.update(bytes)
        #expect(whole.value == bytewiseReference(bytes))
        for pieceSize in [1, 3, 7, 8, 9, 64, 4096] {
            var pieces = CRC32C()
            var index = 0
            while index < bytes.count {
                pieces.update(bytes[index..<min(index + pieceSize, bytes.count)])
                index += pieceSize
            }
            #expect(pieces.value == whole.value, "piece size \(pieceSize)")
        }
    }

    /// S3 wants the 4 big-endian bytes in base64.
    @Test func base64IsBigEndian() {
        var crc = CRC32C()
        crc.update(Array("123456789".utf8))
        #expect(crc.base64 == Data([0xE3, 0x06, 0x92, 0x83]).base64EncodedString())
        #expect(crc.base64 == "4waSgw==")
        #expect(CRC32C().base64 == "AAAAAA==")
    }

    /// One bit at a time, straight from the definition.
    private func bytewiseReference(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        }
        return ~crc
    }
}

struct URIEncodingTests {
    @Test(arguments: [
        ("plain/key.txt", "plain/key.txt"),
        ("with space/file name.bin", "with%20space/file%20name.bin"),
        ("a+b=c&d", "a%2Bb%3Dc%26d"),
        ("100%/x", "100%25/x"),
        ("tilde~under_score-dash.dot", "tilde~under_score-dash.dot"),
        ("ünï/ሴ", "%C3%BCn%C3%AF/%E1%88%B4"),
        ("q?x#y:z*(1)$", "q%3Fx%23y%3Az%2A%281%29%24"),
        ("a//b/", "a//b/"),
    ])
    func objectKeys(key: String, expected: String) {
        #expect(S3URIEncoding.encode(key, keepSlash: true) == expected)
    }

    @Test func slashEncodedOutsideKeys() {
        #expect(S3URIEncoding.encode("a/b", keepSlash: false) == "a%2Fb")
        #expect(S3URIEncoding.encode("", keepSlash: false) == "")
    }

    /// Paths are decoded then encoded once (S3 does not double-encode), segment by segment.
    @Test func canonicalURI() {
        #expect(SigV4Signer.canonicalURI(percentEncodedPath: "") == "/")
        #expect(SigV4Signer.canonicalURI(percentEncodedPath: "/a%20b/c%2Fd") == "/a%20b/c%2Fd")
        #expect(SigV4Signer.canonicalURI(percentEncodedPath: "/bucket/100%25/%7Etilde+plus") == "/bucket/100%25/~tilde%2Bplus")
        #expect(SigV4Signer.canonicalURI(percentEncodedPath: "/a/./b/../c//") == "/a/./b/../c//")
    }

    @Test func canonicalQuery() {
        #expect(SigV4Signer.canonicalQuery(percentEncodedQuery: "b=2&a=1&a=0&uploads") == "a=0&a=1&b=2&uploads=")
        #expect(SigV4Signer.canonicalQuery(percentEncodedQuery: "prefix=a%20b%2Bc") == "prefix=a%20b%2Bc")
        #expect(SigV4Signer.canonicalQuery([("uploadId", "x/y+z="), ("partNumber", "2")]) == "partNumber=2&uploadId=x%2Fy%2Bz%3D")
        #expect(SigV4Signer.canonicalQuery(percentEncodedQuery: nil) == "")
    }

    @Test func headerValuesTrimmedAndCollapsed() {
        #expect(SigV4Signer.canonicalHeaderValue("  a   b\t c  ") == "a b c")
    }
}
