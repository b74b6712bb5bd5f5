import Crypto
import Foundation

/// Signs HTTP requests with AWS Signature Version 4, header-based (the `Authorization` header), one payload hash
/// for the whole body: no chunked (`aws-chunked`) signing and no query-string (presigned) signing.
///
/// Implements "Signature Calculations for the Authorization Header: Transferring Payload in a Single Chunk" (AWS
/// S3 API reference) with S3's path rules: the path is URI-encoded once (not twice, as other services do) and not
/// normalized (`.`, `..` and `//` are kept).
public struct SigV4Signer: Sendable {
    /// The keys that sign.
    public let credentials: S3Credentials
    /// The signing region (`us-east-1`).
    public let region: String
    /// The signing service name (`s3`).
    public let service: String

    /// Creates a signer.
    /// - Parameters:
    ///   - credentials: The keys that sign.
    ///   - region: The region of the credential scope.
    ///   - service: The service of the credential scope (`s3` for S3).
    public init(credentials: S3Credentials, region: String, service: String) {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// The SHA-256 of an empty body, hex: the payload hash of requests without a body.
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// Signs a request and returns the headers to add to it.
    ///
    /// Every header in `headers` is signed (names are case-insensitive; repeated names are joined with commas), and
    /// `Host` too: taken from `headers` when given, else from `url` (with its port when not the scheme's default).
    /// The request must be sent with exactly these header values and this URL.
    ///
    /// - Parameters:
    ///   - method: The HTTP method (`GET`, `PUT`, ...).
    ///   - url: The request URL; its path and query are canonicalized (decoded, then encoded once per SigV4).
    ///   - headers: The headers that will be sent, other than those returned here.
    ///   - payloadHash: The lowercase hex SHA-256 of the body (``emptyPayloadHash`` for none).
    ///   - date: The signing time; servers refuse signatures more than 15 minutes off their clock.
    ///   - includeContentSHA256: Whether to add (and sign) `X-Amz-Content-Sha256: <payloadHash>`, which S3 needs.
    /// - Returns: `Authorization`, `X-Amz-Date`, `X-Amz-Content-Sha256` when asked, and `X-Amz-Security-Token` when
    ///   the credentials have a session token.
    public func sign(
        method: String, url: URL, headers: [(String, String)], payloadHash: String, date: Date,
        includeContentSHA256: Bool = true
    ) -> [(String, String)] {
        signature(method: method, url: url, headers: headers, payloadHash: payloadHash, date: date,
                  includeContentSHA256: includeContentSHA256).headers
    }

    /// The intermediate results of one signature, for tests and diagnostics (never logged: they are not secret,
    /// but useless without the request).
    struct Signature {
        var canonicalRequest: String
        var stringToSign: String
        var signature: String
        var headers: [(String, String)]
    }

    /// ``sign(method:url:headers:payloadHash:date:includeContentSHA256:)`` with its intermediate results.
    func signature(
        method: String, url: URL, headers: [(String, String)], payloadHash: String, date: Date,
        includeContentSHA256: Bool = true
    ) -> Signature {
        let components = URLComponents(url: url, resolvingAgainstBaseURL: false)
        var headers = headers
        if !headers.contains(where: { $0.0.lowercased() == "host" }), let host = components?.host {
            var value = host.contains(":") ? "[\(host)]" : host
            if let port = components?.port, port != (url.scheme?.lowercased() == "http" ? 80 : 443) {
                value += ":\(port)"
            }
            headers.append(("Host", value))
        }
        return signature(
            method: method, canonicalURI: Self.canonicalURI(percentEncodedPath: components?.percentEncodedPath ?? ""),
            canonicalQuery: Self.canonicalQuery(percentEncodedQuery: components?.percentEncodedQuery),
            headers: headers, payloadHash: payloadHash, date: date, includeContentSHA256: includeContentSHA256)
    }

    /// Signs a request whose path and query are already canonical (what `S3Client` builds and sends verbatim).
    func signature(
        method: String, canonicalURI: String, canonicalQuery: String, headers: [(String, String)],
        payloadHash: String, date: Date, includeContentSHA256: Bool = true
    ) -> Signature {
        let (amzDate, day) = Self.timestamps(date)
        let ownNames: Set<String> = ["authorization", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token"]
        var added: [(String, String)] = [("X-Amz-Date", amzDate)]
        if includeContentSHA256 { added.append(("X-Amz-Content-Sha256", payloadHash)) }
        if let token = credentials.sessionToken { added.append(("X-Amz-Security-Token", token)) }

        // Lowercase names, trimmed values with inner runs of spaces collapsed, repeated names joined by commas.
        var canonical: [String: [String]] = [:]
        for (name, value) in headers where !ownNames.contains(name.lowercased()) {
            canonical[name.lowercased(), default: []].append(Self.canonicalHeaderValue(value))
        }
        for (name, value) in added { canonical[name.lowercased(), default: []].append(value) }
        let names = canonical.keys.sorted()
        let signedHeaders = names.joined(separator: ";")
        let headerBlock = names.map { "\($0):\(canonical[$0]!.joined(separator: ","))\n" }.joined()

        let canonicalRequest = [method.uppercased(), canonicalURI, canonicalQuery, headerBlock, signedHeaders,
                                payloadHash].joined(separator: "\n")
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope,
                            Self.hex(SHA256.hash(data: Data(canonicalRequest.utf8)))].joined(separator: "\n")

        var key = SymmetricKey(data: Data("AWS4\(credentials.secretAccessKey)".utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        let signature = Self.hex(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key))
        let authorization = "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), "
            + "SignedHeaders=\(signedHeaders), Signature=\(signature)"
        return Signature(canonicalRequest: canonicalRequest, stringToSign: stringToSign, signature: signature,
                         headers: [("Authorization", authorization)] + added)
    }

    // MARK: Canonical forms

    /// The canonical URI of an encoded path: each segment decoded, then encoded once per SigV4 (so `%2F` inside a
    /// segment stays `%2F`); `/` for an empty path.
    static func canonicalURI(percentEncodedPath path: String) -> String {
        guard !path.isEmpty else { return "/" }
        return path.split(separator: "/", omittingEmptySubsequences: false).map { segment in
            let decoded = String(segment).removingPercentEncoding ?? String(segment)
            return S3URIEncoding.encode(decoded, keepSlash: false)
        }.joined(separator: "/")
    }

    /// The canonical query of an encoded query: parameters decoded, encoded once, sorted by name then value, each
    /// written `name=value` (an empty value keeps its `=`).
    static func canonicalQuery(percentEncodedQuery query: String?) -> String {
        guard let query, !query.isEmpty else { return "" }
        let pairs = query.split(separator: "&").map { item -> (String, String) in
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0]).removingPercentEncoding ?? String(parts[0])
            let value = parts.count > 1 ? (String(parts[1]).removingPercentEncoding ?? String(parts[1])) : ""
            return (name, value)
        }
        return canonicalQuery(pairs)
    }

