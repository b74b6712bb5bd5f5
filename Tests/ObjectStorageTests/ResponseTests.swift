import AsyncHTTPClient
import Foundation
import Logging
import NIOHTTP1
import Testing
@testable import ObjectStorage

/// Error classification and XML answers, from byte fixtures (no server).
struct ResponseTests {
    static let secret = "SECRET-do-not-print-4f9c2a"
    static let client = S3Client(
        location: S3Location(endpoint: URL(string: "http://127.0.0.1:1"), region: "us-east-1", bucket: "bucket", pathStyle: true),
        credentials: S3Credentials(accessKeyID: "AKID", secretAccessKey: secret),
        httpClient: HTTPClient.shared, logger: Logger(label: "test"))

    static func errorBody(_ code: String, _ message: String = "message") -> [UInt8] {
        Array("""
            <?xml version="1.0" encoding="UTF-8"?>
            <Error><Code>\(code)</Code><Message>\(message)</Message><RequestId>4442587FB7D0A2F9</RequestId>\
            <HostId>host</HostId></Error>
            """.utf8)
    }

    static func response(_ status: Int, _ body: [UInt8] = [], headers: HTTPHeaders = [:]) -> S3Client.Response {
        S3Client.Response(status: status, headers: headers, body: body)
    }

    @Test(arguments: [
        (503, "SlowDown", true), (500, "InternalError", true), (503, "ServiceUnavailable", true),
        (502, "BadGateway", true), (504, "GatewayTimeout", true), (400, "RequestTimeout", true),
        (400, "ThrottlingException", true), (409, "OperationAborted", true),
        (404, "NoSuchBucket", false), (404, "NoSuchUpload", false), (404, "NoSuchKey", false),
        (403, "AccessDenied", false), (403, "SignatureDoesNotMatch", false), (400, "EntityTooLarge", false),
        (400, "InvalidRequest", false), (400, "BadDigest", false), (412, "PreconditionFailed", false),
        (400, "InvalidPart", false), (501, "NotImplemented", false),
    ])
    func classificationFromErrorBodies(status: Int, code: String, transient: Bool) {
        let error = Self.client.s3Error(Self.response(status, Self.errorBody(code)), operation: "PutObject", key: "k")
        #expect(error.code == code)
        #expect(error.status == status)
        #expect(error.isTransient == transient)
        #expect(error.requestID == "4442587FB7D0A2F9")
        #expect(error.message == "PutObject k: message")
    }

    @Test(arguments: [
        (503, "ServiceUnavailable", true), (500, "InternalError", true), (502, "HTTP502", true),
        (429, "SlowDown", true), (403, "AccessDenied", false), (404, "NotFound", false),
        (412, "PreconditionFailed", false), (400, "BadRequest", false),
    ])
    func classificationWithoutBody(status: Int, code: String, transient: Bool) {
        let error = Self.client.s3Error(
            Self.response(status, headers: ["x-amz-request-id": "RID"]), operation: "HeadObject", key: "k")
        #expect(error.code == code)
        #expect(error.isTransient == transient)
        #expect(error.requestID == "RID")
    }

    @Test func moduleCodes() {
        for code in ["Timeout", "Transport", "BadResponse"] {
            #expect(S3Error(status: nil, code: code, message: "").isTransient, "\(code)")
        }
        for code in ["LocalFile", "EntityTooLarge", "InvalidArgument"] {
            #expect(!S3Error(status: nil, code: code, message: "").isTransient, "\(code)")
        }
        let error = S3Error(status: 404, code: "NoSuchBucket", message: "PutObject k: gone", requestID: "R1")
        #expect(error.description == "S3 error NoSuchBucket (HTTP 404): PutObject k: gone [request R1]")
    }

    /// A server that echoes what it got must not put the secret or a signature into the message.
    @Test func messagesAreRedacted() {
        let body = Self.errorBody("SignatureDoesNotMatch",
                                  "key \(Self.secret) Signature=0123456789abcdef0123456789abcdef and more")
        let error = Self.client.s3Error(Self.response(403, body), operation: "PutObject", key: "k")
        #expect(!error.message.contains(Self.secret))
        #expect(!error.description.contains("0123456789abcdef"))
        #expect(error.message.contains("Signature=<redacted>"))
    }

    // MARK: CompleteMultipartUpload

