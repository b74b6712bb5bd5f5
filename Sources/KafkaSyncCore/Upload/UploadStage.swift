import AsyncHTTPClient
import AsyncSupport
import CoreMetrics
import Foundation
import Logging
import ObjectStorage
import ServiceLifecycle
import Synchronization
import TransferStore

/// The pipeline's upload stage (DESIGN.md §1): after a job's result is placed and recorded, every file of it goes to
/// the job's `[uploads.NAME]`, and only then is the job done (its offset committed). At least once and resumable:
/// each file's state is in the store (`uploads`) before anything is sent, a multipart upload's id is recorded as soon
/// as the object store gives it, and each acknowledged part right after; a delivery that finds a file's upload
/// unfinished asks the object store which parts it has (ListParts) and sends only the rest.
///
/// An object already at the key is compared by its `sha256` metadata (never by its ETag, which is no MD5 for a
/// multipart object): identical content is a skip, anything else follows `on_conflict`.
public final class UploadStage: Sendable {
    private let uploads: [String: UploadConfig]
    private let clients: [String: S3Client]
    private let store: any TransferStore
    private let onConflict: ConsumerSettings.ConflictPolicy
    private let retryDelays: [Duration]
    private let logger: Logger

    /// A stage for `config`'s uploads over `httpClient` (the caller shuts it down after the stage's last use).
    /// - Parameter retryDelays: the waits before each repeat of a request that failed transiently (then the job
    ///   is retried by the pipeline).
    public init(config: KafkaSyncConfig, store: any TransferStore, httpClient: HTTPClient,
                retryDelays: [Duration] = [.milliseconds(200), .seconds(1), .seconds(4)], logger: Logger) {
        uploads = config.uploads
        clients = config.uploads.mapValues { upload in
            S3Client(location: upload.location, credentials: upload.credentials, httpClient: httpClient, logger: logger)
        }
        self.store = store
        onConflict = config.consumer.onConflict
        self.retryDelays = retryDelays
        self.logger = logger
    }

    /// The HTTP client the stage's requests go through (the caller shuts it down): a refused connection fails at
    /// once (and is repeated as a transient failure), and redirects are not followed (a redirected request would
    /// no longer match its signature).
    public static func makeHTTPClient() -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.redirectConfiguration = .disallow
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Records the files of a placed result as pending uploads (keeping the state of files recorded before), so a
    /// consumer killed from here on finds them on the job's next delivery.
    /// - Parameters:
    ///   - placedPath: the result in `completes` (a file, or a directory holding `files`).
    ///   - files: each file's path in the result (`""` for a single file) and size.
    func record(_ job: TransferJob, upload: UploadConfig, placedPath: String, files: [String: Int64])
        async throws(TransferFailure) -> [UploadRecord]
    {
        let existing = try await storeCall { () throws(StoreError) in try await store.uploads(jobID: job.id) }
        let known = Dictionary(existing.map { ($0.file, $0) }, uniquingKeysWith: { first, _ in first })
        let now = Date()
        let base = (job.name as NSString).lastPathComponent
        let fresh = files.keys.sorted().filter { known[$0] == nil || known[$0]?.uploadName != upload.name }.map { file in
            UploadRecord(jobID: job.id, file: file, localPath: file.isEmpty ? placedPath : placedPath + "/" + file,
                         uploadName: upload.name, bucket: upload.bucket,
                         key: upload.key(for: job, relativePath: file.isEmpty ? base : base + "/" + file, date: now),
                         state: .pending, size: files[file] ?? 0, partSize: nil, createdAt: now, updatedAt: now)
        }
        try await save(fresh)
        let recorded = Dictionary(fresh.map { ($0.file, $0) }, uniquingKeysWith: { first, _ in first })
        return files.keys.sorted().compactMap { recorded[$0] ?? known[$0] }
    }

    /// The recorded upload files of a job whose result was placed before, when any is unfinished.
    func unfinished(_ job: TransferJob) async throws(TransferFailure) -> [UploadRecord] {
        let rows = try await storeCall { () throws(StoreError) in try await store.uploads(jobID: job.id) }
        return rows.contains(where: Self.needsWork) ? rows : []
    }

