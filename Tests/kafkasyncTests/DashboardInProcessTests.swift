import Dashboard
import Foundation
import KafkaSyncCore
import ServiceLifecycle
import TestSupport
import Testing
import TransferStore

/// The HTTP server as a plug-in of the consumer's service group (as `kafkasync consumer` runs it), in the test
/// process, against the fixture's embedded cluster and sshd.
@Suite(.serialized) struct DashboardInProcessTests {
    @Test func statusReportsACompletedJobAndTheConsumerIsReady() async throws {
        try await withConsumerFixture { fixture in
            try fixture.server.serve("seen.txt", Data("seen by the dashboard".utf8))
            let (urls, listening) = AsyncStream.makeStream(of: String.self)
            _ = try await PipelineInProcessTests().withPipeline(fixture, plugins: { context in
                // The server accepts connections once `onListening` returned: it only passes the URL on.
                try DashboardServer(context, onListening: { url, _ in listening.yield(url) }).map { [$0] } ?? []
            }) { pipeline in
                let url = try await withTimeout(.seconds(10), "the server to listen") {
                    for await url in urls { return url }
                    throw CancellationError()
                }
                #expect(URLComponents(string: url)?.port != 0, "the bound port, not the 0 of the config")
                #expect(try await httpRequest(url + "healthz").status == 200)
                let ready = try await httpRequest(url + "readyz")
                #expect(ready.status == 200, "\(ready.text)")
                #expect(try ready.json(ReadinessResponse.self).partitions == pipeline.app.readiness.partitions.count)

                try await fixture.publish([fixture.job("seen.txt", hash: "h-seen")])
                try await pipeline.outcomes(1)
                let response = try await httpRequest(url + "api/status")
                #expect(response.status == 200)
                let status = try response.json(StatusResponse.self)
                #expect(status.counts["completed"] == 1, "\(response.text)")
                #expect(status.counts.values.reduce(0, +) == 1)
                #expect(status.running.isEmpty)
            }
        }
    }

    /// Runs the pipeline with its HTTP server; `body` gets the server's URL and the write token of the page URL.
    private func withDashboard(_ fixture: ConsumerFixture,
                               _ body: @escaping @Sendable (_ url: String, _ token: String, PipelineInProcessTests.Pipeline) async throws -> Void)
        async throws
    {
        let (pages, listening) = AsyncStream.makeStream(of: String.self)
        _ = try await PipelineInProcessTests().withPipeline(fixture, plugins: { context in
            try DashboardServer(context, onListening: { _, page in listening.yield(page) }).map { [$0] } ?? []
        }) { pipeline in
            let page = try await withTimeout(.seconds(10), "the server to listen") {
                for await page in pages { return page }
                throw CancellationError()
            }
            let token = try #require(DashboardPage(page).token, "the page URL carries the write token in its fragment: \(page)")
            try await body(DashboardPage(page).url, token, pipeline)
        }
    }

    private static func post(_ url: String, _ json: String, token: String?) async throws -> HTTPResult {
        var headers = ["Content-Type": "application/json"]
        if let token { headers["Authorization"] = "Bearer \(token)" }
        return try await httpRequest(url, method: "POST", headers: headers, body: Data(json.utf8))
    }

    @Test func jobsArePublishedValidatedListedInPagesAndTraced() async throws {
        try await withConsumerFixture { fixture in
            for name in ["p1.txt", "p2.txt", "p3.txt"] { try fixture.server.serve(name, Data("content of \(name)".utf8)) }
            try await withDashboard(fixture) { url, token, pipeline in
                let location = fixture.server.dataPath("")
                // Publishing needs the token; a job is validated as the producer validates it.
                let job = #"{"name": "p1.txt", "location": "\#(location)", "id": "api-p1"}"#
                #expect(try await Self.post(url + "api/jobs", job, token: nil).status == 401)
                #expect(try await Self.post(url + "api/jobs", job, token: "wrong").status == 401)
                let traversal = try await Self.post(url + "api/jobs", #"{"name": "../../etc/passwd", "location": "/"}"#, token: token)
                #expect(traversal.status == 400)
                #expect(traversal.text.contains(#""reason":"path_traversal""#), "\(traversal.text)")
                let notJSON = try await Self.post(url + "api/jobs", "name=x", token: token)
                #expect(notJSON.status == 400 && notJSON.text.contains("invalid_json"), "\(notJSON.text)")
                let published = try await Self.post(url + "api/jobs", job, token: token)
                #expect(published.status == 202, "\(published.text)")
                let where_ = try published.json(PublishedResponse.self)
                #expect(where_.jobID == "api-p1" && where_.topic == fixture.topics.jobs)
                try await fixture.publish([fixture.job("p2.txt", hash: "h-p2"), fixture.job("p3.txt", hash: "h-p3")])
                try await pipeline.outcomes(3)

                // The history, two to a page, newest first, every transfer once.
                var seen: [String] = []
                var cursor: String?
                repeat {
                    let page = try await httpRequest(url + "api/transfers?limit=2" + (cursor.map { "&cursor=\($0)" } ?? ""))
                    #expect(page.status == 200, "\(page.text)")
                    let decoded = try page.json(TransferPage.self)
                    #expect(decoded.transfers.count <= 2)
                    seen += decoded.transfers.map(\.jobID)
                    cursor = decoded.nextCursor
                } while cursor != nil
                #expect(Set(seen) == ["api-p1", "h-p2", "h-p3"] && seen.count == 3, "\(seen)")
                let filtered = try await httpRequest(url + "api/transfers?status=completed&name=P2").json(TransferPage.self)
                #expect(filtered.transfers.map(\.jobID) == ["h-p2"])
                #expect(try await httpRequest(url + "api/transfers?status=finished").status == 400)
                #expect(try await httpRequest(url + "api/transfers?limit=100000").status == 400)
                #expect(try await httpRequest(url + "api/transfers?cursor=garbage!").status == 400)

                // The lineage: where it came from in Kafka, its attempt, where it landed.
                let detail = try await httpRequest(url + "api/transfers/api-p1")
                #expect(detail.status == 200, "\(detail.text)")
                let lineage = try detail.json(TransferDetail.self)
                #expect(lineage.kafka?.topic == fixture.topics.jobs && lineage.kafka?.partition == where_.partition
                        && lineage.kafka?.offset == where_.offset, "\(detail.text)")
                #expect(lineage.attempts.map(\.outcome) == ["completed"])
                #expect(lineage.finalPath == fixture.completes + "/p1.txt")
                #expect(lineage.transfer.bytes == Int64("content of p1.txt".utf8.count))
                #expect(try await httpRequest(url + "api/transfers/nope").status == 404)

                let status = try await httpRequest(url + "api/status").json(StatusResponse.self)
                #expect(status.counts["completed"] == 3)
                let activity = try await httpRequest(url + "api/activity?minutes=5").json(ActivityResponse.self)
                #expect(activity.buckets.count == 5 && activity.buckets.reduce(0) { $0 + $1.files } == 3)
                // Nothing is pending once everything completed and was committed.
                try await waitUntil("the queue to empty") {
                    (try? await httpRequest(url + "api/queue").json(QueueResponse.self).pending) == 0
                }
                // CORS stays closed.
                let preflight = try await httpRequest(url + "api/jobs", method: "OPTIONS", headers: ["Origin": "https://evil.example"])
                #expect(preflight.headers["access-control-allow-origin"] == nil)
            }
        }
    }

