import AsyncAlgorithms
import AsyncSupport
import Foundation
import HTTPTypes
import Hummingbird
import KafkaClient
import KafkaSyncCore
import Logging
import NIOCore
import TransferStore

/// The routes (docs/openapi.yaml), over the store, the pipeline's readiness and live events, and Kafka. Each
/// answer is a `Codable` response type of Responses.swift.
struct DashboardRoutes: Sendable {
    /// The most running transfers (and unfinished uploads) `/api/status` lists.
    static let runningLimit = 200
    /// The most pending jobs `/api/queue` lists.
    static let queueListLimit = 50
    /// The largest page of `/api/transfers`.
    static let pageLimit = 500
    /// How often an idle event stream sends a comment, so proxies and browsers keep it open.
    static let keepAlive: Duration = .seconds(15)

    let store: any TransferStore
    /// The pipeline's partitions; nil without a pipeline (`kafkasync dashboard`), where the store alone is readiness.
    let readiness: ConsumerReadiness?
    let live: LiveEvents
    let kafka: DashboardKafka?
    let completes: String?
    let storeTimeout: Duration
    let logger: Logger

    /// The router: health, metrics and the page at the root, the API under `/api`. With a token, every `/api` route
    /// needs it; the mutating ones need it always (``DashboardServer/Configuration/token``).
    func router(_ configuration: DashboardServer.Configuration, metrics: @escaping @Sendable () -> String)
        -> Router<DashboardRequestContext>
    {
        let router = Router(context: DashboardRequestContext.self)
        router.add(middleware: LogPathsMiddleware())
        router.add(middleware: RequestLimitsMiddleware(maxBodySize: configuration.maxBodySize))
        router.get("healthz") { _, _ in HealthResponse(status: "alive") }
        router.get("readyz") { _, _ in await ready() }
        router.get("metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: metrics())))
        }
        for asset in DashboardAssets.all {
            router.get(RouterPath(asset.path)) { _, _ in asset.response }
        }
        let api = router.group("api").add(middleware: BearerTokenMiddleware(
            token: configuration.token ?? configuration.writeToken, readsOpen: configuration.token == nil))
        api.get("status") { _, _ in try await status() }
        api.get("activity") { request, _ in try await activity(request.uri.queryParameters) }
        api.get("transfers") { request, _ in try await transfers(request.uri.queryParameters) }
        api.get("transfers/:jobID") { _, context in try await transfer(context.parameters.require("jobID")) }
        api.get("events") { request, _ in events(request) }
        api.get("queue") { _, _ in try await queue() }
        api.get("dlq") { _, _ in try await deadLetters() }
        api.post("dlq/replay") { request, context in
            try await replay(try await request.decode(as: ReplayRequest.self, context: context))
        }
        api.post("jobs") { request, _ in
            EditedResponse(status: .accepted, response: try await publish(try await request.body.collect(upTo: configuration.maxBodySize)))
        }
        return router
    }

    /// 200 when the consumer holds partitions and the store answers, else 503; the body says which part is not.
    func ready() async -> EditedResponse<ReadinessResponse> {
        let partitions = readiness?.partitions.count ?? 0
        let storeAnswers = (try? await fromStore { try await store.statusCounts(since: Date()) }) != nil
        let body = ReadinessResponse(ready: (partitions > 0 || readiness == nil) && storeAnswers, partitions: partitions,
                                     store: storeAnswers ? "ok" : "unavailable")
        return EditedResponse(status: body.ready ? .ok : .serviceUnavailable, response: body)
    }

    /// The counts per status over the whole history, the running transfers (newest first) and the uploads not
    /// finished yet.
    func status() async throws -> StatusResponse {
        let (counts, running, uploads) = try await fromStore {
            (try await store.statusCounts(since: nil),
             try await store.records(matching: TransferQuery(statuses: [.running], limit: Self.runningLimit)),
             try await store.uploads(matching: UploadQuery(states: [.pending, .uploading], limit: Self.runningLimit)))
        }
        let now = Date()
        return StatusResponse(
            counts: Dictionary(uniqueKeysWithValues: TransferStatus.allCases.map { ($0.rawValue, counts[$0] ?? 0) }),
            running: running.map { RunningTransfer($0, now: now) },
            uploads: uploads.map { RunningUpload($0, now: now) })
    }

    /// Completions per minute over the last `minutes` (default 60), every minute present.
    func activity(_ query: Parameters) async throws -> ActivityResponse {
        let minutes = try query.integer("minutes", in: 1...1440) ?? 60
        let now = Date()
        let first = (Int64(now.timeIntervalSince1970) / 60 - Int64(minutes - 1)) * 60
        let buckets = try await fromStore {
            try await store.activity(since: Date(timeIntervalSince1970: Double(first)), bucket: .seconds(60))
        }
        var byMinute: [Int64: ActivityBucket] = [:]
        for bucket in buckets { byMinute[Int64(bucket.start.timeIntervalSince1970.rounded())] = bucket }
        return ActivityResponse(bucketSeconds: 60, buckets: (0..<Int64(minutes)).map { index in
            let start = first + index * 60
            return ActivityResponse.Bucket(start: Date(timeIntervalSince1970: Double(start)),
                                           files: byMinute[start]?.files ?? 0, bytes: byMinute[start]?.bytes ?? 0)
        })
    }

