import ArgumentParser
import AsyncSupport
import Foundation
import KafkaClient
import KafkaSyncCore

/// `kafkasync producer` (alias `publish`): publishes transfer jobs.
struct ProducerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "producer",
        abstract: "Publish transfer jobs: interactively, from flags, or one JSON job per line.",
        discussion: """
            Without job flags it asks for a hash, a file name and a remote location, job after job, until the \
            end of input (as the original producer did). With --name and --location it sends one job. With \
            --batch FILE (or - for standard input) it sends one JSON job per line and reports invalid lines.
            """,
        aliases: ["publish"]
    )

    @OptionGroup var options: ConfigOptions

    @Option(help: "Remote file or directory name.") var name: String?
    @Option(help: "Remote directory that holds it.") var location: String?
    @Option(help: "The info hash (becomes the job id).") var hash: String?
    @Option(help: "Expected checksum: sha256:<hex>, sha1:<hex> or md5:<hex>.") var checksum: String?
    @Option(help: "Expected size in bytes.") var size: Int64?
    @Option(help: "A remote named in [remotes.NAME] (default: remoteDetails).") var remote: String?
    @Option(help: "Folder under completes to place it in.") var destination: String?
    @Option(help: "file, directory or auto (default).") var kind: String?
    @Option(help: "An upload named in [uploads.NAME] to send the result to.") var upload: String?
    @Option(help: "Send one JSON job per line from this file; - reads standard input.") var batch: String?

    private var hasJobFlags: Bool {
        [name, location, hash, checksum, remote, destination, kind, upload].contains { $0 != nil } || size != nil
    }

    func validate() throws {
        if batch != nil && hasJobFlags { throw ValidationError("--batch cannot be combined with job flags") }
        if hasJobFlags && (name == nil || location == nil) {
            throw ValidationError("a job needs both --name and --location")
        }
    }

    func run() async throws {
        let config = try options.load()
        let logger = makeLogger("kafkasync.producer", level: config.debugLevel)
        let producer: KafkaProducer
        do {
            producer = try KafkaProducer(configuration: config.producerConfiguration(sendingTo: [config.topics.jobs]), logger: logger)
        } catch {
            printError("kafkasync: \(error.message)")
            throw ExitCode(1)
        }
        let session = ProducerSession(publisher: JobPublisher(producer: producer, topic: config.topics.jobs),
                                      topic: config.topics.jobs)
        let failed: Bool
        if let batch {
            failed = await session.sendBatch(from: batch)
        } else if let name, let location {
            failed = await session.sendOne { () throws(JobRejection) -> TransferJob in
                let kind = try kind.map { (text) throws(JobRejection) in try TransferJob.Kind(parsing: text) }
                return try TransferJob(name: name, location: location, infoHash: hash, checksum: checksum, size: size,
                                       remote: remote, destination: destination, kind: kind ?? .auto, upload: upload)
            }
        } else {
            failed = await session.interactive()
        }
        await producer.close()
        if failed { throw ExitCode(1) }
    }
}

/// The three ways of sending jobs, sharing one producer.
struct ProducerSession {
    let publisher: JobPublisher
    let topic: String

    /// Builds and sends one job. - Returns: whether it failed.
    func sendOne(_ build: () throws(JobRejection) -> TransferJob) async -> Bool {
        let job: TransferJob
        do {
            job = try build()
        } catch {
            printError("✖ invalid job: \(error.message) (\(error.reason.code))")
            return true
        }
        return await send(job)
    }

    /// Sends a valid job and prints where it went. - Returns: whether it failed.
    private func send(_ job: TransferJob) async -> Bool {
        report(job, await publish(job))
    }

    private func publish(_ job: TransferJob) async -> Result<KafkaDeliveryReport, KafkaError> {
        do {
            return .success(try await publisher.publish(job))
        } catch {
            return .failure(error)
        }
    }

    /// Prints where a job went or why it did not. - Returns: whether it failed.
    private func report(_ job: TransferJob, _ result: Result<KafkaDeliveryReport, KafkaError>) -> Bool {
        switch result {
        case .success(let report):
            printNow("✅ Sent job \(job.id) (\(job.name)) to \(topic) partition \(report.partition) offset \(report.offset)")
            return false
        case .failure(let error):
            printError("✖ could not send job \(job.id): \(error.message)")
            return true
        }
    }

    /// The original's prompts, job after job, until the end of input. - Returns: whether any job failed.
    func interactive() async -> Bool {
        var failed = false
        while true {
            guard let hash = await prompt("🔢 Enter hash: "),
                  let name = await prompt("📄 Enter file name: "),
                  let location = await prompt("🌐 Enter remote location: ") else { break }
            let jobFailed = await sendOne { () throws(JobRejection) -> TransferJob in
                try TransferJob(name: name, location: location, infoHash: hash.isEmpty ? nil : hash)
            }
            failed = failed || jobFailed
        }
        printNow("")
        return failed
    }

    /// One JSON job per line; invalid lines are reported with their number and skipped.
    /// - Returns: whether any line was invalid or failed to send.
    func sendBatch(from source: String) async -> Bool {
        let lines: [Substring]
        do {
            let data = source == "-" ? try await readAllStandardInput() : try Data(contentsOf: URL(fileURLWithPath: source))
            lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        } catch {
            printError("✖ cannot read \(source): \(error.localizedDescription)")
            return true
        }
        var invalid = 0
        var jobs: [TransferJob] = []
        for (index, line) in lines.enumerated() {
            let text = line.hasSuffix("\r") ? line.dropLast() : line
            guard !text.allSatisfy(\.isWhitespace) else { continue }
            do {
                jobs.append(try TransferJob.decode(Array(text.utf8)))
            } catch {
                invalid += 1
                printError("✖ line \(index + 1): \(error.message) (\(error.reason.code))")
            }
        }
        // Up to 1,000 jobs in flight at once (one acknowledgement round trip per batch, not per job); the
        // results are printed in line order.
        var sent = 0
        var failedSends = 0
        for start in stride(from: 0, to: jobs.count, by: 1000) {
            let chunk = Array(jobs[start..<min(start + 1000, jobs.count)])
            let results = await withTaskGroup(of: (Int, Result<KafkaDeliveryReport, KafkaError>).self) { group in
                for (offset, job) in chunk.enumerated() { group.addTask { (offset, await self.publish(job)) } }
                return await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
            }
            for (offset, job) in chunk.enumerated() {
                if report(job, results[offset]!) { failedSends += 1 } else { sent += 1 }
            }
        }
        printError("sent \(sent) job(s), \(invalid) invalid line(s), \(failedSends) failed send(s)")
        return invalid > 0 || failedSends > 0
    }
}

/// Prints a prompt and reads one line off the cooperative pool. `nil` at the end of input.
private func prompt(_ text: String) async -> String? {
    printNow(text, terminator: "")
    return await runBlocking { readLine(strippingNewline: true) }
}

/// Reads standard input to the end off the cooperative pool.
private func readAllStandardInput() async throws -> Data {
    try await runBlocking { () throws -> Data in try FileHandle.standardInput.readToEnd() ?? Data() }
}
