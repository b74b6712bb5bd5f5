import ArgumentParser
import KafkaSyncCore
import Logging

/// `kafkasync config …`
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Inspect the configuration.",
        subcommands: [Check.self]
    )

    /// `kafkasync config check`: prints the effective configuration with secrets redacted, or the errors.
    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate the configuration and print it with every secret redacted (exit 1 on errors).",
            discussion: """
                With --probe, also connect to every remote: what its server offers (key exchange, host keys, \
                ciphers, MACs), which engine serves it and why, and whether that engine logs in with the host key \
                verified. Nothing is downloaded. Exit 1 if any remote fails.
                """
        )

        @OptionGroup var options: ConfigOptions

        @Flag(help: "Connect to every remote and report its algorithms, engine and login.")
        var probe = false

        func run() async throws {
            let config = try options.load()
            printNow(config.renderedRedacted())
            if let missing = LftpEngine.missingProgram(for: config) {
                printError("kafkasync: \(missing)")
                throw ExitCode(1)
            }
            guard probe else { return }
            let logger = Logger(label: "kafkasync.probe")
            let remotes = ([config.defaultRemote] + config.remotes.values.sorted { $0.name < $1.name })
                .filter { !$0.host.isEmpty || $0.sshConfigHost != nil }
            var failed = false
            for remote in remotes {
                let result = await RemoteProbe.run(remote, lftp: LftpEngine(logger: logger), logger: logger)
                printNow("\n" + result.lines.joined(separator: "\n"))
                failed = failed || !result.succeeded
            }
            if failed { throw ExitCode(1) }
        }
    }
}