    @Test func aDeadLetterIsReplayedFromTheAPIAndTheEventStreamResumes() async throws {
        try await withConsumerFixture { fixture in
            try await withDashboard(fixture) { url, token, pipeline in
                // A file that is not there: a permanent failure, dead-lettered at once.
                try await fixture.publish([fixture.job("late.txt", hash: "h-late")])
                try await pipeline.outcomes(1)
                // The outcome is told before the dead letter is published: wait for it to be in the topic.
                try await waitUntil("the dead letter") {
                    (try? await httpRequest(url + "api/dlq").json(DeadLettersResponse.self).deadLetters.isEmpty) == false
                }
                let letters = try await httpRequest(url + "api/dlq").json(DeadLettersResponse.self)
                let letter = try #require(letters.deadLetters.first { $0.jobID == "h-late" }, "\(letters)")
                #expect(letters.reasons[letter.reason] == 1)
                #expect(letter.reason == "no_such_file")

                // From the first event on (a client without Last-Event-ID gets live events only).
                let events = try await Self.events(url, token: token, lastEventID: 0)
                #expect(events.map(\.type).contains("dead_lettered"), "\(events)")
                let lastID = try #require(events.last?.id)

                // The file arrives; the replay publishes the dead letter again and it completes.
                try fixture.server.serve("late.txt", Data("late but here".utf8))
                #expect(try await Self.post(url + "api/dlq/replay", #"{"ids": ["\#(letter.position)"]}"#, token: nil).status == 401)
                #expect(try await Self.post(url + "api/dlq/replay", #"{}"#, token: token).status == 400)
                let replayed = try await Self.post(url + "api/dlq/replay", #"{"ids": ["\#(letter.position)", "9:999"]}"#, token: token)
                #expect(replayed.status == 200, "\(replayed.text)")
                let result = try replayed.json(ReplayResponse.self)
                #expect(result.replayed.map(\.position) == [letter.position] && result.unknown == ["9:999"])
                try await pipeline.outcomes(2)
                #expect(FileManager.default.fileExists(atPath: fixture.completes + "/late.txt"))

                // Reconnecting with Last-Event-ID gives only what came after it.
                let resumed = try await Self.events(url, token: token, lastEventID: lastID)
                #expect(resumed.allSatisfy { $0.id > lastID }, "\(resumed)")
                #expect(resumed.map(\.type).contains("completed"), "\(resumed)")
                #expect(resumed.contains { $0.type == "started" && $0.data.contains(#""job_id":"h-late""#) })
                // An id the server never gave: told to start over.
                let unknown = try await Self.events(url, token: token, lastEventID: lastID + 100_000)
                #expect(unknown.first?.type == "reset", "\(unknown)")
            }
        }
    }

    struct StreamedEvent: Sendable, CustomStringConvertible {
        var id: Int
        var type: String
        var data: String
        var description: String { "\(id) \(type) \(data)" }
    }

    /// Reads `/api/events` with curl (a real HTTP client) for two seconds.
    private static func events(_ url: String, token: String, lastEventID: Int?) async throws -> [StreamedEvent] {
        var arguments = ["-sN", "--max-time", "2", "-H", "Authorization: Bearer \(token)"]
        if let lastEventID { arguments += ["-H", "Last-Event-ID: \(lastEventID)"] }
        let result = try await runProcess("curl", arguments + [url + "api/events"])
        var events: [StreamedEvent] = []
        for block in result.stdout.components(separatedBy: "\n\n") {
            var event = StreamedEvent(id: -1, type: "", data: "")
            for line in block.split(separator: "\n") {
                if line.hasPrefix("id: ") { event.id = Int(line.dropFirst(4)) ?? -1 }
                if line.hasPrefix("event: ") { event.type = String(line.dropFirst(7)) }
                if line.hasPrefix("data: ") { event.data = String(line.dropFirst(6)) }
            }
            if !event.type.isEmpty { events.append(event) }
        }
        return events
    }
}
