/// One problem with a configuration value: the key, the offending value and what is expected.
public struct ConfigIssue: Sendable, Equatable, CustomStringConvertible {
    /// What kind of problem it is. New codes may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Sendable {
            case missingKey = "missing_key", wrongType = "wrong_type", invalidValue = "invalid_value"
            case unreadableFile = "unreadable_file", fileNotFound = "file_not_found", syntax, conflict
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// A required key is absent.
        public static let missingKey = Code(.missingKey)
        /// A value has the wrong TOML type.
        public static let wrongType = Code(.wrongType)
        /// A value has the right type but is not allowed.
        public static let invalidValue = Code(.invalidValue)
        /// A file named by a value cannot be read.
        public static let unreadableFile = Code(.unreadableFile)
        /// The configuration file does not exist.
        public static let fileNotFound = Code(.fileNotFound)
        /// The file is not valid TOML.
        public static let syntax = Code(.syntax)
        /// Two keys contradict each other.
        public static let conflict = Code(.conflict)

        public var description: String { value.rawValue }
    }

    /// The kind of problem.
    public let code: Code
    /// The dotted key (`remotes.backup.engine`) or the environment variable (`KAFKASYNC_NUM_THREADS`).
    public let key: String
    /// The offending value as written (`<redacted>` for secrets), or `nil` when it is missing.
    public let value: String?
    /// What is expected instead.
    public let expected: String

    /// Creates an issue.
    public init(_ code: Code, key: String, value: String?, expected: String) {
        self.code = code
        self.key = key
        self.value = value
        self.expected = expected
    }

    public var description: String {
        guard let value else { return "\(key) is missing: expected \(expected)" }
        return "\(key) = \(value): expected \(expected)"
    }
}

/// A non-fatal remark about the configuration (an unknown key, a table this version does not use).
public struct ConfigWarning: Sendable, Equatable, CustomStringConvertible {
    /// The dotted key it is about.
    public let key: String
    /// What to know.
    public let message: String

    /// Creates a warning.
    public init(key: String, message: String) {
        self.key = key
        self.message = message
    }

    public var description: String { "\(key): \(message)" }
}

/// Every problem found in a configuration, collected in one pass.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The problems, in file order.
    public let issues: [ConfigIssue]

    /// Creates an error from its issues.
    public init(issues: [ConfigIssue]) { self.issues = issues }

    public var description: String {
        issues.map { "  - \($0)" }.joined(separator: "\n")
    }
}
