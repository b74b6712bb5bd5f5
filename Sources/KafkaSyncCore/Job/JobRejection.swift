/// Why a job message was refused: a stable machine-readable ``Reason`` (sent as the DLQ reason header) and a
/// human message (the DLQ body). Messages never echo more than a short, escaped excerpt of the input.
public struct JobRejection: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable reason code. New reasons may be added.
    public struct Reason: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Sendable {
            case tooLarge = "too_large", invalidUTF8 = "invalid_utf8", invalidJSON = "invalid_json"
            case tooDeep = "too_deep", notAnObject = "not_an_object", missingField = "missing_field"
            case wrongType = "wrong_type", emptyField = "empty_field", fieldTooLong = "field_too_long"
            case pathTraversal = "path_traversal", absolutePath = "absolute_path"
            case controlCharacter = "control_character", unknownChecksumAlgorithm = "unknown_checksum_algorithm"
            case invalidChecksum = "invalid_checksum", invalidSize = "invalid_size", invalidRemote = "invalid_remote"
            case invalidKind = "invalid_kind", invalidPath = "invalid_path", invalidUpload = "invalid_upload"
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The message is over 64 KiB.
        public static let tooLarge = Reason(.tooLarge)
        /// The message is not valid UTF-8.
        public static let invalidUTF8 = Reason(.invalidUTF8)
        /// The message is not JSON.
        public static let invalidJSON = Reason(.invalidJSON)
        /// The JSON nests deeper than any job needs.
        public static let tooDeep = Reason(.tooDeep)
        /// The JSON is not an object.
        public static let notAnObject = Reason(.notAnObject)
        /// `name` or `location` is missing.
        public static let missingField = Reason(.missingField)
        /// A field has the wrong JSON type (a fractional `size` counts as one).
        public static let wrongType = Reason(.wrongType)
        /// A required string is empty.
        public static let emptyField = Reason(.emptyField)
        /// A string is longer than allowed.
        public static let fieldTooLong = Reason(.fieldTooLong)
        /// A path contains a `..` component (in any spelling).
        public static let pathTraversal = Reason(.pathTraversal)
        /// A path that must be relative is absolute.
        public static let absolutePath = Reason(.absolutePath)
        /// A string contains NUL or another control character.
        public static let controlCharacter = Reason(.controlCharacter)
        /// The checksum names an algorithm other than sha256, sha1 or md5.
        public static let unknownChecksumAlgorithm = Reason(.unknownChecksumAlgorithm)
        /// The checksum is not `<algorithm>:<hex>` of the right length.
        public static let invalidChecksum = Reason(.invalidChecksum)
        /// `size` is negative or too large.
        public static let invalidSize = Reason(.invalidSize)
        /// `remote` is not a valid remote name.
        public static let invalidRemote = Reason(.invalidRemote)
        /// `kind` is not `file`, `directory` or `auto`.
        public static let invalidKind = Reason(.invalidKind)
        /// A path has an empty or `.` component, or starts with `-` or a URL scheme.
        public static let invalidPath = Reason(.invalidPath)
        /// `upload` is not a valid upload name.
        public static let invalidUpload = Reason(.invalidUpload)

        /// The code as it appears in headers and logs, e.g. `path_traversal`.
        public var code: String { value.rawValue }
        /// The ``code``.
        public var description: String { code }
    }

    /// The stable reason.
    public let reason: Reason
    /// The offending field, when one field is to blame.
    public let field: String?
    /// A human explanation.
    public let message: String

    /// Creates a rejection.
    /// - Parameters:
    ///   - reason: the stable reason.
    ///   - field: the offending field, if one is to blame.
    ///   - message: a human explanation quoting no more than a short, escaped excerpt of the input.
    public init(_ reason: Reason, field: String? = nil, _ message: String) {
        self.reason = reason
        self.field = field
        self.message = message
    }

    /// The message followed by the code, e.g. `name is empty (empty_field)`.
    public var description: String { "\(message) (\(reason.code))" }
}
