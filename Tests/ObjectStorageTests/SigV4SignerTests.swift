import Foundation
import Testing
@testable import ObjectStorage

/// AWS's published SigV4 vectors.
///
/// The "service" vectors are from the Signature Version 4 test suite (AWS General Reference, kept in
/// awslabs/aws-c-auth `tests/aws-signing-test-suite/v4/<name>/`): credentials AKIDEXAMPLE, region us-east-1,
/// service "service", 2015-08-30T12:36:00Z; the expected values are `header-signature.txt`,
/// `header-canonical-request.txt` and `header-string-to-sign.txt`.
/// The "s3" vectors are the examples of "Signature Calculations for the Authorization Header: Transferring
/// Payload in a Single Chunk" (Amazon S3 API reference): AKIAIOSFODNN7EXAMPLE, examplebucket, 2013-05-24.
struct SigV4SignerTests {
    static let suiteSigner = SigV4Signer(
        credentials: S3Credentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        region: "us-east-1", service: "service")
    static let suiteDate = Date(timeIntervalSince1970: 1_440_938_160)  // 2015-08-30T12:36:00Z
    static let s3Signer = SigV4Signer(
        credentials: S3Credentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        region: "us-east-1", service: "s3")
    static let s3Date = Date(timeIntervalSince1970: 1_369_353_600)  // 2013-05-24T00:00:00Z
    static let empty = SigV4Signer.emptyPayloadHash

    struct Vector: Sendable, CustomTestStringConvertible {
        var name: String
        var method = "GET"
        var url: String
        var headers: [(String, String)] = []
        var payloadHash = SigV4SignerTests.empty
        var contentSHA256 = false
        var sessionToken: String?
        var signature: String
        var testDescription: String { name }
    }

