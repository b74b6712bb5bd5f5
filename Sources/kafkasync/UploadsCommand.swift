import ArgumentParser
import AsyncHTTPClient
import Foundation
import KafkaSyncCore
import TransferStore

/// `kafkasync uploads`: the uploads to object storage the store knows, and aborting abandoned ones.
struct UploadsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "uploads",
        abstract: "List uploads to object storage, and abort abandoned multipart uploads.",
        subcommands: [List.self, Abort.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List unfinished uploads (all of them with --all).")
        @OptionGroup var options: ConfigOptions
        @Flag(help: "Every upload recorded, finished ones too.") var all = false
        @Option(help: "At most this many (oldest change first).") var limit = 1000

        func run() async throws {
            let config = try options.load()
            let states: Set<UploadState> = all ? [] : [.pending, .uploading, .failed, .aborted]
            let rows = try await withStore(config) { store in
                try await store.uploads(matching: UploadQuery(states: states, limit: limit))
            }
            guard !rows.isEmpty else {
                printNow(all ? "No uploads recorded." : "No unfinished uploads.")
                return
            }
            printNow("STATE      UPDATED               BYTES            UPLOAD       JOB / OBJECT")
            for row in rows {
                printNow([row.state.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0),
                          HumanFormat.timestamp(row.updatedAt).padding(toLength: 21, withPad: " ", startingAt: 0),
                          "\(row.bytesUploaded)/\(row.size)".padding(toLength: 16, withPad: " ", startingAt: 0),
                          row.uploadName.padding(toLength: 12, withPad: " ", startingAt: 0),
                          "\(row.jobID) s3://\(row.bucket)/\(row.key)"].joined(separator: " "))
                if let error = row.errorMessage { printNow("           \(error)") }
            }
        }
    }

    struct Abort: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Abort unfinished multipart uploads: a job's, or those untouched for longer than --older-than.",
            discussion: "The parts already sent are freed; a later delivery of the job uploads its files again.")
        @OptionGroup var options: ConfigOptions
        @Option(help: "Abort this job's unfinished uploads.") var job: String?
        @Option(help: "Abort uploads untouched for this long (\"30m\", \"24h\"; default: each upload's abort_after).")
        var olderThan: String?

        func run() async throws {
            let config = try options.load()
            let age = try olderThan.map { (text) throws -> Duration in
                guard let seconds = HumanFormat.timeSpan(text) else {
                    throw ValidationError("--older-than \(text): expected a time span like \"30m\", \"24h\" or \"2d\"")
                }
                return .milliseconds(Int64(seconds * 1000))
            }
            let client = UploadStage.makeHTTPClient()
            let result: Result<[UploadRecord], TransferFailure> = try await withStore(config) { store in
                let stage = UploadStage(config: config, store: store, httpClient: client,
                                        logger: makeLogger("kafkasync.uploads", level: config.debugLevel))
                do throws(TransferFailure) {
                    return .success(try await stage.abortAbandoned(jobID: job, olderThan: age))
                } catch {
                    return .failure(error)
                }
            }
            try? await client.shutdown()
            switch result {
            case .success(let aborted):
                for row in aborted { printNow("aborted s3://\(row.bucket)/\(row.key) (job \(row.jobID))") }
                printNow("\(aborted.count) upload(s) aborted.")
            case .failure(let error):
                printError("kafkasync: \(error)")
                throw ExitCode(1)
            }
        }
    }
}
