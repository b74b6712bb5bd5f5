import AsyncSupport
import Foundation
import KafkaClient
import Logging
import TransferStore

/// Carries one delivered job through DESIGN.md §1: decode → idempotency check → engine into staging → verify and
/// place (``StagingArea``) → store (``TransferJournal``) → upload (``UploadStage``, when the job has one), and says
/// what became of it (``Outcome``). Publishing the outcome is the ``OutcomePublisher``'s, so that waiting for the
/// broker does not hold a transfer slot.
public final class JobProcessor: Sendable {
    private let config: KafkaSyncConfig
    private let staging: StagingArea
    private let journal: TransferJournal
    private let engines: [TransferEngineKind: any TransferEngine]
    private let retryPolicy: RetryPolicy
    private let stagingLocks = StagingLocks()
    private let events: PipelineEvents
    private let uploads: UploadStage?
    private let logger: Logger

    /// A processor using these parts (the caller owns and closes them).
    /// - Parameters:
    ///   - events: where transfers' starts, progress and outcomes are told.
    ///   - uploads: the upload stage, when the config has uploads.
    public init(config: KafkaSyncConfig, store: any TransferStore, engines: [TransferEngineKind: any TransferEngine],
                workerHost: String = ProcessInfo.processInfo.hostName, events: PipelineEvents = PipelineEvents(),
                uploads: UploadStage? = nil, logger: Logger) {
        self.config = config
        staging = StagingArea(locations: config.locations)
        journal = TransferJournal(store: store, workerHost: workerHost, logger: logger)
        self.engines = engines
        retryPolicy = RetryPolicy(config.consumer)
        self.events = events
        self.uploads = uploads
        self.logger = logger
    }

    /// Processes one delivery and tells its outcome to the ``PipelineEvents``. Never throws: every failure is a
    /// retry or a dead letter.
    /// - Returns: the outcome, or `nil` when cancelled mid-transfer (the job is then redelivered and resumes).
    public func process(_ message: KafkaMessage) async -> Outcome? {
        let outcome = await outcome(of: message)
        if let outcome { events.emit(.outcome(outcome)) }
        return outcome
    }

