import Foundation
import KafkaClient
import Logging
import TransferStore

/// Carries one delivered job through DESIGN.md §1: decode → idempotency check → engine into staging → verify →
/// rename into `completes` → store; then its outcome record for `.done`, `.retry` or `.dlq`. Once that record is
/// published (``publish(_:)``) the outcome is durable and the offset may be committed. The two steps are separate so
/// that waiting for the broker's acknowledgement does not hold a transfer slot.
public final class JobProcessor: Sendable {
    private let config: KafkaSyncConfig
    private let staging: StagingArea
    private let store: any TransferStore
    private let producer: KafkaProducer
    private let engines: [TransferEngineKind: any TransferEngine]
    private let retryPolicy: RetryPolicy
    private let throttle = ProgressThrottle()
    private let runningRows: RunningRows
    private let stagingLocks = StagingLocks()
    private let logger: Logger
    private let workerHost = ProcessInfo.processInfo.hostName

    /// A processor using these parts (the caller owns and closes them).
    public init(config: KafkaSyncConfig, store: any TransferStore, producer: KafkaProducer,
                engines: [TransferEngineKind: any TransferEngine], logger: Logger) {
        self.config = config
        staging = StagingArea(locations: config.locations)
        self.store = store
        self.producer = producer
        self.engines = engines
        retryPolicy = RetryPolicy(config.consumer)
        self.logger = logger
        runningRows = RunningRows { [store, logger] record in await Self.save(record, to: store, logger: logger) }
    }

    /// Processes one delivery. Never throws: every failure becomes a record for the retry or dead-letter topic.
    /// - Returns: the record to publish, or `nil` when cancelled mid-transfer (the job is then redelivered and
    ///   resumes).
    public func process(_ message: KafkaMessage) async -> KafkaOutgoingMessage? {
        let history = JobHistory(message, retryTopic: config.topics.retry)
        let job: TransferJob
        do {
            job = try TransferJob.decode(message.value)
        } catch {
            let failure = TransferFailure(.permanent, code: error.reason.code, error.message)
            logger.warning("rejected an invalid job", metadata: metadata(message, history) + ["error": "\(failure)"])
            return deadLetter(message, history: history, failure: failure, job: nil)
        }
        var meta = metadata(message, history) + ["job.id": "\(job.id)", "job.name": "\(job.name)"]
        logger.info("job received", metadata: meta)
        guard let remote = config.remote(named: job.remote) else {
            let failure = TransferFailure(.permanent, code: "unknown_remote",
                                          "the job names remote \"\(job.remote ?? "")\", which the config does not define")
            return deadLetter(message, history: history, failure: failure, job: job)
        }
        meta["job.remote"] = "\(remote.name)"
        let received = Date()
        var record = TransferRecord(jobID: job.id, infoHash: job.infoHash, name: job.name, remote: remote.name,
                                    remotePath: job.remotePath, destination: job.destination,
                                    kind: job.kind == .directory ? .directory : (job.kind == .file ? .file : nil),
                                    status: .running, attempts: history.attempt, bytesExpected: job.size,
                                    checksum: job.checksum?.description, workerHost: workerHost,
                                    kafkaTopic: history.originalTopic, kafkaPartition: history.originalPartition,
                                    kafkaOffset: history.originalOffset, receivedAt: received)
        // Another delivery of this job (here or in another consumer on this machine) may be using its staging
        // path: wait for it; once it is done, the check below finds its result.
        let lock: StagingLocks.Held
        do {
            try createFolder(config.locations.incompletes)
            guard let held = try await stagingLocks.lock(staging.stagedPath(for: job), onWait: { [logger, meta] in
                logger.info("another delivery of this job is running; waiting for it", metadata: meta)
            }) else { return nil }
            lock = held
        } catch {
            return await handle(error, message: message, history: history, job: job, record: record)
        }
        defer { lock.release() }
        if let duplicate = await completedBefore(job) {
            var record = duplicate
            record.status = .skippedDuplicate
            record.updatedAt = Date()
            await save(record)
            logger.info("job already completed; skipped", metadata: meta + ["job.path": "\(staging.finalPath(for: job))"])
            return publishDone(job, message: message, status: "skipped", path: staging.finalPath(for: job),
                               bytes: duplicate.bytesTransferred, duration: 0)
        }
        let started = Date()
        record.startedAt = started
        runningRows.start(record)
        logger.info("transfer started", metadata: meta + ["job.attempt": "\(history.attempt)"])
        let outcome: Result<(StagedTransfer, (path: String, disposition: StagingArea.Disposition)), TransferFailure>
        do {
            outcome = .success(try await transfer(job, remote: remote))
        } catch {
            outcome = .failure(error)
        }
        await runningRows.finish(job.id)
        do {
            let (staged, placed) = try outcome.get()
            let elapsed = Date().timeIntervalSince(started)
            record.kind = staged.kind
            record.status = .completed
            record.bytesTransferred = staged.totalBytes
            record.finishedAt = Date()
            record.updatedAt = record.finishedAt!
            throttle.finish(jobID: job.id)
            do {
                try await store.save(record)
            } catch {
                // Not done without its record: the next attempt finds the file in place and records it.
                let failure = TransferFailure(.transient, code: "store_failed",
                                              "\(placed.path) is in place, but the store cannot record it: \(error)")
                return await handle(failure, message: message, history: history, job: job, record: record)
            }
            logger.info("transfer completed", metadata: meta + [
                "job.path": "\(placed.path)", "job.bytes": "\(staged.totalBytes)", "job.files": "\(staged.files.count)",
                "job.received_bytes": "\(staged.bytesTransferred)", "job.placement": "\(placed.disposition.rawValue)",
                "job.duration_s": "\(String(format: "%.3f", elapsed))",
                "job.rate": "\(HumanFormat.rate(elapsed > 0 ? Double(staged.bytesTransferred) / elapsed : 0))",
            ])
            return publishDone(job, message: message, status: "completed", path: placed.path, bytes: staged.totalBytes,
                               duration: elapsed, files: staged.files.count)
        } catch {
            throttle.finish(jobID: job.id)
            if Task.isCancelled {
                logger.notice("transfer abandoned; it will be redelivered and resume", metadata: meta)
                return nil
            }
            return await handle(error, message: message, history: history, job: job, record: record)
        }
    }

