import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import TestSupport
import Testing
@testable import ObjectStorage

/// The client against a real moto S3 server, path style, us-east-1: one server for the suite, one bucket per test.
@Suite(.motoServer)
struct MotoIntegrationTests {
    static let credentials = S3Credentials(accessKeyID: "test", secretAccessKey: "test")

    /// A client on a new, empty bucket of the suite's server.
    static func freshBucket() async throws -> S3Client {
        let s3 = client(try #require(MotoServer.endpoint), bucket: "t-\(UUID().uuidString.lowercased())")
        try await s3.createBucket()
        return s3
    }

    static func client(_ endpoint: URL, bucket: String = "kafkasync-test", credentials: S3Credentials = credentials,
                       timeout: Duration = .seconds(30)) -> S3Client {
        S3Client(location: S3Location(endpoint: endpoint, region: "us-east-1", bucket: bucket, pathStyle: true),
                 credentials: credentials, httpClient: HTTPClient.shared, requestTimeout: timeout,
                 logger: Logger(label: "s3-test"))
    }

    /// A temporary file of `count` random bytes, removed after `body`.
    static func withFile<T>(_ count: Int, _ body: (String, [UInt8]) async throws -> T) async throws -> T {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("s3-\(UUID().uuidString)").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try await body(path, bytes)
    }

    static func expectS3Error(code: String, status: Int?, transient: Bool, _ body: () async throws -> Void,
                              sourceLocation: SourceLocation = #_sourceLocation) async {
        do {
            try await body()
            Issue.record("expected S3 error \(code)", sourceLocation: sourceLocation)
        } catch let error as S3Error {
            #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
            #expect(error.status == status, "\(error)", sourceLocation: sourceLocation)
            #expect(error.isTransient == transient, "\(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("expected S3Error, got \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func putHeadGetWithMetadataAndChecksums() async throws {
        let s3 = try await Self.freshBucket()
        try await s3.createBucket()  // already ours: not an error
        try await Self.withFile(100_000) { path, bytes in
            // SHA-256
            let etag = try await s3.putObject(key: "dir/object.bin", file: path, checksum: .sha256,
                                              metadata: ["Kafka-Offset": "42", "job": "j-1"],
                                              storageClass: "STANDARD", ifNoneMatch: false)
            let info = try #require(try await s3.headObject(key: "dir/object.bin", checksumMode: true))
            #expect(info.size == Int64(bytes.count))
            #expect(info.etag == etag)
            #expect(etag == "\"\(Insecure.MD5.hash(data: bytes).map { String(format: "%02x", $0) }.joined())\"")
            #expect(info.metadata == ["kafka-offset": "42", "job": "j-1"])
            #expect(info.checksum == Data(SHA256.hash(data: bytes)).base64EncodedString())
            #expect(try await s3.getObject(key: "dir/object.bin") == bytes)

            // CRC-32C
            _ = try await s3.putObject(key: "dir/crc.bin", file: path, checksum: .crc32c, metadata: [:],
                                       storageClass: nil, ifNoneMatch: true)
            var crc = CRC32C()
            crc.update(bytes)
            let crcInfo = try #require(try await s3.headObject(key: "dir/crc.bin", checksumMode: true))
            #expect(crcInfo.checksum == crc.base64)
            #expect(crcInfo.metadata.isEmpty)

            // No checksum: nothing stored.
            _ = try await s3.putObject(key: "dir/plain.bin", file: path, checksum: .none, metadata: [:],
                                       storageClass: nil, ifNoneMatch: false)
            #expect(try await s3.headObject(key: "dir/plain.bin", checksumMode: true)?.checksum == nil)
        }
        #expect(try await s3.headObject(key: "dir/missing") == nil)
        try await s3.deleteObject(key: "dir/object.bin")
        #expect(try await s3.headObject(key: "dir/object.bin") == nil)
        try await s3.deleteObject(key: "dir/object.bin")  // already gone: not an error
    }

    @Test func emptyFile() async throws {
        let s3 = try await Self.freshBucket()
        try await Self.withFile(0) { path, _ in
            _ = try await s3.putObject(key: "empty", file: path, checksum: .crc32c, metadata: [:], storageClass: nil,
                                       ifNoneMatch: false)
            #expect(try await s3.headObject(key: "empty")?.size == 0)
            #expect(try await s3.getObject(key: "empty") == [])
        }
    }

    @Test func keysThatNeedEncoding() async throws {
        let s3 = try await Self.freshBucket()
        let keys = ["with space/file name.txt", "ünïcödé/ሴ/日本.txt", "a+b=c&d.txt", "100%25 literal%.txt",
                    "tilde~under_score-dash.txt", "q?x#y:z*(1)$,;'!@.txt"]
        try await Self.withFile(1000) { path, bytes in
            for key in keys {
                _ = try await s3.putObject(key: key, file: path, checksum: .sha256, metadata: [:], storageClass: nil,
                                           ifNoneMatch: false)
                #expect(try await s3.headObject(key: key)?.size == 1000, "\(key)")
                #expect(try await s3.getObject(key: key) == bytes, "\(key)")
            }
        }
        // The keys arrived as themselves, not re-encoded: list them through a multipart upload on each.
        for key in keys {
            let id = try await s3.createMultipartUpload(key: key, checksum: .none, metadata: [:], storageClass: nil)
            try await s3.abortMultipartUpload(key: key, uploadID: id)
        }
        let id = try await s3.createMultipartUpload(key: keys[1], checksum: .none, metadata: [:], storageClass: nil)
        let uploads = try await s3.listMultipartUploads(prefix: "ünïcödé/")
        #expect(uploads.map(\.key) == [keys[1]])
        #expect(uploads.map(\.uploadID) == [id])
    }

    @Test(arguments: [S3ChecksumAlgorithm.sha256, .crc32c, .none])
    func multipartUpload(checksum: S3ChecksumAlgorithm) async throws {
        let s3 = try await Self.freshBucket()
        try await Self.withFile(2000) { path, bytes in
            let key = "multi/part file.bin"
            let id = try await s3.createMultipartUpload(key: key, checksum: checksum, metadata: ["source": "sftp"],
                                                        storageClass: "STANDARD")
            let ranges: [(Int64, Int64)] = [(0, 800), (800, 800), (1600, 400)]
            var parts: [S3Part] = []
            for (index, range) in ranges.enumerated() {
                parts.append(try await s3.uploadPart(key: key, uploadID: id, number: index + 1, file: path,
                                                     offset: range.0, length: range.1, checksum: checksum))
            }
            #expect(parts.map(\.size) == [800, 800, 400])
            #expect(parts.map { $0.checksum == nil } == Array(repeating: checksum == .none, count: 3))
            if checksum == .sha256 {
                #expect(parts[0].checksum == Data(SHA256.hash(data: bytes[0..<800])).base64EncodedString())
            }

            // moto returns no checksums in ListParts; compare the rest, and page one part at a time too.
            let strip = { (parts: [S3Part]) in parts.map { S3Part(number: $0.number, etag: $0.etag, checksum: nil, size: $0.size) } }
            #expect(strip(try await s3.listParts(key: key, uploadID: id)) == strip(parts))
            #expect(strip(try await s3.listParts(key: key, uploadID: id, maxParts: 1)) == strip(parts))
            #expect(try await s3.listMultipartUploads(prefix: "multi/").map(\.uploadID) == [id])

            let etag = try await s3.completeMultipartUpload(key: key, uploadID: id, parts: parts.reversed(),
                                                            ifNoneMatch: true)
            #expect(etag.hasSuffix("-3\""))
            #expect(try await s3.getObject(key: key) == bytes)
            let info = try #require(try await s3.headObject(key: key, checksumMode: true))
            #expect(info.size == 2000)
            #expect(info.metadata["source"] == "sftp")
            #expect(try await s3.listMultipartUploads(prefix: nil).isEmpty)
        }
    }

    @Test func abortedUploadsDisappear() async throws {
        let s3 = try await Self.freshBucket()
        try await Self.withFile(300) { path, _ in
            let kept = try await s3.createMultipartUpload(key: "a/kept", checksum: .crc32c, metadata: [:], storageClass: nil)
            let aborted = try await s3.createMultipartUpload(key: "a/aborted", checksum: .crc32c, metadata: [:],
                                                             storageClass: nil)
            _ = try await s3.uploadPart(key: "a/aborted", uploadID: aborted, number: 1, file: path, offset: 0,
                                        length: 300, checksum: .crc32c)
            let before = try await s3.listMultipartUploads(prefix: "a/")
            #expect(Set(before.map(\.uploadID)) == [kept, aborted])
            #expect(before.allSatisfy { abs($0.initiated.timeIntervalSinceNow) < 365 * 86_400 * 30 })

            try await s3.abortMultipartUpload(key: "a/aborted", uploadID: aborted)
            #expect(try await s3.listMultipartUploads(prefix: "a/").map(\.uploadID) == [kept])
            #expect(try await s3.listMultipartUploads(prefix: "b/").isEmpty)
            // Already gone, or never existed: not an error.
            try await s3.abortMultipartUpload(key: "a/aborted", uploadID: aborted)
            try await s3.abortMultipartUpload(key: "a/never", uploadID: "no-such-upload-id")
            // (Uploading into an aborted upload is 404 NoSuchUpload on S3; moto 5.2 answers 500 without a body.)
        }
    }

    @Test func ifNoneMatchOnExistingKey() async throws {
        let s3 = try await Self.freshBucket()
        try await Self.withFile(500) { path, bytes in
            _ = try await s3.putObject(key: "once", file: path, checksum: .sha256, metadata: [:], storageClass: nil,
                                       ifNoneMatch: true)
            await Self.expectS3Error(code: "PreconditionFailed", status: 412, transient: false) {
                _ = try await s3.putObject(key: "once", file: path, checksum: .sha256, metadata: [:],
                                           storageClass: nil, ifNoneMatch: true)
            }
            let id = try await s3.createMultipartUpload(key: "once", checksum: .sha256, metadata: [:], storageClass: nil)
            let part = try await s3.uploadPart(key: "once", uploadID: id, number: 1, file: path, offset: 0,
                                               length: 500, checksum: .sha256)
            await Self.expectS3Error(code: "PreconditionFailed", status: 412, transient: false) {
                _ = try await s3.completeMultipartUpload(key: "once", uploadID: id, parts: [part], ifNoneMatch: true)
            }
            // Without the condition it replaces the object.
            _ = try await s3.completeMultipartUpload(key: "once", uploadID: id, parts: [part], ifNoneMatch: false)
            #expect(try await s3.getObject(key: "once") == bytes)
        }
    }

    @Test func wrongBucketIsPermanent() async throws {
        let s3 = Self.client(try #require(MotoServer.endpoint), bucket: "no-such-bucket-here")
        try await Self.withFile(10) { path, _ in
            await Self.expectS3Error(code: "NoSuchBucket", status: 404, transient: false) {
                _ = try await s3.putObject(key: "k", file: path, checksum: .sha256, metadata: [:], storageClass: nil,
                                           ifNoneMatch: false)
            }
            await Self.expectS3Error(code: "NoSuchBucket", status: 404, transient: false) {
                _ = try await s3.createMultipartUpload(key: "k", checksum: .none, metadata: [:], storageClass: nil)
            }
            await Self.expectS3Error(code: "NoSuchBucket", status: 404, transient: false) {
                _ = try await s3.listMultipartUploads(prefix: nil)
            }
        }
    }

    /// A distinctive secret never reaches an error's description, whatever failed: server errors, a refused
    /// connection, a local file.
    @Test func secretNeverInErrors() async throws {
        let secret = "SeCrEt-0xC0FFEE-never-print-me"
        let token = "TOKEN-also-secret"
        let credentials = S3Credentials(accessKeyID: "AKIDTEST", secretAccessKey: secret, sessionToken: token)
        var errors: [any Error] = []
        let s3 = Self.client(try #require(MotoServer.endpoint), bucket: "no-such-bucket-here", credentials: credentials)
        do { _ = try await s3.getObject(key: "k") } catch { errors.append(error) }
        do { _ = try await s3.completeMultipartUpload(key: "k", uploadID: "u", parts: [], ifNoneMatch: false) } catch {
            errors.append(error)
        }
        // Nothing listens on this port: the connection is refused until the deadline.
        let closed = Self.client(URL(string: "http://127.0.0.1:\(try freeLoopbackPort())")!,
                                 credentials: credentials, timeout: .seconds(1))
        do { try await closed.deleteObject(key: "k") } catch { errors.append(error) }
        do {
            _ = try await closed.putObject(key: "k", file: "/nonexistent/file", checksum: .none, metadata: [:],
                                           storageClass: nil, ifNoneMatch: false)
        } catch { errors.append(error) }

        let codes = errors.compactMap { ($0 as? S3Error)?.code }
        #expect(codes.count == 4)
        #expect(codes.first == "NoSuchBucket")
        #expect(codes.dropFirst(2).first.map { ["Transport", "Timeout"].contains($0) } == true)
        #expect(codes.last == "LocalFile")
        for error in errors {
            for text in ["\(error)", String(reflecting: error), (error as? S3Error)?.message ?? ""] {
                #expect(!text.contains(secret), "\(text)")
                #expect(!text.contains(token), "\(text)")
                #expect(!text.contains("Signature="), "\(text)")
            }
        }
    }
}

/// Failures that need no S3 server.
struct ClientFailureTests {
    /// A server that never answers: the request ends at its deadline with a transient `Timeout`.
    @Test func requestsHaveADeadline() async throws {
        let listener = try SilentListener()
        let s3 = MotoIntegrationTests.client(URL(string: "http://127.0.0.1:\(listener.port)")!, timeout: .milliseconds(500))
        let start = ContinuousClock.now
        await MotoIntegrationTests.expectS3Error(code: "Timeout", status: nil, transient: true) {
            _ = try await s3.headObject(key: "k")
        }
        #expect(ContinuousClock.now - start < .seconds(10))
        withExtendedLifetime(listener) {}
    }

    /// With connection retries off in the caller's HTTP client, a refused connection fails at once as `Transport`.
    @Test func refusedConnectionIsTransport() async throws {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        let httpClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let s3 = S3Client(
            location: S3Location(endpoint: URL(string: "http://127.0.0.1:\(try freeLoopbackPort())"),
                                 region: "us-east-1", bucket: "b", pathStyle: true),
            credentials: MotoIntegrationTests.credentials, httpClient: httpClient, requestTimeout: .seconds(30),
            logger: Logger(label: "test"))
        let start = ContinuousClock.now
        await MotoIntegrationTests.expectS3Error(code: "Transport", status: nil, transient: true) {
            _ = try await s3.getObject(key: "k")
        }
        #expect(ContinuousClock.now - start < .seconds(10))
        try await httpClient.shutdown()
    }

    @Test func localFileAndArgumentErrors() async throws {
        let s3 = MotoIntegrationTests.client(URL(string: "http://127.0.0.1:1")!)
        await MotoIntegrationTests.expectS3Error(code: "LocalFile", status: nil, transient: false) {
            _ = try await s3.putObject(key: "k", file: "/nonexistent/file", checksum: .none, metadata: [:],
                                       storageClass: nil, ifNoneMatch: false)
        }
        try await MotoIntegrationTests.withFile(100) { path, _ in
            await MotoIntegrationTests.expectS3Error(code: "LocalFile", status: nil, transient: false) {
                _ = try await s3.uploadPart(key: "k", uploadID: "u", number: 1, file: path, offset: 50, length: 51,
                                            checksum: .none)
            }
            await MotoIntegrationTests.expectS3Error(code: "InvalidArgument", status: nil, transient: false) {
                _ = try await s3.uploadPart(key: "k", uploadID: "u", number: 10_001, file: path, offset: 0, length: 1,
                                            checksum: .none)
            }
            await MotoIntegrationTests.expectS3Error(code: "InvalidArgument", status: nil, transient: false) {
                _ = try await s3.putObject(key: "k", file: path, checksum: .none, metadata: ["bad name": "x"],
                                           storageClass: nil, ifNoneMatch: false)
            }
            await MotoIntegrationTests.expectS3Error(code: "InvalidArgument", status: nil, transient: false) {
                _ = try await s3.putObject(key: "k", file: path, checksum: .none, metadata: ["ok": "line\nbreak"],
                                           storageClass: nil, ifNoneMatch: false)
            }
        }
        let badEndpoint = S3Client(
            location: S3Location(endpoint: URL(string: "ftp://example.com"), region: "us-east-1", bucket: "b", pathStyle: true),
            credentials: MotoIntegrationTests.credentials, httpClient: HTTPClient.shared, logger: Logger(label: "test"))
        await MotoIntegrationTests.expectS3Error(code: "InvalidArgument", status: nil, transient: false) {
            try await badEndpoint.deleteObject(key: "k")
        }
    }
}
