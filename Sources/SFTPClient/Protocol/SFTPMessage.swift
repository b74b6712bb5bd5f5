import NIOCore

/// SFTP version 3 messages as OpenSSH speaks them (draft-ietf-secsh-filexfer-02). Wire types stay internal;
/// the public API is `SFTPClient`'s.

/// Packet type numbers (draft-ietf-secsh-filexfer-02 §3).
enum SFTPPacketType: UInt8 {
    case initialize = 1, version = 2, open = 3, close = 4, read = 5, write = 6, lstat = 7, fstat = 8
    case setstat = 9, fsetstat = 10, opendir = 11, readdir = 12, remove = 13, mkdir = 14, rmdir = 15
    case realpath = 16, stat = 17, rename = 18, readlink = 19, symlink = 20
    case status = 101, handle = 102, data = 103, name = 104, attributes = 105
    case extended = 200, extendedReply = 201
}

/// File attributes (§5). Only the fields the server sent are set.
struct SFTPAttributes: Equatable, Sendable {
    /// Attribute flag bits (§5).
    struct Flags: OptionSet, Equatable, Sendable {
        let rawValue: UInt32
        static let size = Flags(rawValue: 0x1)
        static let uidgid = Flags(rawValue: 0x2)
        static let permissions = Flags(rawValue: 0x4)
        static let accessModificationTime = Flags(rawValue: 0x8)
        static let extended = Flags(rawValue: 0x8000_0000)
    }

    var size: UInt64?
    var uid: UInt32?
    var gid: UInt32?
    var permissions: UInt32?
    var accessTime: UInt32?
    var modificationTime: UInt32?
    var extended: [(type: String, data: String)] = []

    static let empty = SFTPAttributes()

    /// Whether the permissions say "directory" (S_IFDIR).
    var isDirectory: Bool { permissions.map { $0 & 0o170000 == 0o040000 } ?? false }
    /// Whether the permissions say "regular file" (S_IFREG).
    var isRegularFile: Bool { permissions.map { $0 & 0o170000 == 0o100000 } ?? false }

    static func == (lhs: SFTPAttributes, rhs: SFTPAttributes) -> Bool {
        lhs.size == rhs.size && lhs.uid == rhs.uid && lhs.gid == rhs.gid && lhs.permissions == rhs.permissions
            && lhs.accessTime == rhs.accessTime && lhs.modificationTime == rhs.modificationTime
            && lhs.extended.map(\.type) == rhs.extended.map(\.type) && lhs.extended.map(\.data) == rhs.extended.map(\.data)
    }
}

/// `SSH_FXF_*` open flags (§6.3).
struct SFTPOpenFlags: OptionSet, Equatable, Sendable {
    let rawValue: UInt32
    static let read = SFTPOpenFlags(rawValue: 0x1)
    static let write = SFTPOpenFlags(rawValue: 0x2)
    static let append = SFTPOpenFlags(rawValue: 0x4)
    static let create = SFTPOpenFlags(rawValue: 0x8)
    static let truncate = SFTPOpenFlags(rawValue: 0x10)
    static let exclusive = SFTPOpenFlags(rawValue: 0x20)
}

/// `SSH_FX_*` status codes (§7).
enum SFTPStatusCode: Equatable, Sendable {
    case ok, endOfFile, noSuchFile, permissionDenied, failure, badMessage, noConnection, connectionLost
    case operationUnsupported
    case other(UInt32)

    init(_ raw: UInt32) {
        switch raw {
        case 0: self = .ok
        case 1: self = .endOfFile
        case 2: self = .noSuchFile
        case 3: self = .permissionDenied
        case 4: self = .failure
        case 5: self = .badMessage
        case 6: self = .noConnection
        case 7: self = .connectionLost
        case 8: self = .operationUnsupported
        default: self = .other(raw)
        }
    }

    var rawValue: UInt32 {
        switch self {
        case .ok: 0
        case .endOfFile: 1
        case .noSuchFile: 2
        case .permissionDenied: 3
        case .failure: 4
        case .badMessage: 5
        case .noConnection: 6
        case .connectionLost: 7
        case .operationUnsupported: 8
        case .other(let raw): raw
        }
    }
}

/// One directory entry of an `SSH_FXP_NAME` reply (§7).
struct SFTPName: Equatable, Sendable {
    var filename: String
    var longname: String
    var attributes: SFTPAttributes
}

/// What the client sends.
enum SFTPRequest: Equatable, Sendable {
    case initialize(version: UInt32)
    case open(id: UInt32, path: String, flags: SFTPOpenFlags, attributes: SFTPAttributes)
    case close(id: UInt32, handle: ByteBuffer)
    case read(id: UInt32, handle: ByteBuffer, offset: UInt64, length: UInt32)
    case lstat(id: UInt32, path: String)
    case fstat(id: UInt32, handle: ByteBuffer)
    case stat(id: UInt32, path: String)
    case opendir(id: UInt32, path: String)
    case readdir(id: UInt32, handle: ByteBuffer)
    case realpath(id: UInt32, path: String)
    /// `limits@openssh.com` (OpenSSH PROTOCOL §4.8): no request data.
    case limits(id: UInt32)

    var id: UInt32? {
        switch self {
        case .initialize: nil
        case .open(let id, _, _, _), .close(let id, _), .read(let id, _, _, _), .lstat(let id, _),
             .fstat(let id, _), .stat(let id, _), .opendir(let id, _), .readdir(let id, _),
             .realpath(let id, _), .limits(let id): id
        }
    }
}

/// The server's `limits@openssh.com` reply (OpenSSH PROTOCOL §4.8); 0 means "no limit".
struct SFTPLimits: Equatable, Sendable {
    var maximumPacketLength: UInt64
    var maximumReadLength: UInt64
    var maximumWriteLength: UInt64
    var maximumOpenHandles: UInt64
}

/// What the server sends.
enum SFTPResponse: Equatable, Sendable {
    case version(version: UInt32, extensions: [(name: String, data: String)])
    case status(id: UInt32, code: SFTPStatusCode, message: String)
    case handle(id: UInt32, handle: ByteBuffer)
    case data(id: UInt32, data: ByteBuffer)
    case name(id: UInt32, entries: [SFTPName])
    case attributes(id: UInt32, attributes: SFTPAttributes)
    /// The payload after the id; its meaning depends on the extended request it answers.
    case extendedReply(id: UInt32, data: ByteBuffer)

    var id: UInt32? {
        switch self {
        case .version: nil
        case .status(let id, _, _), .handle(let id, _), .data(let id, _), .name(let id, _),
             .attributes(let id, _), .extendedReply(let id, _): id
        }
    }

    static func == (lhs: SFTPResponse, rhs: SFTPResponse) -> Bool {
        switch (lhs, rhs) {
        case let (.version(v1, e1), .version(v2, e2)):
            v1 == v2 && e1.map(\.name) == e2.map(\.name) && e1.map(\.data) == e2.map(\.data)
        case let (.status(a, b, c), .status(d, e, f)): a == d && b == e && c == f
        case let (.handle(a, b), .handle(c, d)): a == c && b == d
        case let (.data(a, b), .data(c, d)): a == c && b == d
        case let (.name(a, b), .name(c, d)): a == c && b == d
        case let (.attributes(a, b), .attributes(c, d)): a == c && b == d
        case let (.extendedReply(a, b), .extendedReply(c, d)): a == c && b == d
        default: false
        }
    }
}