    @Test func completeWithLeadingWhitespace() throws {
        let body = Array("""
               \n  <?xml version="1.0" encoding="UTF-8"?>
            <CompleteMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">\
            <Location>http://b.s3.amazonaws.com/k</Location><Bucket>b</Bucket><Key>k</Key>\
            <ETag>&quot;3858f62230ac3c915f300c664312c11f-9&quot;</ETag></CompleteMultipartUploadResult>
            """.utf8)
        #expect(try Self.client.completedETag(Self.response(200, body), key: "k") == "\"3858f62230ac3c915f300c664312c11f-9\"")
    }

    /// S3 answers 200 first and may then fail: the `<Error>` body is the answer.
    @Test func completeWith200Error() {
        let body = Array("    \n" .utf8) + Self.errorBody("InternalError", "We encountered an internal error. Please try again.")
        #expect {
            try Self.client.completedETag(Self.response(200, body), key: "k")
        } throws: { error in
            guard let error = error as? S3Error else { return false }
            return error.code == "InternalError" && error.status == 200 && error.isTransient
        }
        #expect {
            try Self.client.completedETag(Self.response(200, Array("not xml".utf8)), key: "k")
        } throws: { ($0 as? S3Error)?.code == "BadResponse" }
    }

    @Test func completeBody() throws {
        let parts = [
            S3Part(number: 2, etag: "\"b\"", checksum: "4waSgw==", size: 5),
            S3Part(number: 1, etag: "\"a\"", checksum: "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", size: 5),
            S3Part(number: 3, etag: "\"c&d\"", checksum: nil, size: 1),
        ]
        let body = S3XML.completeBody(parts)
        #expect(body.contains(#"<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><PartNumber>1</PartNumber><ETag>&quot;a&quot;</ETag><ChecksumSHA256>47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=</ChecksumSHA256></Part><Part><PartNumber>2</PartNumber><ETag>&quot;b&quot;</ETag><ChecksumCRC32C>4waSgw==</ChecksumCRC32C></Part><Part><PartNumber>3</PartNumber><ETag>&quot;c&amp;d&quot;</ETag></Part></CompleteMultipartUpload>"#))
        // It parses back.
        let root = try #require(S3XML.parse(Array(body.utf8)))
        #expect(root.children("Part").map { $0.text("ETag") } == ["\"a\"", "\"b\"", "\"c&d\""])
    }

    // MARK: Other answers

    @Test func initiate() {
        let body = Array("""
            <?xml version="1.0" encoding="UTF-8"?>
            <InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>b</Bucket>\
            <Key>k</Key><UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>\
            </InitiateMultipartUploadResult>
            """.utf8)
        #expect(S3XML.parse(body).flatMap(S3XML.uploadID) == "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA")
        #expect(S3XML.parse(Self.errorBody("X")).flatMap(S3XML.uploadID) == nil)
    }

    @Test func listPartsPage() throws {
        let body = Array("""
            <?xml version="1.0" encoding="UTF-8"?>
            <ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
              <Bucket>b</Bucket><Key>k</Key><UploadId>U</UploadId>
              <PartNumberMarker>1</PartNumberMarker><NextPartNumberMarker>3</NextPartNumberMarker>
              <MaxParts>2</MaxParts><IsTruncated>true</IsTruncated>
              <Part><PartNumber>2</PartNumber><LastModified>2010-11-10T20:48:34.000Z</LastModified>
                <ETag>"7778aef83f66abc1fa1e8477f296d394"</ETag><Size>10485760</Size>
                <ChecksumCRC32C>4waSgw==</ChecksumCRC32C></Part>
              <Part><PartNumber>3</PartNumber><LastModified>2010-11-10T20:48:33.000Z</LastModified>
                <ETag>"aaaa18db4cc2f85cedef654fccc4a4x8"</ETag><Size>10485760</Size></Part>
            </ListPartsResult>
            """.utf8)
        let page = try #require(S3XML.parse(body).flatMap(S3XML.partsPage))
        #expect(page.isTruncated)
        #expect(page.nextPartNumberMarker == 3)
        #expect(page.parts == [
            S3Part(number: 2, etag: "\"7778aef83f66abc1fa1e8477f296d394\"", checksum: "4waSgw==", size: 10_485_760),
            S3Part(number: 3, etag: "\"aaaa18db4cc2f85cedef654fccc4a4x8\"", checksum: nil, size: 10_485_760),
        ])
        // A part without a size is a bad answer, not a part of size 0.
        let broken = Array("<ListPartsResult><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part></ListPartsResult>".utf8)
        #expect(S3XML.parse(broken).map(S3XML.partsPage) == .some(nil))
    }

    @Test func listUploadsPage() throws {
        let body = Array("""
            <?xml version="1.0" encoding="UTF-8"?>
            <ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
              <Bucket>b</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>
              <NextKeyMarker>my-movie.m2ts</NextKeyMarker><NextUploadIdMarker>YW55IGlkZWEgd2h5</NextUploadIdMarker>
              <MaxUploads>3</MaxUploads><IsTruncated>true</IsTruncated>
              <Upload><Key>my-divisor</Key><UploadId>XMgbGlrZSBlbHZpbmcncyBub3QgaGF2aW5nIG11Y2ggbHVjaw</UploadId>
                <StorageClass>REDUCED_REDUNDANCY</StorageClass><Initiated>2010-11-10T20:48:33.000Z</Initiated></Upload>
              <Upload><Key>my-movie.m2ts</Key><UploadId>YW55IGlkZWEgd2h5</UploadId>
                <Initiated>2010-11-10T20:49:33Z</Initiated></Upload>
            </ListMultipartUploadsResult>
            """.utf8)
        let page = try #require(S3XML.parse(body).flatMap(S3XML.uploadsPage))
        #expect(page.isTruncated)
        #expect(page.nextKeyMarker == "my-movie.m2ts")
        #expect(page.nextUploadIDMarker == "YW55IGlkZWEgd2h5")
        #expect(page.uploads.map(\.key) == ["my-divisor", "my-movie.m2ts"])
        #expect(page.uploads.map(\.initiated.timeIntervalSince1970) == [1_289_422_113, 1_289_422_173])
    }

    @Test func strictParsing() {
        #expect(S3XML.parse(Array("<a><b></a>".utf8)) == nil)
        #expect(S3XML.parse(Array("".utf8)) == nil)
        #expect(S3XML.parse(Array("   ".utf8)) == nil)
        let deep = String(repeating: "<a>", count: 40) + String(repeating: "</a>", count: 40)
        #expect(S3XML.parse(Array(deep.utf8)) == nil)
        #expect(S3XML.parse([UInt8](repeating: 0x20, count: S3XML.maxBytes + 1)) == nil)
        // External entities are never read.
        let external = Array("""
            <?xml version="1.0"?><!DOCTYPE Error [<!ENTITY e SYSTEM "file:///etc/hostname">]>\
            <Error><Code>X</Code><Message>&e;</Message></Error>
            """.utf8)
        let hostname = (try? String(contentsOfFile: "/etc/hostname", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "no-hostname"
        let message = S3XML.parse(external).flatMap(S3XML.error)?.message ?? ""
        #expect(hostname.isEmpty || !message.contains(hostname))
    }
}

struct EndpointTests {
    func resolve(_ endpoint: String?, region: String = "us-east-1", bucket: String = "b", pathStyle: Bool) -> S3Client.Endpoint? {
        try? S3Client.Endpoint.resolve(S3Location(endpoint: endpoint.flatMap { URL(string: $0) }, region: region,
                                                  bucket: bucket, pathStyle: pathStyle)).get()
    }

    @Test func awsVirtualHost() throws {
        let endpoint = try #require(resolve(nil, region: "eu-west-1", bucket: "my-bucket", pathStyle: false))
        #expect(endpoint.scheme == "https")
        #expect(endpoint.authority == "my-bucket.s3.eu-west-1.amazonaws.com")
        #expect(endpoint.basePath == "")
    }

    @Test func pathStyleWithPortAndPrefix() throws {
        let endpoint = try #require(resolve("http://minio.local:9000/s3/", bucket: "bkt", pathStyle: true))
        #expect(endpoint.scheme == "http")
        #expect(endpoint.authority == "minio.local:9000")
        #expect(endpoint.basePath == "/s3/bkt")
        #expect(resolve("https://h:443", pathStyle: true)?.authority == "h")
        #expect(resolve("http://h:80", pathStyle: true)?.authority == "h")
        #expect(resolve("http://[::1]:9000", pathStyle: true)?.authority == "[::1]:9000")
    }

    @Test func refused() {
        #expect(resolve("ftp://h", pathStyle: true) == nil)
        #expect(resolve("http://h", bucket: "", pathStyle: true) == nil)
        #expect(resolve("http://h", bucket: "a/b", pathStyle: true) == nil)
    }
}
