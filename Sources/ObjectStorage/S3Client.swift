import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// A client for one bucket of an S3-compatible service: the operations a multipart uploader needs, signed with
/// SigV4 over one payload hash per request (never `aws-chunked`, which many S3-compatible servers get wrong).
///
/// Every request has a deadline (`requestTimeout`, covering the whole exchange, bodies included) and is tried
/// once: the caller retries the errors whose ``S3Error/isTransient`` is `true`. Request bodies read from files are
/// streamed in 1 MiB chunks twice (once to hash, once to send), so memory stays bounded whatever their size; a
/// file that changes in between makes the server refuse the body (`XAmzContentSHA256Mismatch`, permanent).
/// Logs at debug level only: the operation, the key and the status, never a header.
public final class S3Client: Sendable {
    /// Where the bucket is.
    public let location: S3Location
    let signer: SigV4Signer
    let httpClient: HTTPClient
    let requestTimeout: Duration
    let logger: Logger
    let endpoint: Result<Endpoint, S3Error>

    /// The largest single PutObject body S3 takes (5 GiB).
    static let maxObjectSize: Int64 = 5 << 30
    /// The largest object ``getObject(key:)`` returns.
    static let maxGetObjectBytes = 64 << 20

    /// Creates a client. Nothing is sent until the first operation; a bad endpoint or bucket name makes every
    /// operation throw `InvalidArgument`.
    /// - Parameters:
    ///   - location: The endpoint, region and bucket.
    ///   - credentials: The keys that sign the requests.
    ///   - httpClient: The HTTP client to send with; the caller owns it and shuts it down after the last request.
    ///   - requestTimeout: The deadline of each request, from sending to the last byte of the answer: long enough
    ///     for the largest part at the slowest acceptable rate.
    ///   - logger: Where debug lines go.
    public init(location: S3Location, credentials: S3Credentials, httpClient: HTTPClient,
                requestTimeout: Duration = .seconds(60), logger: Logger) {
        self.location = location
        self.signer = SigV4Signer(credentials: credentials, region: location.region, service: "s3")
        self.httpClient = httpClient
        self.requestTimeout = requestTimeout
        self.logger = logger
        self.endpoint = Endpoint.resolve(location)
    }

    // MARK: Objects

    /// Uploads a whole file as one object (PutObject).
    ///
    /// For files up to a part's size; larger ones go through a multipart upload. The file is read twice in 1 MiB
    /// chunks: once for the payload hash and the checksum, once to send.
    /// - Parameters:
    ///   - key: The object key.
    ///   - path: The local file.
    ///   - checksum: The additional checksum to send (`x-amz-checksum-*`), verified by the server.
    ///   - metadata: User metadata, sent as `x-amz-meta-<name>`; names are lowercased; values must be printable
    ///     ASCII.
    ///   - storageClass: `x-amz-storage-class`, or `nil` for the bucket's default.
    ///   - ifNoneMatch: Send `If-None-Match: *`: fail with `PreconditionFailed` when the key exists.
    /// - Returns: The object's ETag as S3 returns it (quoted).
    /// - Throws: ``S3Error``; `EntityTooLarge` for files over 5 GiB, `LocalFile` when the file cannot be read.
    public func putObject(key: String, file path: String, checksum: S3ChecksumAlgorithm, metadata: [String: String],
                          storageClass: String?, ifNoneMatch: Bool) async throws -> String {
        var headers = try objectHeaders(metadata: metadata, storageClass: storageClass)
        if ifNoneMatch { headers.append(("If-None-Match", "*")) }
        let slice = try await FileSlice.open(path: path, offset: 0, length: nil)
        guard slice.length <= Self.maxObjectSize else {
            throw S3Error(status: nil, code: "EntityTooLarge",
                          message: "PutObject \(key): \(slice.length) bytes is over the 5 GiB limit of one request")
        }
        let digest = try await slice.digest(checksum: checksum)
        headers += checksumHeaders(checksum, value: digest.checksum)
        let response = try await send("PutObject", key: key, method: .PUT, headers: headers,
                                      body: .file(slice, payloadHash: digest.payloadHash))
        return try etag(response, operation: "PutObject", key: key)
    }

