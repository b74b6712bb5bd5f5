import ArgumentParser
import KafkaSyncCore

/// `kafkasync`: the command line. Each subcommand parses its arguments and hands over to the libraries.
@main
struct KafkaSyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kafkasync",
        abstract: "Event-driven file synchronization: jobs on Kafka, files from SFTP, atomically into place.",
        version: BuildInfo.description,
        subcommands: [ConsumerCommand.self, DashboardCommand.self, ProducerCommand.self, DLQCommand.self, BrokerCommand.self,
                      GetCommand.self, HistoryCommand.self, StatusCommand.self, UploadsCommand.self, ConfigCommand.self]
    )
}