    static let suiteVectors: [Vector] = [
        Vector(name: "get-vanilla", url: "https://example.amazonaws.com/",
               signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        Vector(name: "get-vanilla-query-order-key-case", url: "https://example.amazonaws.com/?Param2=value2&Param1=value1",
               signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
        Vector(name: "get-vanilla-query-unreserved",
               url: "https://example.amazonaws.com/?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
               signature: "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"),
        Vector(name: "get-vanilla-utf8-query", url: "https://example.amazonaws.com/?%E1%88%B4=bar",
               signature: "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"),
        Vector(name: "get-utf8", url: "https://example.amazonaws.com/%E1%88%B4",
               signature: "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"),
        Vector(name: "get-space-unnormalized", url: "https://example.amazonaws.com/example%20space/",
               signature: "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"),
        Vector(name: "get-unreserved",
               url: "https://example.amazonaws.com/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
               signature: "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"),
        Vector(name: "get-header-value-trim", url: "https://example.amazonaws.com/",
               headers: [("My-Header1", " value1"), ("My-Header2", " \"a   b   c\"")],
               signature: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"),
        Vector(name: "post-header-key-sort", method: "POST", url: "https://example.amazonaws.com/",
               headers: [("My-Header1", "value1")],
               signature: "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"),
        Vector(name: "post-x-www-form-urlencoded", method: "POST", url: "https://example.amazonaws.com/",
               headers: [("Content-Type", "application/x-www-form-urlencoded"), ("Content-Length", "13")],
               payloadHash: "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e", contentSHA256: true,
               signature: "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b"),
        Vector(name: "get-vanilla-with-session-token", url: "https://example.amazonaws.com/",
               sessionToken: "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267",
               signature: "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"),
    ]

    @Test(arguments: suiteVectors)
    func signatureTestSuite(_ vector: Vector) throws {
        var signer = Self.suiteSigner
        if let token = vector.sessionToken {
            signer = SigV4Signer(credentials: S3Credentials(accessKeyID: "AKIDEXAMPLE",
                                                            secretAccessKey: signer.credentials.secretAccessKey,
                                                            sessionToken: token),
                                 region: "us-east-1", service: "service")
        }
        let headers = signer.sign(method: vector.method, url: try #require(URL(string: vector.url)), headers: vector.headers,
                                  payloadHash: vector.payloadHash, date: Self.suiteDate,
                                  includeContentSHA256: vector.contentSHA256)
        let authorization = try #require(headers.first { $0.0 == "Authorization" }?.1)
        #expect(authorization.hasSuffix("Signature=\(vector.signature)"), "\(authorization)")
        #expect(authorization.hasPrefix("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders="))
        #expect(headers.first { $0.0 == "X-Amz-Date" }?.1 == "20150830T123600Z")
        #expect(headers.contains { $0.0 == "X-Amz-Content-Sha256" } == vector.contentSHA256)
        #expect(headers.first { $0.0 == "X-Amz-Security-Token" }?.1 == vector.sessionToken)
    }

    @Test func getVanillaCanonicalRequestAndStringToSign() throws {
        let result = Self.suiteSigner.signature(method: "GET", url: try #require(URL(string: "https://example.amazonaws.com/")),
                                                headers: [], payloadHash: Self.empty, date: Self.suiteDate,
                                                includeContentSHA256: false)
        #expect(result.canonicalRequest == """
            GET
            /

            host:example.amazonaws.com
            x-amz-date:20150830T123600Z

            host;x-amz-date
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            """)
        #expect(result.stringToSign == """
            AWS4-HMAC-SHA256
            20150830T123600Z
            20150830/us-east-1/service/aws4_request
            bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63
            """)
        // header-signed-request.txt, whole header.
        #expect(result.headers.first?.1 == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
    }

    @Test func queryOrderCanonicalRequest() throws {
        let result = Self.suiteSigner.signature(
            method: "GET", url: try #require(URL(string: "https://example.amazonaws.com/?Param2=value2&Param1=value1")),
            headers: [], payloadHash: Self.empty, date: Self.suiteDate, includeContentSHA256: false)
        #expect(result.canonicalRequest.split(separator: "\n", omittingEmptySubsequences: false)[2] == "Param1=value1&Param2=value2")
        #expect(result.stringToSign.hasSuffix("816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0"))
    }

    // MARK: S3 examples

    @Test func s3GetObjectWithRange() throws {
        let result = Self.s3Signer.signature(
            method: "GET", url: try #require(URL(string: "https://examplebucket.s3.amazonaws.com/test.txt")),
            headers: [("Range", "bytes=0-9")], payloadHash: Self.empty, date: Self.s3Date)
        #expect(result.canonicalRequest == """
            GET
            /test.txt

            host:examplebucket.s3.amazonaws.com
            range:bytes=0-9
            x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            x-amz-date:20130524T000000Z

            host;range;x-amz-content-sha256;x-amz-date
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            """)
        #expect(result.stringToSign == """
            AWS4-HMAC-SHA256
            20130524T000000Z
            20130524/us-east-1/s3/aws4_request
            7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972
            """)
        #expect(result.signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        #expect(result.headers.first?.1 == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    @Test func s3PutObject() throws {
        let result = Self.s3Signer.signature(
            method: "PUT", url: try #require(URL(string: "https://examplebucket.s3.amazonaws.com/test$file.text")),
            headers: [("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-storage-class", "REDUCED_REDUNDANCY")],
            payloadHash: "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072", date: Self.s3Date)
        #expect(result.canonicalRequest.hasPrefix("PUT\n/test%24file.text\n\ndate:Fri, 24 May 2013 00:00:00 GMT\n"))
        #expect(result.stringToSign.hasSuffix("9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d"))
        #expect(result.signature == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")
        #expect(result.headers.first?.1.contains("SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,") == true)
    }

    @Test func s3GetBucketLifecycle() throws {
        let result = Self.s3Signer.signature(
            method: "GET", url: try #require(URL(string: "https://examplebucket.s3.amazonaws.com/?lifecycle")),
            headers: [], payloadHash: Self.empty, date: Self.s3Date)
        #expect(result.canonicalRequest.hasPrefix("GET\n/\nlifecycle=\nhost:examplebucket.s3.amazonaws.com\n"))
        #expect(result.stringToSign.hasSuffix("9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca"))
        #expect(result.signature == "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")
    }

    @Test func s3ListObjects() throws {
        let result = Self.s3Signer.signature(
            method: "GET", url: try #require(URL(string: "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J")),
            headers: [], payloadHash: Self.empty, date: Self.s3Date)
        #expect(result.stringToSign.hasSuffix("df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7"))
        #expect(result.signature == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
    }

    /// The client signs the path and query it sends, not a re-parsed URL: both routes must agree.
    @Test func canonicalPartsFromClientMatchURLRoute() throws {
        let viaURL = Self.s3Signer.signature(
            method: "GET", url: try #require(URL(string: "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J")),
            headers: [], payloadHash: Self.empty, date: Self.s3Date)
        let direct = Self.s3Signer.signature(
            method: "GET", canonicalURI: "/", canonicalQuery: SigV4Signer.canonicalQuery([("prefix", "J"), ("max-keys", "2")]),
            headers: [("Host", "examplebucket.s3.amazonaws.com")], payloadHash: Self.empty, date: Self.s3Date)
        #expect(direct.signature == viaURL.signature)
    }

    @Test func secretsNeverPrinted() {
        let credentials = S3Credentials(accessKeyID: "AKID", secretAccessKey: "very-secret-key", sessionToken: "token-123")
        let signer = SigV4Signer(credentials: credentials, region: "us-east-1", service: "s3")
        for text in [credentials.description, String(reflecting: credentials), "\(credentials)", dumped(credentials),
                     dumped(signer), String(describing: signer)] {
            #expect(!text.contains("very-secret-key"), "\(text)")
            #expect(!text.contains("token-123"), "\(text)")
        }
        #expect(credentials.description.contains("AKID"))
    }

    private func dumped(_ value: Any) -> String {
        var text = ""
        dump(value, to: &text)
        return text
    }

    @Test(arguments: [
        (1_440_938_160.0, "20150830T123600Z"), (951_868_799.0, "20000229T235959Z"), (0.0, "19700101T000000Z"),
        (-1.0, "19691231T235959Z"), (4_102_444_800.5, "21000101T000000Z"), (1_709_251_199.0, "20240229T235959Z"),
    ])
    func timestamps(seconds: Double, expected: String) {
        let (amzDate, day) = SigV4Signer.timestamps(Date(timeIntervalSince1970: seconds))
        #expect(amzDate == expected)
        #expect(day == String(expected.prefix(8)))
    }
}