    /// Describes an object (HeadObject), with its stored checksum when `checksumMode` asks for it and the server
    /// returns one (off by default: servers that reject checksum headers reject `x-amz-checksum-mode` too).
    /// - Returns: The object's size, ETag and metadata, or `nil` when there is no such key (a missing bucket also
    ///   answers 404 without a body, so it reads as `nil` too).
    public func headObject(key: String, checksumMode: Bool = false) async throws -> S3ObjectInfo? {
        let response = try await send("HeadObject", key: key, method: .HEAD,
                                      headers: checksumMode ? [("x-amz-checksum-mode", "ENABLED")] : [], allowing: [404])
        if response.status == 404 { return nil }
        guard let size = response.headers.first(name: "content-length").flatMap({ Int64($0) }) else {
            throw badResponse("HeadObject", key: key, response: response, "no Content-Length")
        }
        var metadata: [String: String] = [:]
        var checksum: String?
        for header in response.headers {
            let name = header.name.lowercased()
            if name.hasPrefix("x-amz-meta-") {
                metadata[String(name.dropFirst("x-amz-meta-".count))] = header.value
            } else if name == "x-amz-checksum-sha256" || name == "x-amz-checksum-crc32c" {
                checksum = header.value
            }
        }
        return S3ObjectInfo(size: size, etag: try etag(response, operation: "HeadObject", key: key),
                            metadata: metadata, checksum: checksum)
    }

    /// Reads a whole object (GetObject) into memory: for tests and small objects.
    /// - Throws: ``S3Error``; `ResponseTooLarge` for objects over 64 MiB.
    public func getObject(key: String) async throws -> [UInt8] {
        try await send("GetObject", key: key, method: .GET, maxResponseBytes: Self.maxGetObjectBytes).body
    }

    /// Deletes an object (DeleteObject). A missing key is not an error.
    public func deleteObject(key: String) async throws {
        _ = try await send("DeleteObject", key: key, method: .DELETE, allowingCodes: ["NoSuchKey"])
    }

    // MARK: Multipart uploads

    /// Starts a multipart upload (CreateMultipartUpload).
    /// - Parameters:
    ///   - key: The object key the upload will create.
    ///   - checksum: The checksum algorithm of every part (`x-amz-checksum-algorithm`); parts must then be uploaded
    ///     with the same one.
    ///   - metadata: User metadata of the object, as for
    ///     ``putObject(key:file:checksum:metadata:storageClass:ifNoneMatch:)``.
    ///   - storageClass: `x-amz-storage-class`, or `nil`.
    /// - Returns: The upload ID.
    public func createMultipartUpload(key: String, checksum: S3ChecksumAlgorithm, metadata: [String: String],
                                      storageClass: String?) async throws -> String {
        var headers = try objectHeaders(metadata: metadata, storageClass: storageClass)
        if let algorithm = checksum.headerValue { headers.append(("x-amz-checksum-algorithm", algorithm)) }
        let response = try await send("CreateMultipartUpload", key: key, method: .POST, query: [("uploads", "")],
                                      headers: headers)
        guard let id = S3XML.parse(response.body).flatMap(S3XML.uploadID) else {
            throw badResponse("CreateMultipartUpload", key: key, response: response, "no UploadId")
        }
        return id
    }

    /// Uploads bytes `[offset, offset + length)` of a file as one part (UploadPart), read in 1 MiB chunks twice
    /// (hash, then send).
    /// - Parameters:
    ///   - number: The part number, 1...10000.
    ///   - checksum: The upload's checksum algorithm, as given to
    ///     ``createMultipartUpload(key:checksum:metadata:storageClass:)``.
    /// - Returns: The part, with its ETag and checksum, for
    ///   ``completeMultipartUpload(key:uploadID:parts:ifNoneMatch:)``.
    public func uploadPart(key: String, uploadID: String, number: Int, file path: String, offset: Int64, length: Int64,
                           checksum: S3ChecksumAlgorithm) async throws -> S3Part {
        guard (1...10_000).contains(number), length <= Self.maxObjectSize else {
            throw S3Error(status: nil, code: "InvalidArgument",
                          message: "UploadPart \(key): part \(number) of \(length) bytes is outside S3's limits")
        }
        let slice = try await FileSlice.open(path: path, offset: offset, length: length)
        let digest = try await slice.digest(checksum: checksum)
        let response = try await send(
            "UploadPart", key: key, method: .PUT, query: [("partNumber", String(number)), ("uploadId", uploadID)],
            headers: checksumHeaders(checksum, value: digest.checksum),
            body: .file(slice, payloadHash: digest.payloadHash))
        return S3Part(number: number, etag: try etag(response, operation: "UploadPart", key: key),
                      checksum: digest.checksum, size: length)
    }

    /// Lists the parts uploaded so far (ListParts), following every page.
    public func listParts(key: String, uploadID: String) async throws -> [S3Part] {
        try await listParts(key: key, uploadID: uploadID, maxParts: nil)
    }