    /// Whether every recorded upload of a job finished well (so its local copy may be gone).
    func completed(_ job: TransferJob) async -> Bool {
        guard let rows = try? await store.uploads(jobID: job.id), !rows.isEmpty else { return false }
        return rows.allSatisfy { $0.state == .completed || $0.state == .skipped }
    }

    /// Uploads the files `records` name (those not final yet), `concurrency` parts at a time per file, and
    /// removes the local copies afterwards when `keep_local` is off.
    /// - Parameter digests: the SHA-256 (hex) of files the pipeline knows already, by path in the result.
    /// - Returns: the bytes sent.
    /// - Throws: `upload_failed` (transient), `upload_denied` / `upload_rejected` / `name_conflict` (permanent).
    func upload(_ records: [UploadRecord], job: TransferJob, digests: [String: String]) async throws(TransferFailure) -> Int64 {
        var sent: Int64 = 0
        for record in records where Self.needsWork(record) {
            guard let upload = uploads[record.uploadName], let client = clients[record.uploadName] else {
                throw TransferFailure(.unknownUpload, "upload \"\(record.uploadName)\" is no longer configured")
            }
            let started = ContinuousClock.now
            do throws(TransferFailure) {
                let done = try await send(record, upload: upload, client: client, digest: digests[record.file])
                sent += done.state == .completed ? done.size : 0
                Counter(label: "kafkasync_uploads_total", dimensions: [("upload", upload.name), ("state", done.state.rawValue)])
                    .increment()
                Counter(label: "kafkasync_upload_bytes_total", dimensions: [("upload", upload.name)])
                    .increment(by: Int(clamping: done.state == .completed ? done.size : 0))
                Timer(label: "kafkasync_upload_duration_seconds", dimensions: [("upload", upload.name)])
                    .recordNanoseconds((ContinuousClock.now - started).wholeNanoseconds)
                logger.info("upload \(done.state == .skipped ? "skipped: identical object exists" : "completed")", metadata: [
                    "job.id": "\(job.id)", "upload.name": "\(upload.name)", "upload.bucket": "\(upload.bucket)",
                    "upload.key": "\(done.key)", "upload.bytes": "\(done.size)",
                ])
            } catch {
                Counter(label: "kafkasync_uploads_total", dimensions: [("upload", upload.name), ("state", "failed")]).increment()
                // The row as the attempt left it (its upload id and parts), with the error.
                let saved = try? await store.uploads(jobID: record.jobID).first { $0.file == record.file }
                var failed = saved ?? record
                failed.errorClass = error.code.description
                failed.errorMessage = error.message
                failed.updatedAt = Date()
                if !error.isTransient { failed.state = .failed }
                try? await save([failed])
                throw error
            }
        }
        for record in records where !(uploads[record.uploadName]?.keepLocal ?? true) {
            try? FileManager.default.removeItem(atPath: record.localPath)
        }
        if let first = records.first, !first.file.isEmpty, !(uploads[first.uploadName]?.keepLocal ?? true) {
            // A directory result: its folders too, deepest first, where nothing else is left in them.
            let root = String(first.localPath.dropLast(first.file.count + 1))
            let folders = Set(records.flatMap { record in
                var parts = record.file.split(separator: "/").dropLast()
                var paths: [String] = []
                while !parts.isEmpty {
                    paths.append(root + "/" + parts.joined(separator: "/"))
                    parts = parts.dropLast()
                }
                return paths
            })
            for folder in folders.sorted(by: { $0.count > $1.count }) + [root] { rmdir(folder) }
        }
        return sent
    }

    /// Whether a file still has to be uploaded: anything but completed or skipped (an aborted or failed upload is
    /// started again when its job is delivered again).
    static func needsWork(_ record: UploadRecord) -> Bool {
        record.state != .completed && record.state != .skipped
    }

    // MARK: Abandoned uploads