    /// A page of the history, newest first.
    func transfers(_ query: Parameters) async throws -> TransferPage {
        var statuses: Set<TransferStatus> = []
        for value in query.getAll("status") {
            for text in value.split(separator: ",") {
                guard let status = TransferStatus(rawValue: String(text)) else {
                    throw BadRequest(reason: "invalid_status", message: """
                        status must be one of \(TransferStatus.allCases.map(\.rawValue).joined(separator: ", ")), not "\(text.prefix(40))"
                        """)
                }
                statuses.insert(status)
            }
        }
        var since: Date?
        if let text = query.get("since") {
            guard let date = try? Date(text, strategy: .iso8601) else {
                throw BadRequest(reason: "invalid_since", message: "since must be an ISO 8601 time like 2026-12-01T00:00:00Z")
            }
            since = date
        }
        let name = query.get("name")
        if let name, name.count > 256 { throw BadRequest(reason: "invalid_name", message: "name is longer than 256 characters") }
        let limit = try query.integer("limit", in: 1...Self.pageLimit) ?? 50
        var after: TransferCursor?
        if let token = query.get("cursor") {
            guard let cursor = TransferCursor(token: token) else {
                throw BadRequest(reason: "invalid_cursor", message: "cursor is not a next_cursor this API gave")
            }
            after = cursor
        }
        // One more than asked tells whether a next page exists.
        let wanted = TransferQuery(statuses: statuses, since: since, nameContains: name, limit: limit + 1, after: after)
        let records = try await fromStore { try await store.records(matching: wanted) }
        let page = Array(records.prefix(limit))
        return TransferPage(transfers: page.map(TransferSummary.init),
                            nextCursor: records.count > limit ? page.last.map { TransferCursor(after: $0).token } : nil)
    }

    /// A transfer's lineage: where it came from, every attempt, where it landed.
    func transfer(_ jobID: String) async throws -> TransferDetail {
        let found = try await fromStore { () async throws -> (TransferRecord?, [TransferAttempt], [UploadRecord]) in
            (try await store.record(jobID: jobID), try await store.attempts(jobID: jobID), try await store.uploads(jobID: jobID))
        }
        guard let record = found.0 else { throw HTTPError(.notFound, message: "no transfer has job id \(jobID.prefix(200))") }
        var finalPath: String?
        if let completes, record.status == .completed || record.status == .skippedDuplicate {
            finalPath = URL(fileURLWithPath: completes).appendingPathComponent(record.destination ?? "")
                .appendingPathComponent(record.name).path
        }
        var kafka: TransferDetail.KafkaPosition?
        if let topic = record.kafkaTopic, let partition = record.kafkaPartition, let offset = record.kafkaOffset {
            kafka = .init(topic: topic, partition: partition, offset: offset)
        }
        return TransferDetail(
            transfer: TransferSummary(record), infoHash: record.infoHash, checksum: record.checksum, finalPath: finalPath,
            workerHost: record.workerHost, engine: record.engine, kafka: kafka,
            attempts: found.1.map { attempt in
                .init(attempt: attempt.attempt, outcome: attempt.outcome.rawValue, startedAt: attempt.startedAt,
                      finishedAt: attempt.finishedAt, workerHost: attempt.workerHost, errorClass: attempt.errorClass,
                      errorMessage: attempt.errorMessage)
            },
            uploads: found.2.isEmpty ? nil : found.2.map(TransferDetail.Upload.init))
    }