    /// ``listParts(key:uploadID:)`` with a page size (tests use small pages to exercise paging).
    func listParts(key: String, uploadID: String, maxParts: Int?) async throws -> [S3Part] {
        var parts: [S3Part] = []
        var marker: Int?
        repeat {
            var query = [("uploadId", uploadID)]
            if let marker { query.append(("part-number-marker", String(marker))) }
            if let maxParts { query.append(("max-parts", String(maxParts))) }
            let response = try await send("ListParts", key: key, method: .GET, query: query)
            guard let page = S3XML.parse(response.body).flatMap(S3XML.partsPage) else {
                throw badResponse("ListParts", key: key, response: response, "not a ListPartsResult")
            }
            parts += page.parts
            guard page.isTruncated else { break }
            guard let next = page.nextPartNumberMarker, next > (marker ?? 0) else {
                throw badResponse("ListParts", key: key, response: response, "truncated without a new marker")
            }
            marker = next
        } while true
        return parts
    }

    /// Completes a multipart upload (CompleteMultipartUpload) from its parts, sent by ascending number with their
    /// checksums.
    /// - Parameters:
    ///   - ifNoneMatch: Send `If-None-Match: *`: fail with `PreconditionFailed` when the key exists.
    /// - Returns: The object's ETag.
    /// - Throws: ``S3Error``, also when S3 answers 200 with an `<Error>` body (it starts answering before it knows).
    public func completeMultipartUpload(key: String, uploadID: String, parts: [S3Part],
                                        ifNoneMatch: Bool) async throws -> String {
        let body = Array(S3XML.completeBody(parts).utf8)
        let response = try await send("CompleteMultipartUpload", key: key, method: .POST,
                                      query: [("uploadId", uploadID)],
                                      headers: ifNoneMatch ? [("If-None-Match", "*")] : [], body: .bytes(body))
        return try completedETag(response, key: key)
    }

    /// The ETag of a CompleteMultipartUpload answer, or the error of its `<Error>` body (sent with status 200).
    func completedETag(_ response: Response, key: String) throws -> String {
        guard let root = S3XML.parse(response.body) else {
            throw badResponse("CompleteMultipartUpload", key: key, response: response, "not XML")
        }
        if let error = S3XML.error(root) {
            throw S3Error(status: response.status, code: error.code,
                          message: redact("CompleteMultipartUpload \(key): \(error.message)"),
                          requestID: error.requestID ?? response.requestID)
        }
        guard let etag = S3XML.completedETag(root) else {
            throw badResponse("CompleteMultipartUpload", key: key, response: response, "no ETag")
        }
        return etag
    }

    /// Aborts a multipart upload (AbortMultipartUpload); an upload that is already gone (`NoSuchUpload`) is not an
    /// error.
    public func abortMultipartUpload(key: String, uploadID: String) async throws {
        _ = try await send("AbortMultipartUpload", key: key, method: .DELETE, query: [("uploadId", uploadID)],
                           allowingCodes: ["NoSuchUpload"])
    }

    /// Lists the multipart uploads in progress (ListMultipartUploads), following every page.
    /// - Parameter prefix: Only uploads whose key starts with it, or `nil` for all.
    public func listMultipartUploads(prefix: String?) async throws -> [S3MultipartUploadInfo] {
        var uploads: [S3MultipartUploadInfo] = []
        var markers: (key: String, uploadID: String)?
        repeat {
            var query = [("uploads", "")]
            if let prefix { query.append(("prefix", prefix)) }
            if let markers { query += [("key-marker", markers.key), ("upload-id-marker", markers.uploadID)] }
            let response = try await send("ListMultipartUploads", key: nil, method: .GET, query: query)
            guard let page = S3XML.parse(response.body).flatMap(S3XML.uploadsPage) else {
                throw badResponse("ListMultipartUploads", key: nil, response: response,
                                  "not a ListMultipartUploadsResult")
            }
            uploads += page.uploads
            guard page.isTruncated else { break }
            guard let key = page.nextKeyMarker, let id = page.nextUploadIDMarker,
                  markers.map({ $0.key != key || $0.uploadID != id }) ?? true
            else {
                throw badResponse("ListMultipartUploads", key: nil, response: response, "truncated without new markers")
            }
            markers = (key, id)
        } while true
        return uploads
    }

    // MARK: Buckets

    /// Creates the bucket (CreateBucket), for tests and first-time setup; a bucket this account already owns is
    /// not an error.
    public func createBucket() async throws {
        let body: Body = location.region == "us-east-1"
            ? .none : .bytes(Array(S3XML.createBucketBody(region: location.region).utf8))
        _ = try await send("CreateBucket", key: nil, method: .PUT, body: body,
                           allowingCodes: ["BucketAlreadyOwnedByYou"])
    }

