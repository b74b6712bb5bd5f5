import Foundation
import PackagePlugin

/// Stamps the git commit being built into the target (`BuildInfo.commit`, `kafkasync --version`,
/// `kafkasync_build_info`): before every build, `git rev-parse` writes `BuildCommit.swift`, only when its text
/// changes (so an unchanged commit recompiles nothing). Outside a git checkout the commit is `unknown`.
@main
struct BuildInfoPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let output = context.pluginWorkDirectoryURL.appending(path: "BuildInfo")
        let file = output.appending(path: "BuildCommit.swift")
        let script = """
            commit=$(git -C "$1" rev-parse --short=12 HEAD 2>/dev/null) || commit=unknown
            if [ "$commit" != unknown ] && [ -n "$(git -C "$1" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
                commit="$commit-modified"
            fi
            text="extension BuildInfo { public static let commit = \\"$commit\\" }"
            mkdir -p "$2"
            [ "$(cat "$3" 2>/dev/null)" = "$text" ] || printf '%s\\n' "$text" > "$3"
            """
        return [.prebuildCommand(
            displayName: "Stamping the git commit into \(target.name)", executable: URL(fileURLWithPath: "/bin/sh"),
            arguments: ["-c", script, "stamp", context.package.directoryURL.path, output.path, file.path],
            outputFilesDirectory: output)]
    }
}