    /// Downloads, verifies (a checksum mismatch of a resumed download is retried once from scratch; a second one
    /// quarantines the file) and places the job.
    private func transfer(_ job: TransferJob, remote: RemoteConfig) async throws(TransferFailure)
        -> (StagedTransfer, (path: String, disposition: StagingArea.Disposition))
    {
        let engine = engines[remote.engine] ?? engines[.native]!
        try staging.checkDestination(job)  // before downloading (placement checks again)
        let request = TransferRequest(job: job, remote: remote, stagedPath: staging.stagedPath(for: job),
                                      parallelism: config.numThreads, segmentThreshold: config.consumer.segmentThreshold,
                                      maxEntries: config.consumer.maxEntries)
        let store = self.store
        let throttle = self.throttle
        let progress: @Sendable (TransferProgress) -> Void = { progress in
            let now = Date()
            guard throttle.shouldWrite(jobID: job.id, at: now) else { return }
            Task { try? await store.updateProgress(jobID: job.id, bytesTransferred: progress.bytes, at: now) }
        }
        let hadPartial = pathExists(request.stagedPath)
        // The first progress row is written after a second: a small file is done before it would matter.
        _ = throttle.shouldWrite(jobID: job.id, at: Date())
        var staged = try await engine.transfer(request, progress: progress)
        do {
            try await staging.verify(staged, job: job)
        } catch where error.code == "checksum_mismatch" && hadPartial {
            logger.warning("checksum mismatch after resuming; downloading again from scratch",
                           metadata: ["job.id": "\(job.id)", "error": "\(error)"])
            staging.discard(job)
            staged = try await engine.transfer(request, progress: progress)
            try await verifyOrQuarantine(staged, job: job)
        } catch where error.code == "checksum_mismatch" || error.code == "size_mismatch" {
            try await verifyOrQuarantine(staged, job: job)
        }
        return (staged, try await staging.complete(staged, job: job, policy: config.consumer.onConflict))
    }

    private func verifyOrQuarantine(_ staged: StagedTransfer, job: TransferJob) async throws(TransferFailure) {
        do {
            try await staging.verify(staged, job: job)
        } catch {
            let kept = staging.quarantine(staged, job: job)
            throw TransferFailure(error.errorClass, code: error.code,
                                  error.message + (kept.map { "; the file is kept in \($0)" } ?? ""))
        }
    }

