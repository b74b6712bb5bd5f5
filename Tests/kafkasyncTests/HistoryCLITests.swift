import Dashboard
import Foundation
import TestSupport
import Testing
import TransferStore

/// `kafkasync history` and `kafkasync status` as subprocesses, reading a store the test fills.
@Suite(.timeLimit(.minutes(2))) struct HistoryCLITests {
    /// A config whose store is `kind`, and the store's location.
    func fixture(_ kind: StoreBackendKind) async throws -> (TemporaryDirectory, String, StoreLocation) {
        let directory = try TemporaryDirectory(prefix: "kafkasync-history")
        switch kind {
        case .sqlite:
            let config = try directory.write("config.toml", ConfigFixtures.minimal(store: "url = \"sqlite://./history.db\""))
            return (directory, config, .sqlite(path: directory.file("history.db")))
        case .postgres:
            // A fresh database on the run's throwaway server (removed with it).
            let (location, _) = try await StoreFixtures.freshLocation(.postgres)
            let config = try directory.write("config.toml", ConfigFixtures.minimal(store: """
                url = "\(StoreFixtures.url(of: location))"
                password_env = "KAFKASYNC_TEST_POSTGRES_PASSWORD"
                """))
            return (directory, config, location)
        }
    }

    func seed(_ location: StoreLocation) async throws {
        let now = Date()
        try await withTransferStore(location, logger: KafkaFixtures.logger()) { store in
            try await store.save(TransferRecord(
                jobID: "old", name: "archive.tar", remote: "remoteDetails", remotePath: "/a/archive.tar",
                status: .completed, attempts: 1, bytesTransferred: 3 << 20, receivedAt: now.addingTimeInterval(-172_800),
                startedAt: now.addingTimeInterval(-172_800), finishedAt: now.addingTimeInterval(-172_797)))
            try await store.save(TransferRecord(
                jobID: "new", name: "Holiday Video.mkv", remote: "remoteDetails", remotePath: "/v/Holiday Video.mkv",
                status: .running, attempts: 1, bytesExpected: 10 << 20, bytesTransferred: 5 << 20,
                workerHost: "worker-1", receivedAt: now.addingTimeInterval(-30), startedAt: now.addingTimeInterval(-20)))
            try await store.save(TransferRecord(
                jobID: "bad", name: "missing.bin", remote: "remoteDetails", remotePath: "/m/missing.bin",
                status: .deadLettered, attempts: 1, errorClass: "no_such_file", errorMessage: "no such file",
                receivedAt: now.addingTimeInterval(-60)))
        }
    }

    @Test(arguments: StoreBackendKind.allCases)
    func dashboardServesTheStoreWithoutConsuming(_ kind: StoreBackendKind) async throws {
        let (directory, config, location) = try await fixture(kind)
        defer { directory.remove() }
        try await seed(location)
        let kafkasync = try kafkasyncExecutable()

        let open = try await runProcess(kafkasync, ["dashboard", "--config", config, "--listen", "0.0.0.0:0"])
        #expect(open.status == 1)
        #expect(open.stderr.contains("not a loopback address") && open.stderr.contains("token_env"), "\(open.stderr)")

        let server = try BackgroundProcess(kafkasync, ["serve", "--config", config, "--listen", "127.0.0.1:0"])
        defer { kill(server.processIdentifier, SIGKILL) }
        let line = try await withTimeout(.seconds(30), "the dashboard to listen") { await server.nextLine() }
        let page = try #require(line?.split(separator: " ").last.map(String.init), "\(server.stderr)")
        let url = DashboardPage(page).url

        // Ready without a pipeline: the store answers.
        #expect(try await httpRequest(url + "readyz").status == 200)
        let status = try await httpRequest(url + "api/status").json(StatusResponse.self)
        #expect(status.counts["completed"] == 1 && status.counts["dead-lettered"] == 1)
        #expect(status.running.map(\.jobID) == ["new"], "the running transfers of every consumer sharing the store")
        let history = try await httpRequest(url + "api/transfers").json(TransferPage.self)
        #expect(history.transfers.map(\.jobID) == ["new", "bad", "old"])
        #expect(try await httpRequest(url + "api/transfers/bad").json(TransferDetail.self).transfer.errorClass == "no_such_file")
        #expect(try await httpRequest(url).text.contains("<title>"), "the page")
        // No broker runs for this config: what needs Kafka says so.
        let letters = try await httpRequest(url + "api/dlq")
        #expect(letters.status == 503 && letters.text.contains("Kafka"), "\(letters.text)")
        #expect(await server.stop(signal: SIGTERM) == 0, "\(server.stderr)")
    }

    @Test(arguments: StoreBackendKind.allCases)
    func historyFiltersAndPrintsTablesOrJSON(_ kind: StoreBackendKind) async throws {
        let (directory, config, location) = try await fixture(kind)
        defer { directory.remove() }
        try await seed(location)
        let kafkasync = try kafkasyncExecutable()

        let all = try await runProcess(kafkasync, ["history", "--config", config])
        #expect(all.status == 0, "\(all.stderr)")
        let lines = all.stdout.split(separator: "\n")
        #expect(lines.count == 4)
        #expect(lines[0].hasPrefix("RECEIVED"))
        #expect(lines[1].contains("Holiday Video.mkv") && lines[1].contains("5.00 MiB / 10.0 MiB"))
        #expect(lines[2].contains("missing.bin  (no_such_file: no such file)"))
        #expect(lines[3].contains("archive.tar") && lines[3].contains("3.00 MiB") && lines[3].contains("1.00 MiB/s"))

        let filtered = try await runProcess(kafkasync, ["history", "--config", config, "--status", "completed,dead-lettered",
                                                        "--since", "1h"])
        #expect(filtered.stdout.split(separator: "\n").count == 2, "\(filtered.stdout)")
        #expect(filtered.stdout.contains("missing.bin"))

        let named = try await runProcess(kafkasync, ["history", "--config", config, "--name", "HOLIDAY", "--json"])
        let objects = try named.stdout.split(separator: "\n").map {
            try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        #expect(objects.map { $0["job_id"] as? String } == ["new"])
        #expect(objects.first?["worker_host"] as? String == "worker-1")

        let limited = try await runProcess(kafkasync, ["history", "--config", config, "--limit", "1", "--json"])
        #expect(limited.stdout.split(separator: "\n").count == 1)
    }

    @Test func statusShowsCountsRunningAndErrors() async throws {
        let (directory, config, location) = try await fixture(.sqlite)
        defer { directory.remove() }
        try await seed(location)
        let result = try await runProcess(try kafkasyncExecutable(), ["status", "--config", config])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("Running now (1):"))
        #expect(result.stdout.contains("Holiday Video.mkv") && result.stdout.contains("50%"))
        #expect(result.stdout.contains("Last errors:") && result.stdout.contains("no_such_file"))
        let completed = result.stdout.split(separator: "\n").first { $0.hasPrefix("completed") }
        #expect(completed?.split(separator: " ") == ["completed", "0", "1"], "old transfer: not in the last 24 h")
    }

    @Test func badArgumentsAndUnreachableStoresAreClearErrors() async throws {
        let (directory, config, _) = try await fixture(.sqlite)
        defer { directory.remove() }
        let kafkasync = try kafkasyncExecutable()
        let badStatus = try await runProcess(kafkasync, ["history", "--config", config, "--status", "done"])
        #expect(badStatus.status != 0)
        #expect(badStatus.stderr.contains("--status done: expected one of queued"))
        let badSince = try await runProcess(kafkasync, ["history", "--config", config, "--since", "yesterday"])
        #expect(badSince.status != 0)
        #expect(badSince.stderr.contains("90s, 15m, 1h"))

        let empty = try await runProcess(kafkasync, ["history", "--config", config])
        #expect(empty.status == 0)
        #expect(empty.stdout.contains("No transfers match."))

        let unreachable = try directory.write("unreachable.toml", ConfigFixtures.minimal(
            store: "url = \"postgres://nobody@127.0.0.1:1/db\"\npassword = \"pg-secret-5151\""))
        let failed = try await runProcess(kafkasync, ["status", "--config", unreachable])
        #expect(failed.status == 1)
        #expect(failed.stderr.contains("127.0.0.1:1"))
        #expect(!failed.stderr.contains("pg-secret-5151"))
    }
}
