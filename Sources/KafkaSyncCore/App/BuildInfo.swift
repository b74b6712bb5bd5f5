/// The version of this build (`kafkasync --version`, `kafkasync_build_info`).
public enum BuildInfo {
    /// The release version.
    public static let version = "0.9.0"
    // `commit`, the git commit built (`-modified` when tracked files differed from it, `unknown` outside a git
    // checkout), is written by the BuildInfoPlugin into a generated extension.

    /// `kafkasync 0.9.0 (commit abc1234)`.
    public static var description: String { "kafkasync \(version) (commit \(commit))" }
}