    /// A job completed earlier with the same expectations whose result is still in `completes`.
    private func completedBefore(_ job: TransferJob) async -> TransferRecord? {
        guard pathExists(staging.finalPath(for: job)),  // first: a new job costs a stat, not a query
              let record = try? await store.record(jobID: job.id),
              record.status == .completed || record.status == .skippedDuplicate,
              record.checksum == job.checksum?.description, job.size == nil || record.bytesTransferred == job.size
        else { return nil }
        return record
    }

    // MARK: Failures

    private func handle(_ error: TransferFailure, message: KafkaMessage, history: JobHistory, job: TransferJob,
                        record: TransferRecord) async -> KafkaOutgoingMessage {
        var record = record
        record.errorClass = error.code
        record.errorMessage = error.message
        record.updatedAt = Date()
        let meta = metadata(message, history) + ["job.id": "\(job.id)", "job.name": "\(job.name)", "error": "\(error)"]
        if error.errorClass == .transient && history.attempt < retryPolicy.maxAttempts {
            let delay = retryPolicy.delay(afterAttempt: history.attempt)
            let now = Date()
            let notBefore = now.addingTimeInterval(delay.timeInterval)
            record.status = .retrying
            await save(record)
            logger.warning("transfer failed; retrying later", metadata: meta + [
                "job.attempt": "\(history.attempt)", "job.retry_in_s": "\(String(format: "%.1f", notBefore.timeIntervalSince(now)))",
            ])
            let headers = history.headers(after: error, at: now, nextAttempt: history.attempt + 1, notBefore: notBefore)
            // Keyed by the job, so all attempts of one job go to the same retry partition, in order.
            return KafkaOutgoingMessage(topic: config.topics.retry, key: message.key ?? Array(job.id.utf8),
                                        value: message.value, headers: headers)
        }
        let failure = error.errorClass == .transient
            ? TransferFailure(.transient, code: "attempts_exhausted",
                              "gave up after \(history.attempt) attempts; last: \(error.message) [\(error.code)]")
            : error
        record.status = .deadLettered
        record.errorClass = failure.code
        record.errorMessage = failure.message
        record.finishedAt = Date()
        await save(record)
        return deadLetter(message, history: history, failure: failure, job: job)
    }

    private func deadLetter(_ message: KafkaMessage, history: JobHistory, failure: TransferFailure,
                            job: TransferJob?) -> KafkaOutgoingMessage {
        logger.error("job dead-lettered", metadata: metadata(message, history) + [
            "job.id": "\(job?.id ?? "-")", "job.reason": "\(failure.code)", "error": "\(failure.message)",
            "job.attempt": "\(history.attempt)",
        ])
        let headers = history.headers(after: failure, at: Date(), nextAttempt: nil, notBefore: nil)
        return KafkaOutgoingMessage(topic: config.topics.deadLetter, key: message.key, value: message.value,
                                    headers: headers)
    }

    private func publishDone(_ job: TransferJob, message: KafkaMessage, status: String, path: String, bytes: Int64,
                             duration: TimeInterval, files: Int = 1) -> KafkaOutgoingMessage {
        let event = DoneEvent(id: job.id, name: job.name, status: status, path: path, bytes: bytes, files: files,
                              durationMs: Int64(duration * 1000), checksum: job.checksum?.description, worker: workerHost,
                              publishedAtMs: message.timestampMilliseconds,
                              finishedAtMs: Int64(Date().timeIntervalSince1970 * 1000))
        let value = (try? DoneEvent.encoder.encode(event)).map(Array.init) ?? []
        return KafkaOutgoingMessage(topic: config.topics.done, key: Array(job.id.utf8), value: value)
    }

