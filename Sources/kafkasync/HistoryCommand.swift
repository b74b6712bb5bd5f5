import ArgumentParser
import Foundation
import KafkaSyncCore
import TransferStore

/// `kafkasync history`: the transfer history from the store.
struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "List recorded transfers, newest first."
    )

    @OptionGroup var options: ConfigOptions

    @Option(help: ArgumentHelp("Only these statuses (repeat or comma-separate).", valueName: "status"))
    var status: [String] = []

    @Option(help: ArgumentHelp("Only transfers received within this span: 90s, 15m, 1h, 2d, 1w.", valueName: "span"))
    var since: String?

    @Option(help: "Only names containing this text (case-insensitive).")
    var name: String?

    @Option(help: "At most this many transfers.")
    var limit: Int = 50

    @Flag(help: "One JSON object per line instead of a table.")
    var json = false

    func validate() throws {
        _ = try statuses()
        if let since, HumanFormat.timeSpan(since) == nil {
            throw ValidationError("--since \(since): expected a span like 90s, 15m, 1h, 2d or 1w")
        }
        guard (1...100_000).contains(limit) else { throw ValidationError("--limit must be 1...100000, not \(limit)") }
    }

    private func statuses() throws -> Set<TransferStatus> {
        let names = status.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        return try Set(names.map { name in
            guard let status = TransferStatus(rawValue: name) else {
                throw ValidationError("--status \(name): expected one of "
                                      + TransferStatus.allCases.map(\.rawValue).joined(separator: ", "))
            }
            return status
        })
    }

    func run() async throws {
        let config = try options.load()
        let query = TransferQuery(statuses: try statuses(),
                                  since: since.flatMap(HumanFormat.timeSpan).map { Date().addingTimeInterval(-$0) },
                                  nameContains: name, limit: limit)
        let records = try await withStore(config) { store in try await store.records(matching: query) }
        if json {
            if !records.isEmpty { printNow(HistoryReport.jsonLines(records)) }
        } else {
            printNow(HistoryReport.table(records))
        }
    }
}

/// `kafkasync status`: counts, what runs now, the last errors.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show transfer counts per status, what is running now and the last errors."
    )

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let config = try options.load()
        let now = Date()
        let text = try await withStore(config) { store in
            HistoryReport.status(
                allTime: try await store.statusCounts(since: nil),
                lastDay: try await store.statusCounts(since: now.addingTimeInterval(-86_400)),
                running: try await store.records(matching: TransferQuery(statuses: [.running], limit: 100)),
                recentErrors: try await store.records(matching: TransferQuery(
                    statuses: [.retrying, .failed, .deadLettered], limit: 5)),
                now: now,
                unfinishedUploads: try await store.uploads(matching: UploadQuery(states: [.pending, .uploading, .failed],
                                                                                 limit: 100)))
        }
        printNow(text)
    }
}

/// Opens the configured store for one command; a store that cannot be opened is a clear error, exit 1.
func withStore<Result: Sendable>(_ config: KafkaSyncConfig,
                                 _ body: @Sendable (any TransferStore) async throws -> Result) async throws -> Result {
    do {
        return try await withTransferStore(config.store.location, logger: makeLogger("kafkasync.store", level: config.debugLevel),
                                           body)
    } catch let error as StoreError {
        printError("kafkasync: the transfer store (\(config.store.location)) is not usable: \(error.message)")
        throw ExitCode(1)
    }
}
