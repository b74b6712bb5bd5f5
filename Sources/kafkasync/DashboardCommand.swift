import ArgumentParser
import Dashboard
import Foundation
import KafkaClient
import KafkaSyncCore
import Logging
import ServiceLifecycle
import TransferStore

/// `kafkasync dashboard`: the consumer's HTTP API and page over the store, without consuming.
struct DashboardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard",
        abstract: "Serve the dashboard and the HTTP API over the store, without consuming.",
        discussion: """
            The same page and API as `kafkasync consumer` serves on [http] listen, for a machine that does not \
            transfer: the history, the running transfers of every consumer sharing the store (PostgreSQL), the \
            queue and the dead letters; publishing and replaying. Live events come only from a consumer's own server.
            """,
        aliases: ["serve"]
    )

    @OptionGroup var options: ConfigOptions
    @Option(help: "The address to listen on (default: [http] listen).") var listen: String?

    func run() async throws {
        let config = try options.load()
        let outputs = try LineLogHandler.Outputs(format: config.consumer.logFormat, file: nil)
        let logger = Logger(label: "kafkasync.dashboard") { LineLogHandler(label: $0, outputs: outputs, level: config.debugLevel) }
        var address = config.http.listen
        if let listen {
            guard let parsed = try? ListenAddress(listen) else {
                printError("kafkasync: --listen must be HOST:PORT like 127.0.0.1:8080, not \"\(listen)\"")
                throw ExitCode(1)
            }
            guard parsed.isLoopback || config.http.token != nil else {
                printError("kafkasync: --listen \(listen) is not a loopback address: set [http] token_env or token_file first")
                throw ExitCode(1)
            }
            address = parsed
        }
        guard let address else {
            printError("kafkasync: [http] listen is \"\": give --listen HOST:PORT")
            throw ExitCode(1)
        }
        let metrics = PrometheusMetrics.bootstrap()
        let kafka: DashboardKafka?
        do {
            kafka = try DashboardKafka(config: config, bootstrapServers: try config.bootstrapServers(), logger: logger)
        } catch {
            // The history still shows; the queue, dead letters and publishing answer 503.
            logger.warning("no Kafka: the queue, the dead letters and publishing are unavailable", metadata: ["error": "\(error)"])
            kafka = nil
        }
        do {
            try await withTransferStore(config.store.location, logger: logger) { store in
                let server = DashboardServer(
                    configuration: .init(address: address, token: config.http.token), store: store, readiness: nil,
                    kafka: kafka, completes: config.locations.completes, metrics: metrics.render, logger: logger
                ) { url, page in
                    logger.notice("HTTP server listening", metadata: ["http.url": "\(url)"])
                    printNow("dashboard: \(page)")
                }
                try await ServiceGroup(configuration: .init(services: [server], gracefulShutdownSignals: [.sigterm, .sigint],
                                                            logger: logger)).run()
            }
        } catch let error as DashboardServerError {
            logger.critical("the HTTP server cannot run", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        } catch let error as StoreError {
            logger.critical("the transfer store cannot be opened", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
    }
}