    /// Publishes the outcome record of `delivery` until the broker acknowledges it (backing off up to 30 s between
    /// tries). A record the broker can never take (too large) would hold the partition's commits forever: a
    /// trimmed dead letter (``trimmedDeadLetter(for:of:error:)``) goes instead, and if even that is refused, the
    /// outcome is given up with an error in the log.
    /// - Returns: `true` once the outcome is settled (the delivery may be marked done); `false` when cancelled first.
    public func publish(_ outcome: KafkaOutgoingMessage, of delivery: KafkaMessage) async -> Bool {
        var message = outcome
        var trimmed = false
        var delay = Duration.milliseconds(500)
        while !Task.isCancelled {
            do {
                _ = try await producer.send(message)
                return true
            } catch where error.code == .messageTooLarge {
                if trimmed {
                    logger.error("the broker refuses even the trimmed dead letter; the outcome is lost",
                                 metadata: metadata(delivery) + ["error": "\(error)"])
                    return true
                }
                logger.error("the broker refuses the outcome record for good; sending a trimmed dead letter instead",
                             metadata: metadata(delivery) + ["kafka.outcome_topic": "\(outcome.topic)", "error": "\(error)"])
                message = trimmedDeadLetter(for: outcome, of: delivery, error: error)
                trimmed = true
            } catch {
                logger.warning("cannot publish to \(message.topic); trying again", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(30))
            }
        }
        return false
    }

    /// The dead letter that stands in for an outcome record the broker refused: the reason
    /// (`outcome_too_large`), the job's original position and history in headers, the job id as key, and no value
    /// (the job itself is still at its original position).
    func trimmedDeadLetter(for outcome: KafkaOutgoingMessage, of delivery: KafkaMessage, error: KafkaError)
        -> KafkaOutgoingMessage
    {
        let size = outcome.value.count + (outcome.key?.count ?? 0) + outcome.headers.reduce(0) { $0 + $1.name.utf8.count + ($1.value?.count ?? 0) }
        let failure = TransferFailure(.permanent, code: "outcome_too_large",
                                      "the broker refused the \(outcome.topic) record of this job (\(size) bytes): \(error.code)")
        let history = JobHistory(delivery, retryTopic: config.topics.retry)
        return KafkaOutgoingMessage(topic: config.topics.deadLetter,
                                    key: (try? TransferJob.decode(delivery.value)).map { Array($0.id.utf8) }, value: [],
                                    headers: history.headers(after: failure, at: Date(), nextAttempt: nil, notBefore: nil))
    }

    private func save(_ record: TransferRecord) async {
        await Self.save(record, to: store, logger: logger)
    }

    private static func save(_ record: TransferRecord, to store: any TransferStore, logger: Logger) async {
        do {
            try await store.save(record)
        } catch {
            logger.warning("cannot record the transfer in the store", metadata: ["job.id": "\(record.jobID)", "error": "\(error)"])
        }
    }

    private func metadata(_ message: KafkaMessage, _ history: JobHistory? = nil) -> Logger.Metadata {
        ["kafka.topic": "\(message.topic)", "kafka.partition": "\(message.partition)", "kafka.offset": "\(message.offset)"]
    }
}

/// The event published on `<topic>.done` when a job's result is in `completes`.
public struct DoneEvent: Codable, Sendable, Equatable {
    /// The job id.
    public var id: String
    /// The job's name.
    public var name: String
    /// `completed` or `skipped` (already there).
    public var status: String
    /// The final path.
    public var path: String
    /// Bytes of the file or of all files of the directory.
    public var bytes: Int64
    /// Files (1 for a file job).
    public var files: Int
    /// How long the transfer took.
    public var durationMs: Int64
    /// The verified checksum, if the job gave one.
    public var checksum: String?
    /// The consumer's host.
    public var worker: String
    /// When the job's message was published (its Kafka timestamp), epoch milliseconds.
    public var publishedAtMs: Int64?
    /// When the result was in place, epoch milliseconds.
    public var finishedAtMs: Int64

    // Snake case spelled out: a key strategy would convert every key of every event.
    enum CodingKeys: String, CodingKey {
        case id, name, status, path, bytes, files, checksum, worker
        case durationMs = "duration_ms", publishedAtMs = "published_at_ms", finishedAtMs = "finished_at_ms"
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// Decodes an event from a `.done` record.
    public static func decode(_ bytes: [UInt8]) throws -> DoneEvent {
        try JSONDecoder().decode(DoneEvent.self, from: Data(bytes))
    }
}

private func + (lhs: Logger.Metadata, rhs: Logger.Metadata) -> Logger.Metadata {
    lhs.merging(rhs) { $1 }
}
