/// An expected checksum, `sha256:<hex>`, `sha1:<hex>` or `md5:<hex>`, verified after download.
public struct Checksum: Sendable, Hashable, Codable, CustomStringConvertible {
    /// A supported digest algorithm.
    public enum Algorithm: String, Sendable, Hashable, Codable, CaseIterable {
        case sha256, sha1, md5

        /// Hex digits of a digest.
        public var hexLength: Int {
            switch self {
            case .sha256: 64
            case .sha1: 40
            case .md5: 32
            }
        }
    }

    /// The algorithm.
    public let algorithm: Algorithm
    /// The digest in lowercase hex.
    public let hex: String

    /// The SHA-256 in hex, when that is the algorithm.
    public var sha256: String? { algorithm == .sha256 ? hex : nil }

    /// Parses `<algorithm>:<hex>`; the algorithm is case-insensitive, the hex is normalized to lowercase.
    /// - Throws: ``JobRejection`` `unknown_checksum_algorithm`, `invalid_checksum` or `control_character`.
    public init(parsing text: String) throws(JobRejection) {
        try TransferJob.checkNoControlCharacters(text, field: "checksum")
        guard let colon = text.firstIndex(of: ":") else {
            throw JobRejection(.invalidChecksum, field: "checksum",
                               "checksum \(excerpt(text)) is not <algorithm>:<hex> (sha256, sha1 or md5)")
        }
        let name = text[..<colon].lowercased()
        guard let algorithm = Algorithm(rawValue: name) else {
            throw JobRejection(.unknownChecksumAlgorithm, field: "checksum",
                               "checksum algorithm \(excerpt(name)) is not one of sha256, sha1, md5")
        }
        let hex = text[text.index(after: colon)...].lowercased()
        guard hex.unicodeScalars.count == algorithm.hexLength, hex.unicodeScalars.allSatisfy(\.properties.isASCIIHexDigit)
        else {
            throw JobRejection(.invalidChecksum, field: "checksum",
                               "\(name) checksum must be \(algorithm.hexLength) hex digits, got \(excerpt(hex))")
        }
        self.algorithm = algorithm
        self.hex = hex
    }

    /// `<algorithm>:<hex>`.
    public var description: String { "\(algorithm.rawValue):\(hex)" }

    /// Decodes the string form, `<algorithm>:<hex>`.
    /// - Throws: `DecodingError.dataCorrupted` with the ``JobRejection`` as its underlying error.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do {
            self = try Checksum(parsing: text)
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.message,
                                                    underlyingError: error))
        }
    }

    /// Encodes the string form, `<algorithm>:<hex>`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

extension Sequence<UInt8> {
    /// The bytes as lowercase hex digits (digests, ids).
    var hexDigits: String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        for byte in self {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
