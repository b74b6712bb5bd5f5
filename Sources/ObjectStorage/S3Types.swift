import Foundation

/// Access keys for an S3-compatible service.
///
/// `description`, `debugDescription` and the reflection (`dump`) show the access key ID only: the secret and the
/// session token are redacted, so a credential that ends up in a log line or an error message leaks nothing.
public struct S3Credentials: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The access key ID (public part of the key pair).
    public var accessKeyID: String
    /// The secret access key. Never printed.
    public var secretAccessKey: String
    /// A temporary session token (STS), sent as `X-Amz-Security-Token`. Never printed.
    public var sessionToken: String?

    /// Creates credentials.
    /// - Parameters:
    ///   - accessKeyID: The access key ID.
    ///   - secretAccessKey: The secret access key.
    ///   - sessionToken: A session token for temporary credentials, or `nil`.
    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    /// The access key ID with the secret and token redacted.
    public var description: String {
        "S3Credentials(accessKeyID: \(accessKeyID), secretAccessKey: <redacted>, "
            + "sessionToken: \(sessionToken == nil ? "nil" : "<redacted>"))"
    }

    /// Same as ``description``.
    public var debugDescription: String { description }

    /// A mirror without the secret, so `dump` and reflection of values that hold credentials stay clean.
    public var customMirror: Mirror {
        Mirror(self, children: ["accessKeyID": accessKeyID, "secretAccessKey": "<redacted>",
                                "sessionToken": sessionToken == nil ? "nil" : "<redacted>"], displayStyle: .struct)
    }
}

/// Where a bucket lives: the service endpoint, the signing region, the bucket and the addressing style.
public struct S3Location: Sendable {
    /// The service endpoint (`http://127.0.0.1:9000`, `https://minio.example.com`); a path on it is kept as a
    /// prefix. `nil` means AWS: `https://s3.<region>.amazonaws.com`.
    public var endpoint: URL?
    /// The region used in signatures (`us-east-1` for most S3-compatible servers).
    public var region: String
    /// The bucket name.
    public var bucket: String
    /// `true`: `http(s)://host/bucket/key` (path style, what most self-hosted servers need);
    /// `false`: `http(s)://bucket.host/key` (virtual-host style, AWS's default).
    public var pathStyle: Bool

    /// Creates a location.
    /// - Parameters:
    ///   - endpoint: The service endpoint, or `nil` for AWS in `region`.
    ///   - region: The signing region.
    ///   - bucket: The bucket name.
    ///   - pathStyle: Whether the bucket goes in the path (`true`) or in the host name (`false`).
    public init(endpoint: URL?, region: String, bucket: String, pathStyle: Bool) {
        self.endpoint = endpoint
        self.region = region
        self.bucket = bucket
        self.pathStyle = pathStyle
    }
}

/// The additional checksum sent with an object or part (`x-amz-checksum-*`) and verified by the server.
public struct S3ChecksumAlgorithm: Sendable, Hashable, CustomStringConvertible {
    private enum Value: String, Sendable, Hashable {
        case sha256 = "SHA256", crc32c = "CRC32C", none = "NONE"
    }
    private let value: Value
    private init(_ value: Value) { self.value = value }

    /// SHA-256 of the body, base64 (`x-amz-checksum-sha256`).
    public static let sha256 = S3ChecksumAlgorithm(.sha256)
    /// CRC-32C (Castagnoli) of the body, base64 of its 4 big-endian bytes (`x-amz-checksum-crc32c`).
    public static let crc32c = S3ChecksumAlgorithm(.crc32c)
    /// No additional checksum: no checksum header is sent at all (the SigV4 payload hash still protects the body).
    public static let none = S3ChecksumAlgorithm(.none)

    /// `SHA256`, `CRC32C` or `NONE`.
    public var description: String { value.rawValue }

    /// The value of `x-amz-checksum-algorithm` / `x-amz-sdk-checksum-algorithm`; `nil` for `.none`.
    var headerValue: String? { value == .none ? nil : value.rawValue }
    /// The checksum header name; `nil` for `.none`.
    var checksumHeader: String? {
        switch value {
        case .sha256: "x-amz-checksum-sha256"
        case .crc32c: "x-amz-checksum-crc32c"
        case .none: nil
        }
    }
    /// The element of a part in `CompleteMultipartUpload` / `ListParts`; `nil` for `.none`.
    var xmlElement: String? {
        switch value {
        case .sha256: "ChecksumSHA256"
        case .crc32c: "ChecksumCRC32C"
        case .none: nil
        }
    }

    /// The algorithm of a base64 checksum as S3 returns it, told by its decoded length (32 bytes: SHA-256,
    /// 4 bytes: CRC-32C); `nil` when it is neither.
    static func inferred(fromBase64 checksum: String) -> S3ChecksumAlgorithm? {
        switch Data(base64Encoded: checksum)?.count {
        case 32: .sha256
        case 4: .crc32c
        default: nil
        }
    }
}

/// One uploaded part of a multipart upload: what `CompleteMultipartUpload` needs, and what a resumed upload keeps.
public struct S3Part: Sendable, Codable, Hashable {
    /// The part number, 1...10000.
    public var number: Int
    /// The part's ETag as S3 returns it (with its double quotes).
    public var etag: String
    /// The part's checksum, base64 as S3 returns it, or `nil` when the upload has none. Its algorithm is told by
    /// its length (44 characters: SHA-256, 8: CRC-32C).
    public var checksum: String?
    /// The part's size in bytes.
    public var size: Int64

    /// Creates a part record.
    public init(number: Int, etag: String, checksum: String?, size: Int64) {
        self.number = number
        self.etag = etag
        self.checksum = checksum
        self.size = size
    }
}

/// What `HeadObject` tells about an object.
public struct S3ObjectInfo: Sendable {
    /// The object's size in bytes.
    public var size: Int64
    /// The object's ETag as S3 returns it (with its double quotes).
    public var etag: String
    /// User metadata: the `x-amz-meta-*` headers without the prefix, keys lowercased.
    public var metadata: [String: String]
    /// The stored additional checksum (`x-amz-checksum-sha256` or `-crc32c`, asked for with
    /// `x-amz-checksum-mode: ENABLED`), or `nil` when the server keeps or returns none. For a multipart object S3
    /// returns a checksum of the part checksums, suffixed `-<parts>`.
    public var checksum: String?

    /// Creates an object description.
    public init(size: Int64, etag: String, metadata: [String: String], checksum: String? = nil) {
        self.size = size
        self.etag = etag
        self.metadata = metadata
        self.checksum = checksum
    }
}

/// A multipart upload in progress (`ListMultipartUploads`).
public struct S3MultipartUploadInfo: Sendable {
    /// The object key the upload will create.
    public var key: String
    /// The upload ID.
    public var uploadID: String
    /// When the upload was created.
    public var initiated: Date

    /// Creates an upload description.
    public init(key: String, uploadID: String, initiated: Date) {
        self.key = key
        self.uploadID = uploadID
        self.initiated = initiated
    }
}
