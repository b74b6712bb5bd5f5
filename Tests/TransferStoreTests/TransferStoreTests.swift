import Foundation
import Logging
import TestSupport
import Testing
@testable import TransferStore

/// One suite, run against SQLite and a real PostgreSQL server.
@Suite(.timeLimit(.minutes(3))) struct TransferStoreTests {
    let logger = KafkaFixtures.logger("kafkasync.test.store")
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    /// Runs `body` against a fresh, migrated store of `kind`.
    func withFreshStore(_ kind: StoreBackendKind,
                        _ body: @Sendable (any TransferStore, StoreLocation) async throws -> Void) async throws {
        let (location, remove) = try await StoreFixtures.freshLocation(kind)
        defer { remove() }
        try await withTransferStore(location, logger: logger) { store in try await body(store, location) }
    }

    func record(_ id: String, _ status: TransferStatus = .queued, name: String? = nil, at time: Date) -> TransferRecord {
        TransferRecord(jobID: id, name: name ?? "\(id).bin", remote: "remoteDetails", remotePath: "/data/\(id).bin",
                       status: status, receivedAt: time)
    }

    @Test(arguments: StoreBackendKind.allCases)
    func migrationsApplyFromEmptyOnceEvenWhenStoresStartTogether(_ kind: StoreBackendKind) async throws {
        let (location, remove) = try await StoreFixtures.freshLocation(kind)
        defer { remove() }
        // Four stores start at once on an empty database.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<4 {
                group.addTask {
                    try await withTransferStore(location, logger: logger) { store in
                        try await store.save(record("start-\(index)", at: t0))
                    }
                }
            }
            try await group.waitForAll()
        }
        let count = try await withTransferStore(location, logger: logger) { store in
            try await store.records(matching: TransferQuery()).count
        }
        #expect(count == 4)
    }

    @Test(arguments: StoreBackendKind.allCases)
    func aRecordRoundTripsWithEveryField(_ kind: StoreBackendKind) async throws {
        try await withFreshStore(kind) { store, location in
            #expect(try await store.record(jobID: "nope") == nil)
            let full = TransferRecord(
                jobID: "abc123", infoHash: "abc123", name: "Film (2024) – ünïcode.mkv", remote: "backup",
                remotePath: "/in/Film (2024) – ünïcode.mkv", destination: "films", kind: .file, status: .completed,
                attempts: 2, bytesExpected: 5_000_000_000, bytesTransferred: 5_000_000_000,
                checksum: "sha256:" + String(repeating: "ab", count: 32), errorClass: "timed_out",
                errorMessage: "first attempt timed out", workerHost: "worker-7", kafkaTopic: "kafkasync-files",
                kafkaPartition: 3, kafkaOffset: 123_456_789_012, receivedAt: t0, startedAt: t0.addingTimeInterval(1.5),
                finishedAt: t0.addingTimeInterval(51.5), updatedAt: t0.addingTimeInterval(51.5), engine: "lftp")
            try await store.save(full)
            let loaded = try await store.record(jobID: "abc123")
            #expect(loaded == full)
            if case .sqlite(let path) = location {
                #expect(FileManager.default.fileExists(atPath: path + "-wal"), "SQLite runs in WAL mode")
            }
            #expect(loaded?.duration == 50)
            #expect(loaded?.averageRate == 100_000_000)
        }
    }

    @Test(arguments: StoreBackendKind.allCases)
    func uploadRowsRoundTripAndAreFoundByJobAndByStateAndAge(_ kind: StoreBackendKind) async throws {
        try await withFreshStore(kind) { store, _ in
            let parts = [UploadRecord.Part(number: 1, etag: "\"e1\"", checksum: "c2hhMjU2", size: 5 << 20),
                         UploadRecord.Part(number: 2, etag: "\"e2\"", checksum: nil, size: 1234)]
            let open = UploadRecord(jobID: "job-1", file: "sub/ünï code.bin", localPath: "/data/completes/x/sub/ünï code.bin",
                                    uploadName: "archive", bucket: "b", key: "in/x/sub/ünï code.bin", uploadID: "upload-1",
                                    state: .uploading, size: (5 << 20) + 1234, bytesUploaded: 5 << 20, partSize: 5 << 20,
                                    parts: parts, sha256: String(repeating: "ab", count: 32), errorClass: "upload_failed",
                                    errorMessage: "503", createdAt: t0, updatedAt: t0.addingTimeInterval(10))
            var done = open
            done.file = ""
            done.state = .completed
            done.updatedAt = t0.addingTimeInterval(100)
            var other = done
            other.jobID = "job-2"
            try await store.saveUploads([open, done, other])
            #expect(try await store.uploads(jobID: "job-1") == [done, open], "by file")
            var moved = open
            moved.parts.append(.init(number: 3, etag: "\"e3\"", checksum: nil, size: 1))
            try await store.saveUploads([moved])
            #expect(try await store.uploads(jobID: "job-1").last == moved, "a save replaces the row")
            let stale = try await store.uploads(matching: UploadQuery(states: [.uploading, .pending],
                                                                      updatedBefore: t0.addingTimeInterval(50)))
            #expect(stale == [moved])
            #expect(try await store.uploads(matching: UploadQuery(limit: 2)).count == 2)
        }
    }

    @Test(arguments: StoreBackendKind.allCases)
    func everyStatusTransitionIsRecorded(_ kind: StoreBackendKind) async throws {
        try await withFreshStore(kind) { store, _ in
            var job = record("job-1", at: t0)
            job.bytesExpected = 1000
            try await store.save(job)
            #expect(try await store.record(jobID: "job-1")?.status == .queued)

            // Progress is ignored unless the transfer runs.
            try await store.updateProgress(jobID: "job-1", bytesTransferred: 10, bytesExpected: nil, at: t0)
            #expect(try await store.record(jobID: "job-1")?.bytesTransferred == 0)

            job.status = .running
            job.attempts = 1
            job.startedAt = t0.addingTimeInterval(1)
            try await store.save(job)
            try await store.updateProgress(jobID: "job-1", bytesTransferred: 400, bytesExpected: nil, at: t0.addingTimeInterval(2))
            #expect(try await store.record(jobID: "job-1")?.bytesExpected == 1000, "no size from progress keeps the known one")
            try await store.updateProgress(jobID: "job-1", bytesTransferred: 300, bytesExpected: 1200, at: t0.addingTimeInterval(3))
            let running = try await store.record(jobID: "job-1")
            #expect(running?.bytesTransferred == 400, "progress never goes backwards")
            #expect(running?.bytesExpected == 1000, "nor does a stale report set the size")
            try await store.updateProgress(jobID: "job-1", bytesTransferred: 500, bytesExpected: 1200, at: t0.addingTimeInterval(4))
            #expect(try await store.record(jobID: "job-1")?.bytesExpected == 1200, "the size the transfer learned")
            #expect(running?.updatedAt == t0.addingTimeInterval(2))
            job.bytesExpected = 1200

            job.status = .retrying
            job.bytesTransferred = 400
            job.errorClass = "connection_lost"
            job.errorMessage = "connection lost"
            try await store.save(job)
            #expect(try await store.record(jobID: "job-1")?.status == .retrying)

            job.status = .running
            job.attempts = 2
            try await store.save(job)
            job.status = .completed
            job.bytesTransferred = 1000
            job.finishedAt = t0.addingTimeInterval(10)
            try await store.save(job)
            try await store.updateProgress(jobID: "job-1", bytesTransferred: 5, bytesExpected: 5, at: t0.addingTimeInterval(11))
            let done = try await store.record(jobID: "job-1")
            #expect(done?.status == .completed)
            #expect(done?.attempts == 2)
            #expect(done?.bytesTransferred == 1000, "a finished record is not touched by late progress")

            for status in [TransferStatus.failed, .deadLettered, .skippedDuplicate] {
                try await store.save(record("job-\(status.rawValue)", status, at: t0))
                #expect(try await store.record(jobID: "job-\(status.rawValue)")?.status == status)
            }
            #expect(try await store.records(matching: TransferQuery()).count == 4, "one row per job id")
        }
    }

    @Test(arguments: StoreBackendKind.allCases)
    func savesThatArriveTogetherShareAWrite(_ kind: StoreBackendKind) async throws {
        try await withFreshStore(kind) { store, _ in
            let saves = try #require(store as? SQLTransferStore).saves
            let before = saves.writeCount
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<300 { group.addTask { try await store.save(record("together-\(index)", .running, at: t0)) } }
                try await group.waitForAll()
            }
            let writes = saves.writeCount - before
            #expect(writes < 300 && writes >= 300 / saves.batchLimit, "\(writes) writes for 300 saves")
            let all = try await store.records(matching: TransferQuery(limit: 1000))
            #expect(Set(all.map(\.jobID)) == Set((0..<300).map { "together-\($0)" }))
        }
    }

    @Test func aBatchWithTheSameJobTwiceWritesTheLaterRecord() {
        let running = record("twice", .running, at: t0), other = record("other", at: t0)
        var completed = running
        completed.status = .completed
        let statement = TransferSQL.upsert([running, other, completed])
        let rows = statement.arguments.count / TransferSQL.columns.count
        #expect(rows == 2, "a row may not be upserted twice in one statement (PostgreSQL refuses)")
        #expect(statement.arguments.contains(.text("completed")) && !statement.arguments.contains(.text("running")))
        #expect(statement.arguments.firstIndex(of: .text("other"))! < statement.arguments.firstIndex(of: .text("twice"))!,
                "the later save's place in the order")
    }

    @Test(arguments: StoreBackendKind.allCases)
    func concurrentWritersInTasksAndProcessesLoseAndDuplicateNothing(_ kind: StoreBackendKind) async throws {
        try await withFreshStore(kind) { store, location in
            let writer = try builtExecutable("StoreWriter")
            let url = StoreFixtures.url(of: location)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for process in 0..<3 {
                    group.addTask {
                        let result = try await runProcess(writer, [url, "process\(process)", "100"])
                        #expect(result.status == 0, "\(result.stderr)")
                    }
                }
                for task in 0..<4 {
                    group.addTask {
                        for index in 0..<100 {
                            try await store.save(record("task\(task)-\(index)", .running, at: t0))
                            try await store.save(TransferRecord(
                                jobID: "shared-\(index)", name: "shared-\(index)", remote: "remoteDetails",
                                remotePath: "/data/shared-\(index)", status: .completed, attempts: 1,
                                bytesTransferred: Int64(index), receivedAt: t0, startedAt: t0, finishedAt: t0))
                        }
                    }
                }
                try await group.waitForAll()
            }
            let all = try await store.records(matching: TransferQuery(limit: 10_000))
            let expected = 300 + 400 + 100  // per process, per task, and the ids everybody writes
            #expect(all.count == expected, "every distinct job id once")
            #expect(Set(all.map(\.jobID)).count == all.count)
            let shared = all.filter { $0.jobID.hasPrefix("shared-") }
            #expect(shared.allSatisfy { $0.status == .completed && $0.bytesTransferred == Int64($0.jobID.dropFirst(7))! })
        }
    }

    @Test(arguments: StoreBackendKind.allCases)
    func listingFiltersByStatusTimeNameAndPages(_ kind: StoreBackendKind) async throws {
        try await withFreshStore(kind) { store, _ in
            try await store.save(record("a", .completed, name: "Holiday_Video.MKV", at: t0))
            try await store.save(record("b", .failed, name: "holiday%notes.txt", at: t0.addingTimeInterval(60)))
            try await store.save(record("c", .running, name: "report.pdf", at: t0.addingTimeInterval(120)))
            try await store.save(record("d", .completed, name: "holidayXvideo.mkv", at: t0.addingTimeInterval(180)))

            func ids(_ query: TransferQuery) async throws -> [String] {
                try await store.records(matching: query).map(\.jobID)
            }
            #expect(try await ids(TransferQuery()) == ["d", "c", "b", "a"], "newest first")
            #expect(try await ids(TransferQuery(statuses: [.completed])) == ["d", "a"])
            #expect(try await ids(TransferQuery(statuses: [.failed, .running])) == ["c", "b"])
            #expect(try await ids(TransferQuery(since: t0.addingTimeInterval(60))) == ["d", "c", "b"])
            #expect(try await ids(TransferQuery(until: t0.addingTimeInterval(60))) == ["a"])
            #expect(try await ids(TransferQuery(nameContains: "HOLIDAY")) == ["d", "b", "a"], "case-insensitive")
            #expect(try await ids(TransferQuery(nameContains: "holiday_")) == ["a"], "_ is literal, not a wildcard")
            #expect(try await ids(TransferQuery(nameContains: "y%n")) == ["b"], "% is literal, not a wildcard")
            #expect(try await ids(TransferQuery(limit: 2)) == ["d", "c"])
            #expect(try await ids(TransferQuery(limit: 2, offset: 2)) == ["b", "a"])
            #expect(try await ids(TransferQuery(limit: 2, offset: 4)) == [])
        }
    }

    @Test(arguments: StoreBackendKind.allCases)
    func keysetPagesStayStableWhileNewerTransfersArrive(_ kind: StoreBackendKind) async throws {
        try await withFreshStore(kind) { store, _ in
            // Two transfers received in the same millisecond: the job id breaks the tie.
            for (id, seconds) in [("a", 0.0), ("b", 60), ("c", 60), ("d", 120), ("e", 180)] {
                try await store.save(record(id, .completed, at: t0.addingTimeInterval(seconds)))
            }
            let first = try await store.records(matching: TransferQuery(limit: 2))
            #expect(first.map(\.jobID) == ["e", "d"])
            // A newer transfer arrives between two pages: the next page does not repeat or skip anything.
            try await store.save(record("f", .running, at: t0.addingTimeInterval(240)))
            let cursor = try #require(TransferCursor(token: TransferCursor(after: first[1]).token))
            #expect(cursor == TransferCursor(after: first[1]), "the token round-trips")
            let second = try await store.records(matching: TransferQuery(limit: 2, after: cursor))
            #expect(second.map(\.jobID) == ["b", "c"])
            let third = try await store.records(matching: TransferQuery(limit: 2, after: TransferCursor(after: second[1])))
            #expect(third.map(\.jobID) == ["a"])
            #expect(TransferCursor(token: "not a cursor!") == nil)
            #expect(TransferCursor(token: "") == nil)
        }
    }

    @Test(arguments: StoreBackendKind.allCases)
    func everyAttemptIsKeptWithHowItEnded(_ kind: StoreBackendKind) async throws {
        try await withFreshStore(kind) { store, _ in
            var job = record("retried", .running, at: t0)
            job.attempts = 1
            job.startedAt = t0
            try await store.save(job)
            #expect(try await store.attempts(jobID: "retried") == [TransferAttempt(attempt: 1, outcome: .running, startedAt: t0, workerHost: job.workerHost)])
            job.status = .retrying
            job.errorClass = "timed_out"
            job.errorMessage = "the server stopped answering"
            job.updatedAt = t0.addingTimeInterval(5)
            try await store.save(job)
            job.attempts = 2
            job.status = .completed
            job.startedAt = t0.addingTimeInterval(30)
            job.finishedAt = t0.addingTimeInterval(31)
            job.errorClass = nil
            job.errorMessage = nil
            try await store.save(job)
            #expect(try await store.attempts(jobID: "retried") == [
                TransferAttempt(attempt: 1, outcome: .retrying, startedAt: t0, finishedAt: t0.addingTimeInterval(5),
                                workerHost: job.workerHost, errorClass: "timed_out", errorMessage: "the server stopped answering"),
                TransferAttempt(attempt: 2, outcome: .completed, startedAt: t0.addingTimeInterval(30),
                                finishedAt: t0.addingTimeInterval(31), workerHost: job.workerHost),
            ])
            try await store.save(record("queued-only", .queued, at: t0))
            #expect(try await store.attempts(jobID: "queued-only").isEmpty, "a job that never started has no attempt")
            #expect(try await store.attempts(jobID: "unknown").isEmpty)
        }
    }

    @Test(arguments: StoreBackendKind.allCases)
    func aggregatesOverThousandsOfRows(_ kind: StoreBackendKind) async throws {
        try await withFreshStore(kind) { store, _ in
            // 3,000 transfers over 30 minutes: every 10th failed (two classes), every 25th dead-lettered.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<4 {
                    group.addTask {
                        for index in stride(from: worker, to: 3000, by: 4) {
                            let received = t0.addingTimeInterval(Double(index) * 0.6)
                            var job = record("job-\(index)", at: received)
                            if index % 10 == 0 {
                                job.status = .failed
                                job.errorClass = index % 20 == 0 ? "no_such_file" : "permission_denied"
                                job.updatedAt = received
                            } else if index % 25 == 1 {
                                job.status = .deadLettered
                                job.errorClass = "invalid_job"
                            } else {
                                job.status = .completed
                                job.bytesTransferred = 1000
                                job.startedAt = received
                                job.finishedAt = received.addingTimeInterval(0.5)
                            }
                            try await store.save(job)
                        }
                    }
                }
                try await group.waitForAll()
            }
            let counts = try await store.statusCounts(since: nil)
            #expect(counts == [.failed: 300, .deadLettered: 120, .completed: 2580])
            #expect(try await store.statusCounts(since: t0.addingTimeInterval(1200)).values.reduce(0, +) == 1000)

            let buckets = try await store.activity(since: t0, bucket: .seconds(600))
            #expect(buckets.map(\.start) == [t0, t0.addingTimeInterval(600), t0.addingTimeInterval(1200)])
            #expect(buckets.map(\.files).reduce(0, +) == 2580)
            #expect(buckets.map(\.bytes).reduce(0, +) == 2_580_000)

            let reasons = try await store.failureReasons(since: nil, limit: 10)
            #expect(reasons.map(\.errorClass) == ["no_such_file", "permission_denied", "invalid_job"], "most frequent first")
            #expect(reasons.map(\.count) == [150, 150, 120])
            #expect(try await store.failureReasons(since: nil, limit: 1).count == 1)
        }
    }

    @Test func progressThrottleLetsAboutOneWritePerSecondThrough() {
        let throttle = ProgressThrottle()
        #expect(throttle.shouldWrite(jobID: "a", at: t0))
        #expect(!throttle.shouldWrite(jobID: "a", at: t0.addingTimeInterval(0.5)))
        #expect(throttle.shouldWrite(jobID: "b", at: t0.addingTimeInterval(0.5)), "per transfer")
        #expect(throttle.shouldWrite(jobID: "a", at: t0.addingTimeInterval(1.0)))
        #expect(!throttle.shouldWrite(jobID: "a", at: t0.addingTimeInterval(1.9)))
        throttle.finish(jobID: "a")
        #expect(throttle.shouldWrite(jobID: "a", at: t0.addingTimeInterval(1.95)))
    }

    @Test func storeURLs() throws {
        #expect(try StoreLocation(url: "sqlite://./kafkasync.db", relativeTo: "/etc/ks") == .sqlite(path: "/etc/ks/kafkasync.db"))
        #expect(try StoreLocation(url: "sqlite:///var/lib/ks.db", relativeTo: "/etc") == .sqlite(path: "/var/lib/ks.db"))
        #expect(try StoreLocation(url: "postgres://sync@db.internal:6432/transfers", relativeTo: "/", password: "pw")
                == .postgres(host: "db.internal", port: 6432, username: "sync", database: "transfers", password: "pw"))
        #expect(try StoreLocation(url: "postgresql://sync@db", relativeTo: "/")
                == .postgres(host: "db", port: 5432, username: "sync", database: "sync", password: nil))
        for bad in ["mysql://x@y/z", "postgres://db/x", "sqlite://", "postgres://u:hunter2@db/x"] {
            #expect { try StoreLocation(url: bad, relativeTo: "/") } throws: { error in
                guard let error = error as? StoreError else { return false }
                return error.code == .invalidURL && !error.message.contains("hunter2")
            }
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func anUnreachablePostgresIsATransientErrorNamingTheServerNotThePassword() async throws {
        let location = StoreLocation.postgres(host: "127.0.0.1", port: 1, username: "u", database: "d",
                                              password: "pw-secret-424242")
        await #expect {
            try await withTransferStore(location, logger: logger) { _ in }
        } throws: { error in
            guard let error = error as? StoreError else { return false }
            return error.isTransient && error.message.contains("127.0.0.1:1") && !error.message.contains("pw-secret")
        }
    }

    @Test func aWrongPostgresPasswordIsReportedWithoutThePassword() async throws {
        let (location, _) = try await StoreFixtures.freshLocation(.postgres)
        guard case .postgres(let host, let port, let username, let database, _, _) = location else { return }
        let wrong = StoreLocation.postgres(host: host, port: port, username: username, database: database,
                                           password: "pw-wrong-313131")
        await #expect {
            try await withTransferStore(wrong, logger: logger) { _ in }
        } throws: { error in
            guard let error = error as? StoreError else { return false }
            return error.message.contains("password authentication failed") && !error.message.contains("pw-wrong")
        }
    }
}