    /// The live events as Server-Sent Events, from `Last-Event-ID` when given.
    func events(_ request: Request) -> Response {
        let lastEventID = request.headers[HTTPField.Name("Last-Event-ID")!].flatMap { Int($0) }
        let (subscriber, cancel) = live.subscribe(after: lastEventID)
        let body = ResponseBody { writer in
            defer { cancel() }
            try await writer.write(ByteBuffer(string: "retry: 2000\n\n"))
            let wakeups = subscriber.wakeups.map { StreamItem.events }
            let ticks = AsyncTimerSequence(interval: Self.keepAlive, clock: .continuous).map { _ in StreamItem.keepAlive }
            // Ends when the client goes, when it fell behind (it reconnects with Last-Event-ID), or when the server
            // shuts down gracefully.
            loop: for await item in merge(wakeups, ticks).cancelOnGracefulShutdown() {
                switch item {
                case .events:
                    let (entries, ended) = subscriber.take()
                    if !entries.isEmpty { try await writer.write(ByteBuffer(string: entries.map(\.text).joined())) }
                    if ended { break loop }
                    // What is told meanwhile goes in the next write.
                    try await Task.sleep(for: LiveEvents.batchInterval)
                case .keepAlive: try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                }
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }

    /// What wakes the event stream: events to write, or the time for a keep-alive comment.
    private enum StreamItem: Sendable {
        case events
        case keepAlive
    }

    /// What waits: per partition of the jobs topic, the records after the group's committed offset (Kafka's lag:
    /// it also counts jobs done behind one still running in the same partition, which commit together), the next
    /// jobs not started yet (those the store has no row for), and retries held until their time.
    func queue() async throws -> QueueResponse {
        let kafka = try requireKafka()
        let partitions = try await fromKafka { try await kafka.positions(of: kafka.topics.jobs) }
        let upcoming = try await fromKafka { try await kafka.nextJobs(partitions, limit: Self.queueListLimit) }
        // Received ones (running, or done and waiting for the commit) are not next.
        let known = try await fromStore {
            var known = Set<String>()
            for id in upcoming.compactMap(\.jobID) where try await store.record(jobID: id) != nil { known.insert(id) }
            return known
        }
        let next = upcoming.filter { $0.jobID.map { !known.contains($0) } ?? true }.prefix(Self.queueListLimit)
        return QueueResponse(pending: partitions.reduce(0) { $0 + $1.pending }, partitions: partitions, next: Array(next),
                             retries: live.retries)
    }

    /// The dead-letter topic's records, with counts per reason.
    func deadLetters() async throws -> DeadLettersResponse {
        let kafka = try requireKafka()
        let letters = try await fromKafka { try await kafka.deadLetters() }
        return DeadLettersResponse(topic: kafka.topics.deadLetter, deadLetters: letters.map(DeadLetterSummary.init),
                                   reasons: letters.reduce(into: [:]) { $0[$1.reason, default: 0] += 1 })
    }

    /// Publishes the chosen dead letters to the jobs topic again.
    func replay(_ request: ReplayRequest) async throws -> ReplayResponse {
        let all = request.all ?? false
        guard all != !(request.ids ?? []).isEmpty else {
            throw BadRequest(reason: "invalid_replay", message: #"give "ids": [...] or "all": true (with an optional "reason")"#)
        }
        let kafka = try requireKafka()
        let letters = try await fromKafka { try await kafka.deadLetters() }
        let (chosen, unknown) = all ? (letters.filter { request.reason == nil || $0.reason == request.reason }, [])
            : DeadLetter.select(letters, ids: request.ids ?? [])
        var replayed: [ReplayResponse.Replayed] = []
        for letter in chosen {
            let report = try await fromKafka { try await letter.replay(through: kafka.producer, to: kafka.topics.jobs) }
            replayed.append(.init(position: letter.position, jobID: letter.jobID, partition: report.partition,
                                  offset: report.offset))
        }
        logger.notice("dead letters replayed from the HTTP API", metadata: ["dlq.replayed": "\(replayed.count)"])
        return ReplayResponse(replayed: replayed, unknown: unknown)
    }

    /// Publishes a job sent as the wire format, validated as every job is.
    func publish(_ body: ByteBuffer) async throws -> PublishedResponse {
        let job: TransferJob
        do {
            job = try TransferJob.decode(Array(buffer: body))
        } catch {
            throw BadRequest(reason: error.reason.code, message: error.message)
        }
        let kafka = try requireKafka()
        let report = try await fromKafka { try await kafka.publish(job) }
        logger.info("job published from the HTTP API", metadata: ["job.id": "\(job.id)", "job.name": "\(job.name)"])
        return PublishedResponse(jobID: job.id, topic: report.topic, partition: report.partition, offset: report.offset)
    }

    private func requireKafka() throws -> DashboardKafka {
        guard let kafka else { throw HTTPError(.serviceUnavailable, message: "this server has no Kafka connection") }
        return kafka
    }

    /// Runs a store read within ``storeTimeout``.
    /// - Throws: `HTTPError` 503 when the store fails or does not answer in time; the store's error is logged,
    ///   never put in the response.
    private func fromStore<T: Sendable>(_ read: @escaping @Sendable () async throws -> T) async throws -> T {
        do {
            return try await withTimeout(storeTimeout, "the store", read)
        } catch {
            logger.warning("the store did not answer the HTTP API", metadata: ["error": "\(error)"])
            throw HTTPError(.serviceUnavailable, message: "the transfer store is not available")
        }
    }

    /// Runs a Kafka request within 10 s; a failure is a 503 naming what failed (Kafka's errors carry no secrets).
    private func fromKafka<T: Sendable>(_ request: @escaping @Sendable () async throws -> T) async throws -> T {
        do {
            return try await withTimeout(.seconds(10), "Kafka", request)
        } catch {
            logger.warning("Kafka did not answer the HTTP API", metadata: ["error": "\(error)"])
            throw HTTPError(.serviceUnavailable, message: "Kafka is not available: \(error)")
        }
    }
}

extension Parameters {
    /// An integer query parameter within `range`, or nil when absent.
    /// - Throws: ``BadRequest`` naming the parameter, the value and the range.
    func integer(_ name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let text = get(name) else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw BadRequest(reason: "invalid_\(name)", message: "\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound), not \"\(text.prefix(40))\"")
        }
        return value
    }
}