    /// Aborts the multipart uploads this tool recorded and left unfinished: those of `jobID`, or those untouched
    /// for longer than their upload's `abort_after` (or `olderThan` when given). Parts already sent are freed.
    /// - Returns: the records aborted.
    public func abortAbandoned(jobID: String? = nil, olderThan: Duration? = nil, now: Date = Date())
        async throws(TransferFailure) -> [UploadRecord]
    {
        let candidates: [UploadRecord]
        if let jobID {
            candidates = try await storeCall { () throws(StoreError) in try await store.uploads(jobID: jobID) }
        } else {
            candidates = try await storeCall { () throws(StoreError) in
                try await store.uploads(matching: UploadQuery(states: [.pending, .uploading]))
            }
        }
        var aborted: [UploadRecord] = []
        for var record in candidates where !record.state.isFinal {
            let limit = olderThan ?? uploads[record.uploadName]?.abortAfter ?? .seconds(86_400)
            guard jobID != nil || record.updatedAt < now.addingTimeInterval(-limit.timeInterval) else { continue }
            if let uploadID = record.uploadID {
                guard let client = clients[record.uploadName] else {
                    // Its upload is no longer configured: nothing here can reach its bucket; the row stays.
                    logger.warning("cannot abort an upload whose [uploads.NAME] is gone", metadata: [
                        "job.id": "\(record.jobID)", "upload.name": "\(record.uploadName)", "upload.key": "\(record.key)",
                    ])
                    continue
                }
                do {
                    try await retrying("AbortMultipartUpload \(record.key)") {
                        try await client.abortMultipartUpload(key: record.key, uploadID: uploadID)
                    }
                } catch {
                    throw failure(error, record)
                }
            }
            record.state = .aborted
            record.uploadID = nil
            record.parts = []
            record.bytesUploaded = 0
            record.updatedAt = now
            try await save([record])
            logger.notice("aborted an abandoned upload", metadata: [
                "job.id": "\(record.jobID)", "upload.name": "\(record.uploadName)", "upload.key": "\(record.key)",
            ])
            aborted.append(record)
        }
        return aborted
    }

    // MARK: One file

