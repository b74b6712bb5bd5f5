import Dashboard
import Foundation
import TestSupport
import Testing

/// `kafkasync consumer` with its dashboard, watched as an operator would: a real browser (headless Chromium through
/// Selenium) on the page, a real Prometheus scraping `/metrics`, and the OpenAPI document checked against every
/// route. One run of 200 small files, one slow large file and one dead letter serves the three checks (each is a
/// script under Tests/Fixtures/dashboard; their output is shown when they fail).
@Suite(.serialized, .timeLimit(.minutes(10))) struct DashboardEndToEndTests {
    static let smallFiles = 200

    @Test func aBrowserAndPrometheusWatchARunAndTheAPIMatchesItsDocument() async throws {
        // One stream for the big file, so one sftp-server process serves it and can be slowed down.
        try await withConsumerFixture(consumerConfig: "segment_threshold = \"8GiB\"") { fixture in
            for index in 0..<Self.smallFiles {
                try fixture.server.serve("f-\(index).txt", Data("small file \(index)\n".utf8))
            }
            let big = fixture.server.dataPath("big.bin")
            #expect(try await runProcess("truncate", ["-s", "2G", big]).status == 0)
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: big)

            try await fixture.withConsumer { consumer, dashboard in
                let page = try #require(dashboard, "the consumer prints the dashboard URL")
                let token = try #require(DashboardPage(page).token, "the page URL gives the write token: \(page)")
                let url = DashboardPage(page).url
                let prometheus = try await PrometheusFixture(scraping: url, in: fixture.directory.file("prometheus"))
                defer { prometheus.stop() }

                // The big file first, slowed down: its sftp-server runs 25 ms in every 500 ms.
                try await fixture.publish([fixture.job("big.bin", hash: "big")])
                let throttle = Task {
                    var pids: [pid_t] = []
                    while !Task.isCancelled {
                        if pids.isEmpty { pids = await fixture.server.processes(holdingOpen: big) }
                        for pid in pids { kill(pid, SIGSTOP) }
                        try? await Task.sleep(for: .milliseconds(475))
                        for pid in pids { kill(pid, SIGCONT) }
                        try? await Task.sleep(for: .milliseconds(25))
                    }
                    for pid in pids { kill(pid, SIGCONT) }
                }
                defer { throttle.cancel() }

                // A job whose file is not there yet: a dead letter, replayed from the page once the file exists.
                try await fixture.publish([fixture.job("late.txt", hash: "late")])
                let position = try await waitForDeadLetter(url)
                try fixture.server.serve("late.txt", Data("late but here".utf8))
                try await fixture.publish((0..<Self.smallFiles).map { fixture.job("f-\($0).txt", hash: "f-\($0)") })

                let screenshot = fixture.directory.file("dashboard.png")
                let browser = try await runProcess("python3", [
                    "Tests/Fixtures/dashboard/browser_check.py", "--url", page,
                    "--expect-completed", "\(Self.smallFiles)", "--progress-job-id", "big",
                    "--replay-position", position, "--replay-wait-completed", "\(Self.smallFiles + 1)",
                    "--screenshot", screenshot, "--timeout", "240",
                ], currentDirectory: packageRoot())
                #expect(browser.status == 0, "browser check:\n\(browser.stdout)\n\(browser.stderr)")
                if let keep = ProcessInfo.processInfo.environment["KAFKASYNC_SCREENSHOT"] {
                    try? FileManager.default.removeItem(atPath: keep)
                    try? FileManager.default.copyItem(atPath: screenshot, toPath: keep)
                }

                throttle.cancel()
                _ = await throttle.value
                try await waitUntil("every job to complete", within: .seconds(120)) {
                    let status = try? await httpRequest(url + "api/status").json(StatusResponse.self)
                    return status?.counts["completed"] == Self.smallFiles + 2
                }

                let scraped = try await runProcess("python3", [
                    "Tests/Fixtures/dashboard/prometheus_check.py", "--prometheus", prometheus.url,
                    "--grafana", "deploy/grafana/kafkasync.json", "--expect-completed", "\(Self.smallFiles + 2)",
                    "--allow-empty", "kafkasync_retries_total", "--timeout", "120",
                ], currentDirectory: packageRoot())
                #expect(scraped.status == 0, "prometheus check:\n\(scraped.stdout)\n\(scraped.stderr)")

                let documented = try await runProcess("python3", [
                    "Tests/Fixtures/dashboard/check_openapi.py", "--spec", "docs/openapi.yaml", "--url", url,
                    "--token", token, "--reads-open", "--job-id", "f-0",
                ], currentDirectory: packageRoot())
                #expect(documented.status == 0, "OpenAPI check:\n\(documented.stdout)\n\(documented.stderr)")
                #expect(consumer.isRunning)

                // An open event stream does not hold the shutdown: SIGTERM ends it and the consumer exits at once.
                let stream = try BackgroundProcess("curl", ["-sN", url + "api/events"])
                defer { kill(stream.processIdentifier, SIGKILL) }
                let first = try await withTimeout(.seconds(10), "the event stream to open") { await stream.nextLine() }
                #expect(first == "retry: 2000")
                let stopping = ContinuousClock.now
                #expect(await consumer.stop(signal: SIGTERM) == 0, "\(consumer.stderr.suffix(2000))")
                #expect(ContinuousClock.now - stopping < .seconds(10), "the stream does not delay the shutdown")
                // The server ended the stream properly (curl exits 0; 18 would be a cut transfer).
                let ended = try await withTimeout(.seconds(5), "the stream to end") { await stream.stop(signal: 0) }
                #expect(ended == 0)
            }
        }
    }

    @Test func theQueueListsPublishedJobsUntilAConsumerTakesThem() async throws {
        try await withConsumerFixture { fixture in
            for name in ["q1", "q2", "q3"] { try fixture.server.serve("\(name).txt", Data(name.utf8)) }
            try await fixture.publish(["q1", "q2", "q3"].map { (name: String) in fixture.job("\(name).txt", hash: name) })
            // The dashboard alone: it reads the queue without a group and without committing.
            let server = try BackgroundProcess(try kafkasyncExecutable(), ["dashboard", "--config", fixture.configPath])
            defer { kill(server.processIdentifier, SIGKILL) }
            let line = try await withTimeout(.seconds(30), "the dashboard to listen") { await server.nextLine() }
            let url = try #require(line?.split(separator: " ").last.map { DashboardPage(String($0)).url }, "\(server.stderr)")

            let queue = try await httpRequest(url + "api/queue")
            #expect(queue.status == 200, "\(queue.text)")
            let waiting = try queue.json(QueueResponse.self)
            #expect(waiting.pending == 3)
            #expect(Set(waiting.next.compactMap(\.jobID)) == ["q1", "q2", "q3"], "\(queue.text)")
            #expect(Set(waiting.next.compactMap(\.name)) == ["q1.txt", "q2.txt", "q3.txt"])
            #expect(waiting.next.allSatisfy { ($0.ageSeconds ?? -1) >= 0 })
            // The gauge is measured at start and then every 15 s: the first measurement may still be under way.
            try await waitUntil("the queue depth in the metrics", within: .seconds(30)) {
                let metrics = (try? await httpRequest(url + "metrics").text) ?? ""
                return metrics.contains("kafkasync_jobs_pending{topic=\"\(fixture.topics.jobs)\"} 3")
            }
            #expect(try await httpRequest(url + "metrics").text.contains("kafkasync_build_info{"))

            try await fixture.withConsumer { consumer in
                try await waitUntil("the queue to empty", within: .seconds(60)) {
                    let queue = try? await httpRequest(url + "api/queue").json(QueueResponse.self)
                    return queue?.pending == 0 && queue?.next.isEmpty == true
                }
                #expect(fixture.landedFiles().count == 3, "\(consumer.stderr.suffix(3000))")
            }
        }
    }

    /// Waits for the first record of the dead-letter topic; returns its position.
    private func waitForDeadLetter(_ url: String) async throws -> String {
        try await withTimeout(.seconds(60), "a dead letter") {
            while true {
                let letters = try? await httpRequest(url + "api/dlq").json(DeadLettersResponse.self).deadLetters
                if let position = letters?.first?.position { return position }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }
}

/// A Prometheus server (Debian's `prometheus`) scraping one target every second, on a free loopback port.
struct PrometheusFixture: Sendable {
    let url: String
    private let process: BackgroundProcess

    init(scraping target: String, in directory: String) async throws {
        guard let components = URLComponents(string: target), let host = components.host, let port = components.port else {
            throw FixtureUnavailable(what: "prometheus: cannot scrape \(target)")
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let config = directory + "/prometheus.yml"
        try """
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            scrape_configs:
              - job_name: kafkasync
                static_configs:
                  - targets: ["\(host):\(port)"]
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let listen = try freeLoopbackPort()
        url = "http://127.0.0.1:\(listen)"
        process = try BackgroundProcess("prometheus", [
            "--config.file=\(config)", "--storage.tsdb.path=\(directory)/data", "--web.listen-address=127.0.0.1:\(listen)",
        ])
        let ready = url + "/-/ready"
        do {
            try await waitUntil("prometheus to be ready", within: .seconds(60)) {
                (try? await httpRequest(ready).status) == 200
            }
        } catch {
            _ = await process.stop(signal: SIGKILL)
            throw FixtureUnavailable(what: "prometheus did not start: \(process.stderr.suffix(2000))")
        }
    }

    func stop() {
        kill(process.processIdentifier, SIGKILL)
    }
}