    // MARK: Requests

    /// The host, authority and path prefix every request of this client uses.
    struct Endpoint: Sendable {
        var scheme: String
        /// `host[:port]`, the `Host` header and the URL's authority.
        var authority: String
        /// The path of the bucket (`/prefix/bucket` path style, `/prefix` or empty virtual-host style).
        var basePath: String

        static func resolve(_ location: S3Location) -> Result<Endpoint, S3Error> {
            let url = location.endpoint ?? URL(string: "https://s3.\(location.region).amazonaws.com")
            guard let url, let components = URLComponents(url: url, resolvingAgainstBaseURL: false),
                  let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
                  var host = components.host, !host.isEmpty, !location.bucket.isEmpty, !location.bucket.contains("/")
            else {
                return .failure(S3Error(status: nil, code: "InvalidArgument",
                                        message: "not an http(s) endpoint with a host, or an empty bucket name"))
            }
            if host.contains(":"), !host.hasPrefix("[") { host = "[\(host)]" }
            if !location.pathStyle { host = "\(location.bucket).\(host)" }
            if let port = components.port, port != (scheme == "http" ? 80 : 443) { host += ":\(port)" }
            var base = components.percentEncodedPath
            while base.hasSuffix("/") { base.removeLast() }
            if location.pathStyle { base += "/" + S3URIEncoding.encode(location.bucket, keepSlash: false) }
            return .success(Endpoint(scheme: scheme, authority: host, basePath: base))
        }
    }

    enum Body {
        case none
        case bytes([UInt8])
        case file(FileSlice, payloadHash: String)
    }