    private func send(_ record: UploadRecord, upload: UploadConfig, client: S3Client, digest: String?)
        async throws(TransferFailure) -> UploadRecord
    {
        var record = record
        let baseKey = record.key
        if record.sha256 == nil {
            if let digest {
                record.sha256 = digest
            } else {
                record.sha256 = try await StagingArea.digest(record.localPath, algorithm: .sha256)
            }
        }
        let checksum = upload.checksum.s3
        let metadata = ["sha256": record.sha256!]
        if record.size <= upload.partSize(forFileOf: record.size) {
            record.state = .uploading
            for attempt in 0... {
                do {
                    _ = try await retrying("PutObject \(record.key)") {
                        try await client.putObject(key: record.key, file: record.localPath, checksum: checksum,
                                                   metadata: metadata, storageClass: upload.storageClass,
                                                   ifNoneMatch: onConflict != .overwrite)
                    }
                    return try await finish(record, bytes: record.size)
                } catch let error as S3Error where error.code == "PreconditionFailed" {
                    if let resolved = try await resolveConflict(&record, baseKey: baseKey, client: client, attempt: attempt) { return resolved }
                } catch {
                    throw failure(error, record)
                }
            }
        }
        // Multipart: resume the recorded upload, or start one.
        if let uploadID = record.uploadID {
            do {
                let parts = try await retrying("ListParts \(record.key)") {
                    try await client.listParts(key: record.key, uploadID: uploadID)
                }
                // The store's list is the truth; a checksum it leaves out (some servers do) is the one recorded.
                let recorded = Dictionary(record.parts.map { ($0.number, $0) }, uniquingKeysWith: { $1 })
                record.parts = parts.map {
                    UploadRecord.Part(number: $0.number, etag: $0.etag, checksum: $0.checksum ?? recorded[$0.number]?.checksum,
                                      size: $0.size)
                }
                logger.info("resuming a multipart upload", metadata: [
                    "upload.key": "\(record.key)", "upload.parts_done": "\(parts.count)",
                ])
            } catch let error as S3Error where error.code == "NoSuchUpload" {
                record.uploadID = nil
                record.parts = []
            } catch {
                throw failure(error, record)
            }
        }
        if record.uploadID == nil {
            for attempt in 0... {
                // Multipart completion cannot be conditional everywhere: look for an object at the key first.
                let existing: S3ObjectInfo?
                do {
                    existing = try await retrying("HeadObject \(record.key)") { try await client.headObject(key: record.key) }
                } catch {
                    throw failure(error, record)
                }
                guard existing != nil, onConflict != .overwrite else { break }
                if let resolved = try await resolveConflict(&record, baseKey: baseKey, client: client, attempt: attempt,
                                                           known: existing) {
                    return resolved
                }
            }
            let partSize = upload.partSize(forFileOf: record.size)
            do {
                record.uploadID = try await retrying("CreateMultipartUpload \(record.key)") {
                    try await client.createMultipartUpload(key: record.key, checksum: checksum, metadata: metadata,
                                                           storageClass: upload.storageClass)
                }
            } catch {
                throw failure(error, record)
            }
            record.partSize = partSize
            record.parts = []
        }
        record.state = .uploading
        record.updatedAt = Date()
        try await save([record])
        let partSize = record.partSize ?? upload.partSize(forFileOf: record.size)
        let count = Int((record.size + partSize - 1) / partSize)
        let done = Set(record.parts.map(\.number))
        let missing = (1...max(1, count)).filter { !done.contains($0) }
        let progress = PartProgress(record)
        let (key, uploadID, localPath) = (record.key, record.uploadID!, record.localPath)
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                var next = missing.makeIterator()
                func start() {
                    guard let number = next.next() else { return }
                    let offset = Int64(number - 1) * partSize
                    let length = min(partSize, record.size - offset)
                    group.addTask { [self] in
                        let part = try await retrying("UploadPart \(number) of \(key)") {
                            try await client.uploadPart(key: key, uploadID: uploadID, number: number, file: localPath,
                                                        offset: offset, length: length, checksum: checksum)
                        }
                        try await save([progress.add(UploadRecord.Part(number: part.number, etag: part.etag,
                                                                       checksum: part.checksum, size: length))])
                    }
                }
                for _ in 0..<upload.concurrency { start() }
                while try await group.next() != nil { start() }
            }
            record = progress.record
            let parts = record.parts.sorted { $0.number < $1.number }.map {
                S3Part(number: $0.number, etag: $0.etag, checksum: $0.checksum, size: $0.size)
            }
            _ = try await retrying("CompleteMultipartUpload \(record.key)") {
                try await client.completeMultipartUpload(key: record.key, uploadID: record.uploadID!, parts: parts,
                                                         ifNoneMatch: false)
            }
        } catch let error as TransferFailure {
            throw error
        } catch {
            throw failure(error, progress.record)
        }
        return try await finish(record, bytes: record.size)
    }

    /// An object is at the key already: identical content (by its `sha256` metadata) completes the upload as a
    /// skip; otherwise `on_conflict` decides (`rename` moves to the next numbered key and returns `nil` to try it).
    private func resolveConflict(_ record: inout UploadRecord, baseKey: String, client: S3Client, attempt: Int,
                                 known: S3ObjectInfo? = nil) async throws(TransferFailure) -> UploadRecord? {
        let current = record
        let existing: S3ObjectInfo?
        do {
            if let known {
                existing = known
            } else {
                existing = try await retrying("HeadObject \(current.key)") { try await client.headObject(key: current.key) }
            }
        } catch {
            throw failure(error, record)
        }
        if let existing, existing.metadata["sha256"] == record.sha256, existing.size == record.size {
            record.state = .skipped
            return try await finish(record, bytes: 0)
        }
        switch onConflict {
        case .fail:
            throw TransferFailure(.nameConflict, "s3://\(record.bucket)/\(record.key) already exists with different content (on_conflict = \"fail\")")
        case .rename where attempt < 10_000:
            record.key = Self.numbered(baseKey, attempt + 1)
            return nil
        case .rename, .overwrite:
            // Overwrite never sends a condition; a rename out of numbers ends here.
            throw TransferFailure(.nameConflict, "s3://\(record.bucket)/\(record.key) and 10,000 numbered variants exist")
        }
    }

    /// `key` with `.N` before its extension, as placement names local files.
    static func numbered(_ key: String, _ number: Int) -> String {
        let folder = String(key.dropLast((key as NSString).lastPathComponent.count))
        let name = (key as NSString).lastPathComponent
        let ext = (name as NSString).pathExtension
        let stem = ext.isEmpty ? name : (name as NSString).deletingPathExtension
        return folder + (ext.isEmpty ? "\(stem).\(number)" : "\(stem).\(number).\(ext)")
    }

    private func finish(_ record: UploadRecord, bytes: Int64) async throws(TransferFailure) -> UploadRecord {
        var record = record
        if record.state != .skipped { record.state = .completed }
        record.bytesUploaded = bytes
        record.errorClass = nil
        record.errorMessage = nil
        record.updatedAt = Date()
        try await save([record])
        return record
    }

    // MARK: Errors, retries, the store

    /// Runs a request again after each of ``retryDelays`` while it fails transiently.
    private func retrying<T: Sendable>(_ what: String, _ request: () async throws -> T) async throws -> T {
        var delays = retryDelays.makeIterator()
        while true {
            do {
                return try await request()
            } catch let error as S3Error where error.isTransient {
                guard let delay = delays.next() else { throw error }
                logger.info("object store request failed; repeating it", metadata: ["upload.request": "\(what)", "error": "\(error)"])
                try await Task.sleep(for: delay)
            }
        }
    }

    private func failure(_ error: any Error, _ record: UploadRecord) -> TransferFailure {
        if let failure = error as? TransferFailure { return failure }
        let target = "s3://\(record.bucket)/\(record.key)"
        guard let error = error as? S3Error else {
            if error is CancellationError { return TransferFailure(.uploadFailed, "the upload of \(target) was cancelled") }
            return TransferFailure(.uploadFailed, "the upload of \(target) failed: \(error)")
        }
        if error.isTransient { return TransferFailure(.uploadFailed, "the upload of \(target) failed: \(error)") }
        if error.status == 403 { return TransferFailure(.uploadDenied, "the object store denied the upload of \(target): \(error)") }
        return TransferFailure(.uploadRejected, "the object store refused the upload of \(target): \(error)")
    }

    private func save(_ records: [UploadRecord]) async throws(TransferFailure) {
        try await storeCall { () throws(StoreError) in try await store.saveUploads(records) }
    }

    private func storeCall<T>(_ work: () async throws(StoreError) -> T) async throws(TransferFailure) -> T {
        do {
            return try await work()
        } catch {
            throw TransferFailure(.storeFailed, "the store cannot record the upload: \(error)")
        }
    }
}