    private func outcome(of message: KafkaMessage) async -> Outcome? {
        let history = JobHistory(message, retryTopic: config.topics.retry)
        let job: TransferJob
        do {
            job = try TransferJob.decode(message.value)
        } catch {
            logger.warning("rejected an invalid job", metadata: message.logMetadata + ["error": "\(error)"])
            return deadLetter(nil, TransferFailure(error), message: message, history: history)
        }
        let meta = message.logMetadata + ["job.id": "\(job.id)", "job.name": "\(job.name)", "job.remote": "\(job.remote ?? "-")"]
        logger.info("job received", metadata: meta)
        guard let remote = config.remote(named: job.remote) else {
            let failure = TransferFailure(.unknownRemote, "the job names remote \"\(job.remote ?? "")\", which the config does not define")
            return deadLetter(job, failure, message: message, history: history)
        }
        let upload: UploadConfig?
        do {
            upload = try config.upload(for: job)
        } catch {
            return deadLetter(job, error, message: message, history: history)
        }
        var record = journal.record(of: job, remote: remote, history: history)
        // Another delivery of this job (here or in another consumer on this machine) may be using its staging
        // path: wait for it; once it is done, the check below finds its result.
        let lock: StagingLocks.Held
        do {
            try createFolder(config.locations.incompletes)
            guard let held = try await stagingLocks.lock(staging.stagedPath(for: job), onWait: { [logger] in
                logger.info("another delivery of this job is running; waiting for it", metadata: meta)
            }) else { return nil }
            lock = held
        } catch {
            return await failed(error, record: record, message: message, history: history, job: job)
        }
        defer { lock.release() }
        let finalPath = staging.finalPath(for: job)
        if var duplicate = await journal.completedBefore(job, finalPath: finalPath, uploads: upload == nil ? nil : uploads) {
            if let uploads, upload != nil {
                do throws(TransferFailure) {
                    if let resumed = try await resumeUpload(duplicate, job: job, uploads: uploads, finalPath: finalPath,
                                                            attempt: history.attempt, meta: meta) {
                        return resumed
                    }
                } catch {
                    return await failed(error, record: duplicate, message: message, history: history, job: job)
                }
            }
            duplicate.status = .skippedDuplicate
            duplicate.updatedAt = Date()
            await journal.save(duplicate)
            logger.info("job already completed; skipped", metadata: meta + ["job.path": "\(finalPath)"])
            return .skipped(Outcome.Completion(job: job, path: finalPath, bytes: duplicate.bytesTransferred, files: 1,
                                               duration: .zero, finishedAt: Date()))
        }
        let started = ContinuousClock.now
        record.startedAt = Date()
        journal.started(record)
        events.emit(.started(record))
        logger.info("transfer started", metadata: meta + ["job.attempt": "\(history.attempt)"])
        let result: Result<(StagedTransfer, (path: String, disposition: StagingArea.Disposition)), TransferFailure>
        do {
            result = .success(try await transfer(job, remote: remote, upload: upload))
        } catch {
            result = .failure(error)
        }
        await journal.ended(job.id)
        if Task.isCancelled, case .failure = result {
            logger.notice("transfer abandoned; it will be redelivered and resume", metadata: meta)
            return nil
        }
        do throws(TransferFailure) {
            let (staged, placed) = try result.get()
            let elapsed = ContinuousClock.now - started
            record.kind = TransferKind(rawValue: staged.kind.rawValue)
            record.engine = staged.engine.rawValue
            record.status = .completed
            record.bytesTransferred = staged.totalBytes
            record.finishedAt = Date()
            record.updatedAt = record.finishedAt!
            // The files to upload are recorded before the completion, so whoever finds the completion finds them.
            let rows = if let upload, let uploads {
                try await uploads.record(job, upload: upload, placedPath: placed.path, files: staged.files)
            } else { [UploadRecord]() }
            try await saveCompleted(record, path: placed.path)
            if let uploads, !rows.isEmpty {
                _ = try await uploads.upload(rows, job: job,
                                             digests: staged.digests.merging(job.checksum?.sha256.map { ["": $0] } ?? [:]) { $1 })
            }
            logger.info("transfer completed", metadata: meta + [
                "job.path": "\(placed.path)", "job.bytes": "\(staged.totalBytes)", "job.files": "\(staged.files.count)",
                "job.received_bytes": "\(staged.bytesTransferred)", "job.placement": "\(placed.disposition.rawValue)",
                "job.duration_s": "\(String(format: "%.3f", elapsed.timeInterval))",
                "job.rate": "\(HumanFormat.rate(Double(staged.bytesTransferred) / max(elapsed.timeInterval, 1e-9)))",
            ])
            return .completed(Outcome.Completion(job: job, path: placed.path, bytes: staged.totalBytes,
                                                 files: staged.files.count, duration: elapsed, finishedAt: record.finishedAt!))
        } catch {
            return await failed(error, record: record, message: message, history: history, job: job)
        }
    }

    /// Finishes the upload of a result placed before (a consumer killed mid-upload, a failed upload's retry).
    /// - Returns: the completion, or `nil` when nothing was left to upload.
    private func resumeUpload(_ record: TransferRecord, job: TransferJob, uploads: UploadStage, finalPath: String,
                              attempt: Int, meta: Logger.Metadata) async throws(TransferFailure) -> Outcome? {
        let rows = try await uploads.unfinished(job)
        guard !rows.isEmpty else { return nil }
        logger.info("result in place; resuming its upload", metadata: meta)
        let started = ContinuousClock.now
        _ = try await uploads.upload(rows, job: job, digests: job.checksum?.sha256.map { ["": $0] } ?? [:])
        var record = record
        record.status = .completed
        record.errorClass = nil
        record.errorMessage = nil
        record.attempts = attempt
        record.updatedAt = Date()
        try await saveCompleted(record, path: finalPath)
        return .completed(Outcome.Completion(job: job, path: finalPath, bytes: record.bytesTransferred, files: rows.count,
                                             duration: ContinuousClock.now - started, finishedAt: record.updatedAt))
    }

