import ArgumentParser
import Foundation
import KafkaSyncCore
import Logging

/// The `--config` option every command takes.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "The configuration file.")
    var config: String = "./config.toml"

    /// The absolute path of the configuration file.
    var configPath: String {
        URL(fileURLWithPath: config, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
            .standardizedFileURL.path
    }

    /// Loads the configuration, printing warnings; on errors prints them and exits with status 1.
    func load() throws -> KafkaSyncConfig {
        do {
            let loaded = try KafkaSyncConfig.load(path: configPath)
            for warning in loaded.warnings { printError("warning: \(warning)") }
            return loaded
        } catch {
            printError("kafkasync: \(configPath) is not usable:\n\(error)")
            throw ExitCode(1)
        }
    }
}

/// Writes a line to standard error.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// Writes a line to standard output and flushes it, so pipes see it at once.
func printNow(_ line: String, terminator: String = "\n") {
    FileHandle.standardOutput.write(Data((line + terminator).utf8))
}

/// A logger writing to standard error at the configured level.
func makeLogger(_ label: String, level: Logger.Level) -> Logger {
    var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
    logger.logLevel = level
    return logger
}