/// The parts of one multipart upload as they are acknowledged, from concurrent part uploads. Saves of its snapshots
/// may land out of order (a row may briefly miss a part): the row is a hint, the object store's ListParts is what a
/// resumed upload trusts.
private final class PartProgress: Sendable {
    private let state: Mutex<UploadRecord>

    init(_ record: UploadRecord) { state = Mutex(record) }

    var record: UploadRecord { state.withLock { $0 } }

    /// Adds an acknowledged part; returns the record to save.
    func add(_ part: UploadRecord.Part) -> UploadRecord {
        state.withLock { record in
            record.parts.removeAll { $0.number == part.number }
            record.parts.append(part)
            record.bytesUploaded = record.parts.reduce(0) { $0 + $1.size }
            record.updatedAt = Date()
            return record
        }
    }
}

extension UploadConfig {
    /// Where the bucket is, for the S3 client.
    var location: S3Location { S3Location(endpoint: endpoint, region: region, bucket: bucket, pathStyle: pathStyle) }

    /// The credentials, for the S3 client only.
    var credentials: S3Credentials {
        S3Credentials(accessKeyID: accessKeyID.revealed, secretAccessKey: secretAccessKey.revealed,
                      sessionToken: sessionToken?.revealed)
    }
}

extension UploadConfig.ChecksumKind {
    var s3: S3ChecksumAlgorithm {
        switch self {
        case .sha256: .sha256
        case .crc32c: .crc32c
        case .none: .none
        }
    }
}

/// Aborts abandoned multipart uploads (``UploadStage/abortAbandoned(jobID:olderThan:now:)``) when the consumer
/// starts and every `interval` after, until shutdown.
public struct UploadJanitor: Service {
    private let stage: UploadStage
    private let interval: Duration
    private let logger: Logger

    /// A janitor over `stage`'s uploads.
    public init(stage: UploadStage, interval: Duration = .seconds(3600), logger: Logger) {
        self.stage = stage
        self.interval = interval
        self.logger = logger
    }

    public func run() async {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    _ = try await stage.abortAbandoned()
                } catch {
                    logger.warning("could not abort abandoned uploads", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: interval)
            }
        }
    }
}
