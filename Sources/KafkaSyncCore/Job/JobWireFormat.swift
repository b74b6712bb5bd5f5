import Foundation

// The JSON wire format of DESIGN.md §2: decoding raw Kafka message values, encoding jobs for the producer.

extension TransferJob {
    /// Decodes and validates a raw Kafka message value. The only way the consumer turns bytes into a job.
    ///
    /// Checks, in order: size (64 KiB), UTF-8, nesting depth (16, counted without recursion), JSON syntax, a
    /// top-level object, then every known field's type and value. Unknown fields are ignored, `null` counts
    /// as absent.
    /// - Throws: ``JobRejection`` naming the first problem found.
    public static func decode(_ bytes: some Collection<UInt8>) throws(JobRejection) -> TransferJob {
        guard bytes.count <= maximumMessageSize else {
            throw JobRejection(.tooLarge, "the message is \(bytes.count) bytes; at most \(maximumMessageSize) are allowed")
        }
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw JobRejection(.invalidUTF8, "the message is not valid UTF-8")
        }
        let data = Data(bytes)
        guard nestingDepth(data) <= maximumDepth else {
            throw JobRejection(.tooDeep, "the message nests arrays or objects deeper than \(maximumDepth) levels")
        }
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw JobRejection(.invalidJSON,
                               #"the message is not JSON; expected an object like {"name": "file", "location": "/dir/"}"#)
        }
        guard case .object(let fields) = value else {
            throw JobRejection(.notAnObject, "the message is \(value.typeName), not a JSON object")
        }
        return try TransferJob(fields: fields)
    }

    /// Compact JSON with the present fields only, keys sorted. The original format round-trips to the
    /// original keys: `id` is left out when it is the default, `kind` when it is `auto`.
    public func encodedJSON() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // A job holds only strings and integers, which always encode.
        return Array(try! encoder.encode(self))
    }

    /// Validates the fields of a decoded JSON object.
    init(fields: [String: JSONValue]) throws(JobRejection) {
        let kind = try fields.string("kind").map { (text) throws(JobRejection) in try Kind(parsing: text) }
        try self.init(
            name: fields.required("name"), location: fields.required("location"),
            infoHash: fields.string("info_hash"), id: fields.string("id"),
            checksum: fields.string("checksum"), size: fields.size(),
            remote: fields.string("remote"), destination: fields.string("destination"),
            kind: kind ?? .auto, upload: fields.string("upload"))
    }

    /// The deepest `[`/`{` nesting outside strings, found without recursion.
    static func nestingDepth(_ data: Data) -> Int {
        var depth = 0, deepest = 0, inString = false, escaped = false
        for byte in data {
            if inString {
                if escaped { escaped = false }
                else if byte == UInt8(ascii: "\\") { escaped = true }
                else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                deepest = max(deepest, depth)
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
        return deepest
    }
}

extension TransferJob: Codable {
    enum CodingKeys: String, CodingKey {
        case infoHash = "info_hash", name, location, id, checksum, size, remote, destination, kind, upload
    }

    /// Decodes a job from the wire format's keys with the same validation as ``decode(_:)`` (which also
    /// bounds size and depth before parsing; use it for untrusted bytes).
    /// - Throws: `DecodingError.dataCorrupted` with the ``JobRejection`` as its underlying error.
    public init(from decoder: any Decoder) throws {
        let fields = try decoder.singleValueContainer().decode([String: JSONValue].self)
        do {
            try self.init(fields: fields)
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.message,
                                                    underlyingError: error))
        }
    }

    /// Encodes the present fields under the wire format's keys; `id` only when it is not the default,
    /// `kind` only when it is not `auto`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(infoHash, forKey: .infoHash)
        try container.encode(name, forKey: .name)
        try container.encode(location, forKey: .location)
        if !hasDefaultID { try container.encode(id, forKey: .id) }
        try container.encodeIfPresent(checksum, forKey: .checksum)
        try container.encodeIfPresent(size, forKey: .size)
        try container.encodeIfPresent(remote, forKey: .remote)
        try container.encodeIfPresent(destination, forKey: .destination)
        if kind != .auto { try container.encode(kind.rawValue, forKey: .kind) }
        try container.encodeIfPresent(upload, forKey: .upload)
    }
}

/// A JSON value with its exact type: a number is never a boolean, nor the other way round.
enum JSONValue: Decodable {
    case null, bool(Bool), integer(Int64), number(Double), string(String)
    case array([JSONValue]), object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        // Each failed attempt builds and throws a DecodingError, so the likely types go first: a job is an
        // object of strings. The decoder is strict (no number decodes as a boolean, nor the other way round).
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([String: JSONValue].self) { self = .object(value) }
        else if let value = try? container.decode(Int64.self) { self = .integer(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else { self = .array(try container.decode([JSONValue].self)) }
    }

    /// "a string", "an object", … for messages.
    var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .integer, .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

extension [String: JSONValue] {
    /// An optional string field; `null` counts as absent.
    fileprivate func string(_ key: String) throws(JobRejection) -> String? {
        switch self[key] {
        case nil, .null?: return nil
        case .string(let value)?: return value
        case let other?: throw JobRejection(.wrongType, field: key, "\(key) must be a string, not \(other.typeName)")
        }
    }

    /// A string field that must be present.
    fileprivate func required(_ key: String) throws(JobRejection) -> String {
        guard let value = try string(key) else {
            throw JobRejection(.missingField, field: key, "the job has no \(key)")
        }
        return value
    }

    /// The `size` field: a whole number. One too large for `Int64` is out of range, a fraction the wrong type.
    fileprivate func size() throws(JobRejection) -> Int64? {
        switch self["size"] {
        case nil, .null?: return nil
        case .integer(let value)?: return value
        case .number(let value)? where value.rounded() == value:
            throw JobRejection(.invalidSize, field: "size", "size \(value) must be between 0 and 2^53 bytes")
        case .number(let value)?:
            throw JobRejection(.wrongType, field: "size", "size must be a whole number of bytes, not \(value)")
        case let other?:
            throw JobRejection(.wrongType, field: "size", "size must be a number, not \(other.typeName)")
        }
    }
}
