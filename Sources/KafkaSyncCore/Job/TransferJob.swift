import Crypto
import Foundation

/// A transfer job: "fetch this remote file or directory". The wire format of DESIGN.md §2.
///
/// The original producer's messages, `{"info_hash","name","location"}`, decode unchanged. Every value is
/// validated when the job is made, so a `TransferJob` is always safe to turn into local paths.
public struct TransferJob: Sendable, Hashable {
    /// What the remote path is.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// A single file.
        case file
        /// A directory, mirrored recursively.
        case directory
        /// Decided by a `stat` of the remote path.
        case auto

        /// Parses `file`, `directory` or `auto`.
        /// - Throws: ``JobRejection`` `invalid_kind`.
        public init(parsing text: String) throws(JobRejection) {
            guard let kind = Kind(rawValue: text) else {
                throw JobRejection(.invalidKind, field: "kind",
                                   "kind \(excerpt(text)) is not one of \"file\", \"directory\", \"auto\"")
            }
            self = kind
        }
    }

    /// The job id: the client's `id`, else `info_hash`, else derived from remote, location and name.
    public let id: String
    /// The original producer's info hash, if any (an empty one counts as none).
    public let infoHash: String?
    /// The remote file or directory name; a relative path, without `..`.
    public let name: String
    /// The remote directory holding it (absolute, or relative to the login directory).
    public let location: String
    /// The expected checksum, verified after download.
    public let checksum: Checksum?
    /// The expected size in bytes.
    public let size: Int64?
    /// A named remote from the configuration; `nil` means `remoteDetails`.
    public let remote: String?
    /// A folder under `completes` to place the result in; a relative path, without `..`.
    public let destination: String?
    /// What the remote path is.
    public let kind: Kind

    /// The largest message accepted, in bytes.
    public static let maximumMessageSize = 65_536
    static let maximumDepth = 16
    static let maximumSize: Int64 = 1 << 53

    /// Creates a validated job (the producer CLI builds jobs from flags with this).
    /// - Parameters:
    ///   - infoHash: empty means none.
    ///   - id: empty or `nil` means the default (`infoHash`, else derived).
    ///   - checksum: `<algorithm>:<hex>`.
    /// - Throws: ``JobRejection`` with the same reasons as ``decode(_:)``.
    public init(name: String, location: String, infoHash: String? = nil, id: String? = nil, checksum: String? = nil,
                size: Int64? = nil, remote: String? = nil, destination: String? = nil,
                kind: Kind = .auto) throws(JobRejection) {
        try Self.checkString(name, field: "name", limit: 1024)
        try Self.checkRelativePath(name, field: "name")
        try Self.checkString(location, field: "location", limit: 4096)
        try Self.checkNoTraversal(location, field: "location")
        let infoHash = try infoHash.flatMap { (hash) throws(JobRejection) -> String? in
            if hash.isEmpty { return nil }
            try Self.checkString(hash, field: "info_hash", limit: 256)
            return hash
        }
        let explicitID = try id.flatMap { (value) throws(JobRejection) -> String? in
            if value.isEmpty { return nil }
            try Self.checkString(value, field: "id", limit: 256)
            return value
        }
        if let remote {
            guard (1...64).contains(remote.utf8.count),
                  remote.unicodeScalars.allSatisfy(Self.remoteNameCharacters.contains)
            else {
                throw JobRejection(.invalidRemote, field: "remote",
                                   "remote \(excerpt(remote)) must be 1-64 characters of A-Z a-z 0-9 _ . -")
            }
        }
        let destination = try destination.flatMap { (value) throws(JobRejection) -> String? in
            if value.isEmpty { return nil }
            try Self.checkString(value, field: "destination", limit: 1024)
            try Self.checkRelativePath(value, field: "destination")
            return value
        }
        if let size, !(0...Self.maximumSize).contains(size) {
            throw JobRejection(.invalidSize, field: "size", "size \(size) must be between 0 and 2^53 bytes")
        }
        self.name = name
        self.location = location
        self.infoHash = infoHash
        self.checksum = try checksum.map { (text) throws(JobRejection) in try Checksum(parsing: text) }
        self.size = size
        self.remote = remote
        self.destination = destination
        self.kind = kind
        self.id = explicitID ?? infoHash ?? Self.derivedID(remote: remote, location: location, name: name)
    }

    /// The remote path: `location` and `name` joined by exactly one `/`.
    public var remotePath: String {
        location.hasSuffix("/") ? location + name : location + "/" + name
    }

    /// The id a job without `id` and `info_hash` gets: stable for the same remote, location and name.
    static func derivedID(remote: String?, location: String, name: String) -> String {
        let digest = SHA256.hash(data: Data("\(remote ?? "")\u{0}\(location)\u{0}\(name)".utf8))
        return "job-" + digest.prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    private static let remoteNameCharacters = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-".unicodeScalars)
}

// MARK: - Validation