    private func saveCompleted(_ record: TransferRecord, path: String) async throws(TransferFailure) {
        do {
            try await journal.saveCompleted(record)
        } catch {
            // Not done without its record: the next attempt finds the file in place and records it.
            throw TransferFailure(.storeFailed, "\(path) is in place, but the store cannot record it: \(error)")
        }
    }

    /// Downloads and places the job; a checksum mismatch of a resumed download is downloaded once more from
    /// scratch (``StagingArea/accept(_:job:policy:resumed:)``).
    private func transfer(_ job: TransferJob, remote: RemoteConfig, upload: UploadConfig?) async throws(TransferFailure)
        -> (StagedTransfer, (path: String, disposition: StagingArea.Disposition))
    {
        let engine = engines[remote.engine] ?? engines[.native]!
        try staging.checkDestination(job)  // before downloading (placement checks again)
        var request = TransferRequest(job: job, remote: remote, stagedPath: staging.stagedPath(for: job),
                                      parallelism: config.numThreads, segmentThreshold: config.consumer.segmentThreshold,
                                      maxEntries: config.consumer.maxEntries)
        request.wantsSHA256 = job.checksum?.algorithm == .sha256 || upload != nil
        let stored = journal.progress(of: job.id)
        let progress: @Sendable (TransferProgress) -> Void = { [events] progress in
            stored(progress)
            events.emit(.progress(jobID: job.id, bytes: progress.bytes, total: progress.totalBytes))
        }
        let resumed = pathExists(request.stagedPath)
        let staged = try await engine.transfer(request, progress: progress)
        let policy = config.consumer.onConflict
        do {
            return (staged, try await staging.accept(staged, job: job, policy: policy, resumed: resumed))
        } catch where error.code == .checksumMismatch && resumed {
            logger.warning("checksum mismatch after resuming; downloading again from scratch",
                           metadata: ["job.id": "\(job.id)", "error": "\(error)"])
            let again = try await engine.transfer(request, progress: progress)
            return (again, try await staging.accept(again, job: job, policy: policy, resumed: false))
        }
    }

    /// The retry or dead letter for a failure, recorded in the store.
    private func failed(_ failure: TransferFailure, record: TransferRecord, message: KafkaMessage, history: JobHistory,
                        job: TransferJob) async -> Outcome {
        var record = record
        record.errorClass = failure.code.description
        record.errorMessage = failure.message
        record.updatedAt = Date()
        switch retryPolicy.decide(after: failure, attempt: history.attempt) {
        case .retry(let attempt, let delay):
            let notBefore = Date().addingTimeInterval(delay.timeInterval)
            record.status = .retrying
            await journal.save(record)
            logger.warning("transfer failed; retrying later", metadata: message.logMetadata + [
                "job.id": "\(job.id)", "job.name": "\(job.name)", "error": "\(failure)",
                "job.attempt": "\(history.attempt)", "job.retry_in_s": "\(String(format: "%.1f", delay.timeInterval))",
            ])
            return .retry(job, failure: failure, attempt: attempt, notBefore: notBefore)
        case .deadLetter(let final):
            record.status = .deadLettered
            record.errorClass = final.code.description
            record.errorMessage = final.message
            record.finishedAt = Date()
            await journal.save(record)
            return deadLetter(job, final, message: message, history: history)
        }
    }

    private func deadLetter(_ job: TransferJob?, _ failure: TransferFailure, message: KafkaMessage,
                            history: JobHistory) -> Outcome {
        logger.error("job dead-lettered", metadata: message.logMetadata + [
            "job.id": "\(job?.id ?? "-")", "job.reason": "\(failure.code)", "error": "\(failure.message)",
            "job.attempt": "\(history.attempt)",
        ])
        return .deadLetter(job, failure: failure)
    }
}
