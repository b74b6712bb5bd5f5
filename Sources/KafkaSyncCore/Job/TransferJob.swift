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
        /// - Throws: ``JobRejection`` `invalid_kind` or `control_character`.
        public init(parsing text: String) throws(JobRejection) {
            try TransferJob.checkNoControlCharacters(text, field: "kind")
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
    /// The remote file or directory name; a relative path without `..`, `.` or empty components, not starting
    /// with `-` or a URL scheme.
    public let name: String
    /// The remote directory holding it (absolute, or relative to the login directory); never contains `..`, never
    /// starts with `-` or a URL scheme (so no program reads it as an option or a URL).
    public let location: String
    /// The expected checksum, verified after download.
    public let checksum: Checksum?
    /// The expected size in bytes, 0 to 2^53.
    public let size: Int64?
    /// A named remote from the configuration; `nil` means `remoteDetails`.
    public let remote: String?
    /// A folder under `completes` to place the result in; a relative path without `..`.
    public let destination: String?
    /// What the remote path is.
    public let kind: Kind
    /// An `[uploads.NAME]` of the configuration to upload the result to; `nil` uses the remote's or the
    /// destination's default, if any.
    public let upload: String?

    /// The largest message accepted, in bytes.
    public static let maximumMessageSize = 65_536
    static let maximumDepth = 16
    static let maximumSize: Int64 = 1 << 53

    /// Creates a validated job (the producer CLI builds jobs from flags with this).
    /// - Parameters:
    ///   - name: the remote file or directory, relative to `location`; at most 1024 bytes.
    ///   - location: the remote directory; at most 4096 bytes.
    ///   - infoHash: empty means none; at most 256 bytes.
    ///   - id: empty or `nil` means the default (`infoHash`, else derived); at most 256 bytes.
    ///   - checksum: `<algorithm>:<hex>`.
    ///   - size: expected bytes, 0 to 2^53.
    ///   - remote: a remote name, `[A-Za-z0-9_.-]{1,64}`.
    ///   - destination: a relative folder under `completes`; empty means none.
    ///   - kind: what the remote path is.
    ///   - upload: an upload name, `[A-Za-z0-9_.-]{1,64}`.
    /// - Throws: ``JobRejection`` with the same reasons as ``decode(_:)``.
    public init(name: String, location: String, infoHash: String? = nil, id: String? = nil, checksum: String? = nil,
                size: Int64? = nil, remote: String? = nil, destination: String? = nil,
                kind: Kind = .auto, upload: String? = nil) throws(JobRejection) {
        try Self.checkString(name, field: "name", limit: 1024)
        try Self.checkRelativePath(name, field: "name")
        try Self.checkNotOptionOrURL(name, field: "name")
        try Self.checkString(location, field: "location", limit: 4096)
        try Self.checkNoTraversal(location, field: "location")
        try Self.checkNotOptionOrURL(location, field: "location")
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
        if let remote { try Self.checkRemoteName(remote) }
        if let upload { try Self.checkRemoteName(upload, field: "upload") }
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
        self.upload = upload
        self.id = explicitID ?? infoHash ?? Self.derivedID(remote: remote, location: location, name: name)
    }

    /// The remote path: `location` and `name` joined by exactly one `/`.
    public var remotePath: String {
        var directory = Substring(location)
        while directory.hasSuffix("/") { directory = directory.dropLast() }
        return directory + "/" + name
    }

    /// Whether ``id`` is the one a job without `id` gets, so the wire format can leave it out.
    var hasDefaultID: Bool {
        id == infoHash ?? Self.derivedID(remote: remote, location: location, name: name)
    }

    /// The id a job without `id` and `info_hash` gets: `job-` and 16 hex digits of
    /// SHA-256(remote NUL location NUL name), stable for the same remote, location and name.
    static func derivedID(remote: String?, location: String, name: String) -> String {
        let digest = SHA256.hash(data: Data("\(remote ?? "")\u{0}\(location)\u{0}\(name)".utf8))
        return "job-" + digest.prefix(8).hexDigits
    }
}
