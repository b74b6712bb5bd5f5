import ArgumentParser
import Dashboard
import Foundation
import KafkaClient
import KafkaSyncCore
import Logging
import TransferStore

/// `kafkasync consumer`: the daemon (``ConsumerApp``).
struct ConsumerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consumer",
        abstract: "Join the consumer group and transfer the jobs it receives.",
        discussion: """
            Downloads each job into incompletes, verifies it and moves it atomically into completes; failures go \
            to <topic>.retry (transient) or <topic>.dlq (permanent). SIGINT/SIGTERM stop gracefully within \
            [consumer] shutdown_grace; a second signal exits at once. With kafka_url = "embedded" and no \
            `kafkasync broker` running, this process hosts the embedded cluster itself.
            """,
        aliases: ["consume"]
    )

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let config = try options.load()
        if let missing = LftpEngine.missingProgram(for: config) {
            printError("kafkasync: \(missing)")
            throw ExitCode(1)
        }
        let outputs: LineLogHandler.Outputs
        do {
            outputs = try LineLogHandler.Outputs(format: config.consumer.logFormat, file: config.consumer.logFile)
        } catch {
            printError("kafkasync: cannot open the log file \(config.consumer.logFile ?? ""): \(error.localizedDescription)")
            throw ExitCode(1)
        }
        let logger = Logger(label: "kafkasync.consumer") { LineLogHandler(label: $0, outputs: outputs, level: config.debugLevel) }
        let metrics = PrometheusMetrics.bootstrap()
        let ending: ConsumerDaemon.Ending
        do {
            ending = try await ConsumerApp.run(config, logger: logger, plugins: { context in
                _ = ConsumerMetrics(config: config, events: context.events)
                // The HTTP server, unless `[http] listen = ""`.
                let server = try DashboardServer(context, metrics: metrics.render) { url, page in
                    logger.notice("HTTP server listening", metadata: ["http.url": "\(url)"])
                    printNow("dashboard: \(page)")
                }
                return server.map { [$0] } ?? []
            }, onReady: {
                printNow("✅ Kafka consumer is now listening for messages...")
            })
        } catch let error as KafkaError {
            logger.critical("the consumer cannot run", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        } catch let error as DashboardServerError {
            logger.critical("the HTTP server cannot run: set [http] listen to a free address, or \"\" for none",
                            metadata: ["error": "\(error)"])
            throw ExitCode(1)
        } catch let error as StoreError {
            logger.critical("the transfer store cannot be opened", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
        // A second signal: unfinished jobs are redelivered later and resume.
        if ending == .aborted { throw ExitCode(130) }
    }
}
