import ArgumentParser
import KafkaSyncCore

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
            abstract: "Validate the configuration and print it with every secret redacted (exit 1 on errors)."
        )

        @OptionGroup var options: ConfigOptions

        func run() async throws {
            let config = try options.load()
            printNow(config.renderedRedacted())
            if let missing = LftpEngine.missingProgram(for: config) {
                printError("kafkasync: \(missing)")
                throw ExitCode(1)
            }
        }
    }
}
