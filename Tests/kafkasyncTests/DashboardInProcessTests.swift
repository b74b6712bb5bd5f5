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
                (try? DashboardServer(context, onListening: { url, _ in listening.yield(url) })).flatMap { $0 }.map { [$0] } ?? []
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
}
