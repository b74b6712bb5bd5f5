/// The version of this build (`kafkasync --version`, `kafkasync_build_info`).
public enum BuildInfo {
    /// The release version.
    public static let version = "0.9.0"
    /// The git commit built (not known to the build yet: `unknown`).
    public static let commit = "unknown"

    /// `kafkasync 0.9.0 (commit abc1234)`.
    public static var description: String { "kafkasync \(version) (commit \(commit))" }
}
