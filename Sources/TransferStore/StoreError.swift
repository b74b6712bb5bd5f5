/// A failure of the transfer store, with a stable code and whether retrying may help.
public struct StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable error code. New codes may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Sendable {
            case invalidURL = "invalid_url", unavailable, migration, query, corruptRecord = "corrupt_record", tls
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The store URL cannot be used.
        public static let invalidURL = Code(.invalidURL)
        /// The database cannot be reached or opened (transient).
        public static let unavailable = Code(.unavailable)
        /// The TLS connection to the database cannot be made as the store URL asks (an untrusted certificate, a
        /// server without TLS). Transient: the server's certificate can be fixed while the daemon retries.
        public static let tls = Code(.tls)
        /// A schema migration failed.
        public static let migration = Code(.migration)
        /// A statement failed.
        public static let query = Code(.query)
        /// A stored row cannot be read back.
        public static let corruptRecord = Code(.corruptRecord)

        public var description: String { value.rawValue }
    }

    /// What went wrong.
    public let code: Code
    /// A human explanation (never containing a password).
    public let message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// Whether retrying later may succeed.
    public var isTransient: Bool { code == .unavailable || code == .query || code == .tls }

    public var description: String { "\(message) [\(code)]" }
}