    /// The canonical (and sendable) query of decoded parameters.
    static func canonicalQuery(_ parameters: [(String, String)]) -> String {
        parameters.map { (S3URIEncoding.encode($0.0, keepSlash: false), S3URIEncoding.encode($0.1, keepSlash: false)) }
            .sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
            .map { "\($0.0)=\($0.1)" }
            .joined(separator: "&")
    }

    static func canonicalHeaderValue(_ value: String) -> String {
        var result = ""
        var lastWasSpace = false
        for character in value.trimmingCharacters(in: .whitespaces) {
            if character == " " || character == "\t" {
                if !lastWasSpace { result.append(" ") }
                lastWasSpace = true
            } else {
                result.append(character)
                lastWasSpace = false
            }
        }
        return result
    }

    /// `yyyyMMdd'T'HHmmss'Z'` and `yyyyMMdd` in UTC, computed without a formatter (civil-from-days).
    static func timestamps(_ date: Date) -> (amzDate: String, day: String) {
        let seconds = Int64(date.timeIntervalSince1970.rounded(.down))
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        let dayText = pad(year, 4) + pad(month, 2) + pad(day, 2)
        let time = pad(secondOfDay / 3600, 2) + pad(secondOfDay / 60 % 60, 2) + pad(secondOfDay % 60, 2)
        return (dayText + "T" + time + "Z", dayText)
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// URI encoding per SigV4: the bytes of the UTF-8 form, unreserved characters (`A-Z a-z 0-9 - _ . ~`) kept, every
/// other byte `%XX` with uppercase hex; `/` kept only when asked (object keys in paths).
enum S3URIEncoding {
    static func encode(_ text: String, keepSlash: Bool) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                 UInt8(ascii: "~"):
                out.append(byte)
            case UInt8(ascii: "/") where keepSlash:
                out.append(byte)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(digits[Int(byte >> 4)])
                out.append(digits[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
