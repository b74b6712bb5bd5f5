/// A failure of the SFTP engine, with a stable code, a human message (never a secret) and whether the
/// pipeline should retry (`isTransient`) or give up (permanent).
public struct SFTPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable error code. New codes may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Sendable {
            case connectionFailed = "connection_failed", timedOut = "timed_out", connectionLost = "connection_lost"
            case noCommonAlgorithm = "no_common_algorithm", hostKeyUnknown = "host_key_unknown"
            case hostKeyChanged = "host_key_changed", hostKeyRevoked = "host_key_revoked"
            case authenticationFailed = "authentication_failed", unreadableKey = "unreadable_key"
            case unsupportedKey = "unsupported_key", noSuchFile = "no_such_file"
            case permissionDenied = "permission_denied", failure, protocolError = "protocol_error", cancelled
            case diskFull = "disk_full", localIO = "local_io"
            case sizeExceeded = "size_exceeded"
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The TCP connection could not be made (transient).
        public static let connectionFailed = Code(.connectionFailed)
        /// Connecting or the handshake took too long, or the server stopped answering requests (transient).
        public static let timedOut = Code(.timedOut)
        /// The connection dropped (transient).
        public static let connectionLost = Code(.connectionLost)
        /// The server offers no algorithm this engine supports (e.g. an RSA-only host key).
        public static let noCommonAlgorithm = Code(.noCommonAlgorithm)
        /// The host key is not known (strict policy).
        public static let hostKeyUnknown = Code(.hostKeyUnknown)
        /// The host key differs from the known or pinned one.
        public static let hostKeyChanged = Code(.hostKeyChanged)
        /// The host key is marked `@revoked`.
        public static let hostKeyRevoked = Code(.hostKeyRevoked)
        /// The server refused every credential offered.
        public static let authenticationFailed = Code(.authenticationFailed)
        /// A private key file cannot be read or parsed.
        public static let unreadableKey = Code(.unreadableKey)
        /// A private key is of a kind this engine cannot use.
        public static let unsupportedKey = Code(.unsupportedKey)
        /// The remote path does not exist.
        public static let noSuchFile = Code(.noSuchFile)
        /// The server refused access to the remote path.
        public static let permissionDenied = Code(.permissionDenied)
        /// The server reported a generic failure.
        public static let failure = Code(.failure)
        /// The server broke the SFTP protocol.
        public static let protocolError = Code(.protocolError)
        /// The task waiting for the server was cancelled (transient: nothing is wrong with the job).
        public static let cancelled = Code(.cancelled)
        /// The local disk (or quota) is full: a download cannot be written (transient; what was written is kept).
        public static let diskFull = Code(.diskFull)
        /// Another local file system failure while writing a download (transient).
        public static let localIO = Code(.localIO)
        /// A file read past the size announced for it: it grew while downloading (transient: a later attempt
        /// sees its new size; a server that lies every time runs out of attempts).
        public static let sizeExceeded = Code(.sizeExceeded)

        /// Whether retrying later may succeed: the network, the server's state, this host's disk.
        public var isTransient: Bool {
            switch value {
            case .connectionFailed, .timedOut, .connectionLost, .failure, .cancelled, .diskFull, .localIO, .sizeExceeded:
                true
            case .noCommonAlgorithm, .hostKeyUnknown, .hostKeyChanged, .hostKeyRevoked, .authenticationFailed,
                 .unreadableKey, .unsupportedKey, .noSuchFile, .permissionDenied, .protocolError:
                false
            }
        }

        public var description: String { value.rawValue }
    }

    /// What went wrong.
    public let code: Code
    /// A human explanation with what to do about it.
    public let message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// Whether retrying later may succeed.
    public var isTransient: Bool { code.isTransient }

    public var description: String { "\(message) [\(code)]" }
}
