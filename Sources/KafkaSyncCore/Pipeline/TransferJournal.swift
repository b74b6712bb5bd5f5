import Foundation
import Logging
import TransferStore

/// The store's view of the jobs in flight: each job's row from the moment it is received, its `running` row
/// once it has run for a second, its progress at most once a second, and its final row.
final class TransferJournal: Sendable {
    private let store: any TransferStore
    private let logger: Logger
    private let workerHost: String
    private let throttle = ProgressThrottle()
    private let runningRows: RunningRows

    /// A journal in `store`; failed writes are logged (only a completion's row is required, see
    /// ``saveCompleted(_:)``).
    init(store: any TransferStore, workerHost: String, logger: Logger) {
        self.store = store
        self.logger = logger
        self.workerHost = workerHost
        runningRows = RunningRows { [store, logger] record in await Self.save(record, to: store, logger: logger) }
    }

    /// The row of a job just received (not written yet).
    func record(of job: TransferJob, remote: RemoteConfig, history: JobHistory, at time: Date = Date()) -> TransferRecord {
        TransferRecord(jobID: job.id, infoHash: job.infoHash, name: job.name, remote: remote.name,
                       remotePath: job.remotePath, destination: job.destination,
                       kind: job.kind == .directory ? .directory : (job.kind == .file ? .file : nil),
                       status: .running, attempts: history.attempt, bytesExpected: job.size,
                       checksum: job.checksum?.description, workerHost: workerHost,
                       kafkaTopic: history.originalTopic, kafkaPartition: history.originalPartition,
                       kafkaOffset: history.originalOffset, receivedAt: time)
    }

    /// The row of a job whose result was placed earlier with the same expectations, if that result is at
    /// `finalPath` (or was uploaded and removed: `uploads` says). A job whose upload failed after placement counts:
    /// its next delivery resumes the upload instead of downloading again.
    func completedBefore(_ job: TransferJob, finalPath: String, uploads: UploadStage?) async -> TransferRecord? {
        // First: a new job costs a stat, not a query (or one query when it has an upload).
        var present = pathExists(finalPath)
        if !present, let uploads { present = await uploads.completed(job) }
        guard present,
              let record = try? await store.record(jobID: job.id),
              record.status == .completed || record.status == .skippedDuplicate
                || Self.uploadCodes.contains(record.errorClass ?? ""),
              record.checksum == job.checksum?.description, job.size == nil || record.bytesTransferred == job.size
        else { return nil }
        return record
    }

    /// The failure codes of the upload stage, which runs only once the result is placed.
    private static let uploadCodes = Set([TransferFailure.Code.uploadFailed, .uploadDenied, .uploadRejected].map(\.description))

    /// A transfer started: its `running` row is written if it is still going after a second.
    func started(_ record: TransferRecord) {
        runningRows.start(record)
        // The first progress row is written after a second too: a small file is done before it would matter.
        _ = throttle.shouldWrite(jobID: record.jobID, at: Date())
    }

    /// What an engine calls as bytes arrive: moves the row's byte count, at most once a second.
    func progress(of jobID: String) -> @Sendable (TransferProgress) -> Void {
        { [throttle, store] progress in
            let now = Date()
            guard throttle.shouldWrite(jobID: jobID, at: now) else { return }
            Task {
                try? await store.updateProgress(jobID: jobID, bytesTransferred: progress.bytes,
                                                bytesExpected: progress.totalBytes, at: now)
            }
        }
    }

    /// The transfer ended: no `running` row or progress is written after this returns.
    func ended(_ jobID: String) async {
        await runningRows.finish(jobID)
        throttle.finish(jobID: jobID)
    }

    /// Writes a row; a failure is logged, not thrown (the Kafka record is the outcome that counts).
    func save(_ record: TransferRecord) async {
        await Self.save(record, to: store, logger: logger)
    }

    /// Writes a completed job's row, which must be there: the next delivery of the job finds it and skips.
    func saveCompleted(_ record: TransferRecord) async throws(StoreError) {
        try await store.save(record)
    }

    private static func save(_ record: TransferRecord, to store: any TransferStore, logger: Logger) async {
        do {
            try await store.save(record)
        } catch {
            logger.warning("cannot record the transfer in the store", metadata: ["job.id": "\(record.jobID)", "error": "\(error)"])
        }
    }
}
