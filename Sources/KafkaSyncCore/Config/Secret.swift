/// A secret value (a password, a passphrase). It prints as `<redacted>` everywhere; only ``revealed`` gives
/// the value, so every use of it is visible in the code. Deliberately not `Encodable`.
public struct Secret: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    private let value: String

    /// Wraps a secret value.
    public init(_ value: String) { self.value = value }

    /// The secret itself. Pass it only to the component that authenticates with it.
    public var revealed: String { value }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
}

/// Where a secret came from, for `config check` (never the value).
public enum SecretSource: Sendable, Equatable, CustomStringConvertible {
    /// Written in the configuration file.
    case inline(key: String)
    /// Read from an environment variable.
    case environment(key: String, variable: String)
    /// Read from a file.
    case file(key: String, path: String)

    public var description: String {
        switch self {
        case .inline(let key): "from \(key) in the file"
        case .environment(let key, let variable): "from \(key) \(variable)"
        case .file(let key, let path): "from \(key) \(path)"
        }
    }
}