    struct Response: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
        var requestID: String? { headers.first(name: "x-amz-request-id") ?? headers.first(name: "x-amzn-requestid") }
    }

    /// Signs and sends one request and reads its whole answer, all within `requestTimeout`.
    /// - Parameters:
    ///   - key: The object key, or `nil` for a bucket request.
    ///   - allowing: Error statuses returned as responses instead of thrown.
    ///   - allowingCodes: S3 error codes returned as responses instead of thrown.
    func send(_ operation: String, key: String?, method: HTTPMethod, query: [(String, String)] = [],
              headers: [(String, String)] = [], body: Body = .none, maxResponseBytes: Int = S3XML.maxBytes,
              allowing: Set<Int> = [], allowingCodes: Set<String> = []) async throws -> Response {
        let endpoint = try endpoint.get()
        let path = key.map { endpoint.basePath + "/" + S3URIEncoding.encode($0, keepSlash: true) }
            ?? (endpoint.basePath.isEmpty ? "/" : endpoint.basePath)
        let encodedQuery = query
            .map { (S3URIEncoding.encode($0.0, keepSlash: false), S3URIEncoding.encode($0.1, keepSlash: false)) }
            .sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
        let sentQuery = encodedQuery.map { $0.1.isEmpty ? $0.0 : "\($0.0)=\($0.1)" }.joined(separator: "&")

        let payloadHash: String
        var request = HTTPClientRequest(url: "\(endpoint.scheme)://\(endpoint.authority)\(path)"
            + (sentQuery.isEmpty ? "" : "?\(sentQuery)"))
        request.method = method
        switch body {
        case .none:
            payloadHash = SigV4Signer.emptyPayloadHash
        case .bytes(let bytes):
            payloadHash = SigV4Signer.hex(SHA256.hash(data: bytes))
            request.body = .bytes(ByteBuffer(bytes: bytes))
        case .file(let slice, let hash):
            payloadHash = hash
            request.body = .stream(slice.chunks, length: .known(slice.length))
        }
        let unsigned = [("Host", endpoint.authority)] + headers
        let signed = signer.signature(
            method: method.rawValue, canonicalURI: path,
            canonicalQuery: encodedQuery.map { "\($0.0)=\($0.1)" }.joined(separator: "&"),
            headers: unsigned, payloadHash: payloadHash, date: Date()).headers
        for (name, value) in unsigned + signed { request.headers.add(name: name, value: value) }

        let response: Response
        do {
            response = try await withDeadline(requestTimeout) { [httpClient, requestTimeout, request] in
                let answer = try await httpClient.execute(request, timeout: .nanoseconds(requestTimeout.nanoseconds))
                let bytes = try await answer.body.collect(upTo: maxResponseBytes)
                return Response(status: Int(answer.status.code), headers: answer.headers,
                                body: Array(buffer: bytes))
            }
        } catch {
            throw transportError(error, operation: operation, key: key)
        }
        logger.debug("S3 request", metadata: ["s3.operation": "\(operation)", "s3.key": "\(key ?? "")",
                                              "s3.status": "\(response.status)"])
        guard !(200..<300).contains(response.status), !allowing.contains(response.status) else { return response }
        let error = s3Error(response, operation: operation, key: key)
        if allowingCodes.contains(error.code) { return response }
        throw error
    }

    /// The error of an error response: from its `<Error>` body, else from its status.
    func s3Error(_ response: Response, operation: String, key: String?) -> S3Error {
        let target = key.map { "\(operation) \($0)" } ?? operation
        if let root = S3XML.parse(response.body), let body = S3XML.error(root) {
            return S3Error(status: response.status, code: body.code, message: redact("\(target): \(body.message)"),
                           requestID: body.requestID ?? response.requestID)
        }
        return S3Error(status: response.status, code: S3Error.code(forStatus: response.status),
                       message: "\(target): HTTP \(response.status)", requestID: response.requestID)
    }

    func transportError(_ error: any Error, operation: String, key: String?) -> any Error {
        if let error = error as? S3Error { return error }
        if error is CancellationError { return error }
        let target = key.map { "\(operation) \($0)" } ?? operation
        if error is DeadlineExceeded {
            return S3Error(status: nil, code: "Timeout",
                           message: "\(target): no complete answer within \(requestTimeout)")
        }
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .connectTimeout, .writeTimeout:
                return S3Error(status: nil, code: "Timeout", message: redact("\(target): \(error)"))
            case .cancelled:
                return CancellationError()
            default: break
            }
        }
        if error is NIOTooManyBytesError {
            return S3Error(status: nil, code: "ResponseTooLarge",
                           message: "\(target): answer larger than this call reads")
        }
        return S3Error(status: nil, code: "Transport", message: redact("\(target): \(error)"))
    }

    func badResponse(_ operation: String, key: String?, response: Response, _ problem: String) -> S3Error {
        S3Error(status: response.status, code: "BadResponse",
                message: "\(key.map { "\(operation) \($0)" } ?? operation): \(problem)", requestID: response.requestID)
    }

    func etag(_ response: Response, operation: String, key: String) throws -> String {
        guard let etag = response.headers.first(name: "etag"), !etag.isEmpty else {
            throw badResponse(operation, key: key, response: response, "no ETag")
        }
        return etag
    }

    /// Removes anything secret from a text bound for an error message: the secret key, the session token and any
    /// signature.
    func redact(_ text: String) -> String {
        var text = text
        let secrets = [signer.credentials.secretAccessKey, signer.credentials.sessionToken ?? ""]
        for secret in secrets where !secret.isEmpty {
            text = text.replacingOccurrences(of: secret, with: "<redacted>")
        }
        while let range = text.range(of: #"Signature=[0-9a-fA-F]+"#, options: .regularExpression) {
            text.replaceSubrange(range, with: "Signature=<redacted>")
        }
        return text
    }

    func objectHeaders(metadata: [String: String], storageClass: String?) throws -> [(String, String)] {
        var headers: [(String, String)] = []
        for (name, value) in metadata.sorted(by: { $0.key < $1.key }) {
            let nameIsToken = !name.isEmpty && name.utf8.allSatisfy {
                ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A)
                    || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".")
            }
            guard nameIsToken, value.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
                throw S3Error(status: nil, code: "InvalidArgument",
                              message: "metadata \(name): names must be letters, digits, - _ . "
                                  + "and values printable ASCII")
            }
            headers.append(("x-amz-meta-\(name.lowercased())", value))
        }
        if let storageClass { headers.append(("x-amz-storage-class", storageClass)) }
        return headers
    }

    func checksumHeaders(_ algorithm: S3ChecksumAlgorithm, value: String?) -> [(String, String)] {
        guard let header = algorithm.checksumHeader, let name = algorithm.headerValue, let value else { return [] }
        return [(header, value), ("x-amz-sdk-checksum-algorithm", name)]
    }
}

/// The whole-request deadline passed.
struct DeadlineExceeded: Error {}

/// Runs `body`, cancelling it and throwing ``DeadlineExceeded`` when it takes longer than `timeout`.
func withDeadline<T: Sendable>(
    _ timeout: Duration, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: timeout)
            throw DeadlineExceeded()
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

extension Duration {
    /// Whole nanoseconds, saturating at `Int64.max`.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : product.addingReportingOverflow(attoseconds / 1_000_000_000).partialValue
    }
}