extension TransferJob {
    static func checkString(_ value: String, field: String, limit: Int) throws(JobRejection) {
        if value.isEmpty { throw JobRejection(.emptyField, field: field, "\(field) is empty") }
        if value.utf8.count > limit {
            throw JobRejection(.fieldTooLong, field: field,
                               "\(field) is \(value.utf8.count) bytes long; at most \(limit) are allowed")
        }
        if value.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }) {
            throw JobRejection(.controlCharacter, field: field,
                               "\(field) \(excerpt(value)) contains NUL or another control character")
        }
    }

    /// `..` in any spelling: `/` or `\` separated, percent-encoded.
    static func checkNoTraversal(_ path: String, field: String) throws(JobRejection) {
        for spelling in Set([path, path.removingPercentEncoding ?? path]) {
            let components = spelling.split(omittingEmptySubsequences: false) { $0 == "/" || $0 == "\\" }
            if components.contains("..") {
                throw JobRejection(.pathTraversal, field: field, "\(field) \(excerpt(path)) contains a \"..\" path component")
            }
        }
    }

    /// A relative path that stays below the folder it is placed in.
    static func checkRelativePath(_ path: String, field: String) throws(JobRejection) {
        let isDrivePath = path.count >= 2 && path.first!.isLetter && path.dropFirst().first == ":"
        if path.hasPrefix("/") || path.hasPrefix("\\") || path.hasPrefix("~") || isDrivePath {
            throw JobRejection(.absolutePath, field: field, "\(field) \(excerpt(path)) must be a relative path")
        }
        try checkNoTraversal(path, field: field)
        var components = path.split(omittingEmptySubsequences: false) { $0 == "/" || $0 == "\\" }
        if components.count > 1 && components.last == "" { components.removeLast() }
        if components.contains("") || components.contains(".") {
            throw JobRejection(.invalidPath, field: field,
                               "\(field) \(excerpt(path)) has an empty or \".\" path component")
        }
    }
}

// MARK: - Wire format

extension TransferJob {
    /// Decodes and validates a raw Kafka message value. The only way the consumer turns bytes into a job.
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
            throw JobRejection(.tooDeep, "the message nests deeper than \(maximumDepth) levels")
        }
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw JobRejection(.invalidJSON, "the message is not JSON")
        }
        guard case .object(let fields) = value else {
            throw JobRejection(.notAnObject, "the message is JSON but not an object")
        }
        let kind = try fields.string("kind").map { (text) throws(JobRejection) in try Kind(parsing: text) }
        return try TransferJob(
            name: try fields.required("name"), location: try fields.required("location"),
            infoHash: try fields.string("info_hash"), id: try fields.string("id"),
            checksum: try fields.string("checksum"), size: try fields.integer("size"),
            remote: try fields.string("remote"), destination: try fields.string("destination"),
            kind: kind ?? .auto)
    }

    /// Compact JSON with the present fields only. The original format round-trips to the original keys:
    /// `id` is left out when it is the default, `kind` when it is `auto`.
    public func encodedJSON() -> [UInt8] {
        var object: [String: JSONValue] = ["name": .string(name), "location": .string(location)]
        if let infoHash { object["info_hash"] = .string(infoHash) }
        if id != (infoHash ?? Self.derivedID(remote: remote, location: location, name: name)) {
            object["id"] = .string(id)
        }
        if let checksum { object["checksum"] = .string(checksum.description) }
        if let size { object["size"] = .integer(size) }
        if let remote { object["remote"] = .string(remote) }
        if let destination { object["destination"] = .string(destination) }
        if kind != .auto { object["kind"] = .string(kind.rawValue) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding strings and integers into JSON cannot fail.
        return Array(try! encoder.encode(JSONValue.object(object)))
    }

    /// The deepest `[`/`{` nesting outside strings, found without recursion.
    static func nestingDepth(_ data: Data) -> Int {
        var depth = 0, deepest = 0, inString = false, escaped = false
        for byte in data {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true }
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

/// A JSON value with its exact type (a number is never a boolean, nor the other way round).
enum JSONValue: Codable, Equatable {
    case null, bool(Bool), integer(Int64), number(Double), string(String)
    case array([JSONValue]), object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Int64.self) { self = .integer(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

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

    fileprivate func required(_ key: String) throws(JobRejection) -> String {
        guard let value = try string(key) else {
            throw JobRejection(.missingField, field: key, "the job has no \(key)")
        }
        return value
    }

    fileprivate func integer(_ key: String) throws(JobRejection) -> Int64? {
        switch self[key] {
        case nil, .null?: return nil
        case .integer(let value)?: return value
        case .number(let value)?:
            throw JobRejection(.invalidSize, field: key, "\(key) must be a whole number of bytes, not \(value)")
        case let other?: throw JobRejection(.wrongType, field: key, "\(key) must be a number, not \(other.typeName)")
        }
    }
}
