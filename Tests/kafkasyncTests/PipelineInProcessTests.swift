import Foundation
import KafkaClient
import KafkaSyncCore
import Logging
import ServiceLifecycle
import Synchronization
import TestSupport
import Testing
import TransferStore

/// The consumer's parts (``ConsumerApp``) run in the test process, in their service group, against the fixture's
/// embedded cluster and sshd: the outcomes are read as values, and shutdown is triggered and observed directly.
@Suite(.serialized) struct PipelineInProcessTests {
    /// A running pipeline.
    struct Pipeline: Sendable {
        let app: ConsumerApp
        let group: ServiceGroup
        let outcomes: OutcomeLog
        let fixture: ConsumerFixture

        /// Waits until `count` outcomes were seen; returns them all.
        @discardableResult
        func outcomes(_ count: Int, within limit: Duration = .seconds(60)) async throws -> [Outcome] {
            try await fixture.waitUntil("\(count) outcomes", within: limit) { outcomes.all.count >= count }
            return outcomes.all
        }
    }

    /// Runs the pipeline of the fixture's config, with the plug-ins `plugins` builds, while `body` runs, then shuts
    /// it down gracefully (unless the body did already) and returns how it ended.
    func withPipeline(_ fixture: ConsumerFixture,
                      plugins: @escaping @Sendable (ConsumerContext) throws -> [any Service] = { _ in [] },
                      _ body: @escaping @Sendable (Pipeline) async throws -> Void)
        async throws -> ConsumerDaemon.Ending
    {
        let config = try KafkaSyncConfig.load(path: fixture.configPath)
        var logger = Logger(label: "kafkasync.pipeline-test")
        logger.logLevel = .info
        let outcomes = OutcomeLog()
        let (ready, becameReady) = AsyncStream.makeStream(of: Void.self)
        return try await withTransferStore(config.store.location, logger: logger) { [logger] store in
            let context = ConsumerContext(config: config, bootstrapServers: fixture.cluster.bootstrapServers,
                                          store: store, logger: logger)
            context.events.observe(outcomes.observe)
            let app = try ConsumerApp(config: config, bootstrapServers: fixture.cluster.bootstrapServers, store: store,
                                      logger: logger, plugins: try plugins(context), readiness: context.readiness,
                                      events: context.events, onReady: { becameReady.yield() })
            let group = app.serviceGroup(signals: [])
            try await withRunningGroup(group) {
                try await withTimeout(.seconds(30), "partitions to be assigned") { for await _ in ready { return } }
                try await body(Pipeline(app: app, group: group, outcomes: outcomes, fixture: fixture))
            }
            return app.daemon.ending ?? .drained
        }
    }

    @Test func aJobCompletesAndItsDoneEventIsPublished() async throws {
        try await withConsumerFixture { fixture in
            try fixture.server.serve("a.txt", Data("alpha".utf8))
            let ending = try await withPipeline(fixture) { pipeline in
                try await fixture.publish([fixture.job("a.txt", hash: "h-a")])
                let outcomes = try await pipeline.outcomes(1)
                guard case .completed(let completion) = outcomes[0] else {
                    Issue.record("expected completed, got \(outcomes)")
                    return
                }
                #expect(completion.path == fixture.completes + "/a.txt" && completion.bytes == 5 && completion.files == 1)
                let done = try await fixture.read(fixture.topics.done, count: 1)
                #expect(try DoneEvent.decode(done[0].value).status == "completed")
            }
            #expect(ending == .drained)
            #expect(FileManager.default.contents(atPath: fixture.completes + "/a.txt") == Data("alpha".utf8))
        }
    }

    @Test func theSameJobAgainIsSkipped() async throws {
        try await withConsumerFixture { fixture in
            try fixture.server.serve("b.txt", Data("beta".utf8))
            _ = try await withPipeline(fixture) { pipeline in
                try await fixture.publish([fixture.job("b.txt", hash: "h-b")])
                try await pipeline.outcomes(1)
                try await fixture.publish([fixture.job("b.txt", hash: "h-b")])
                let outcomes = try await pipeline.outcomes(2)
                guard case .completed = outcomes[0], case .skipped(let skipped) = outcomes[1] else {
                    Issue.record("expected completed then skipped, got \(outcomes)")
                    return
                }
                #expect(skipped.bytes == 4 && skipped.duration == .zero)
            }
        }
    }

    @Test func aTransientFailureIsRetriedThenCompletes() async throws {
        try await withConsumerFixture { fixture in
            try fixture.server.serve("c.bin", Data(repeating: 3, count: 10_000))
            await fixture.server.kill()
            _ = try await withPipeline(fixture) { pipeline in
                try await fixture.publish([fixture.job("c.bin")])
                let first = try await pipeline.outcomes(1)
                guard case .retry(_, let failure, let attempt, let notBefore) = first[0] else {
                    Issue.record("expected a retry, got \(first)")
                    return
                }
                #expect(failure.isTransient && attempt == 2 && notBefore > Date().addingTimeInterval(-5))
                try await fixture.server.restart()
                try await fixture.waitUntil("the retry to complete") {
                    pipeline.outcomes.all.contains { if case .completed = $0 { true } else { false } }
                }
                let retries = try await fixture.read(fixture.topics.retry, count: 1)
                #expect(retries[0].header(JobHeader.attempt) == "2")
            }
            #expect(FileManager.default.contents(atPath: fixture.completes + "/c.bin") == Data(repeating: 3, count: 10_000))
        }
    }

    @Test func anInvalidJobIsDeadLetteredWithItsReason() async throws {
        try await withConsumerFixture { fixture in
            _ = try await withPipeline(fixture) { pipeline in
                try await fixture.publish(["{not json"])
                let outcomes = try await pipeline.outcomes(1)
                guard case .deadLetter(nil, let failure) = outcomes[0] else {
                    Issue.record("expected a dead letter without a job, got \(outcomes)")
                    return
                }
                #expect(failure.code.description == "invalid_json" && !failure.isTransient)
                let dead = try await fixture.read(fixture.topics.deadLetter, count: 1)
                #expect(dead[0].header(JobHeader.reason) == "invalid_json")
                #expect(dead[0].value == Array("{not json".utf8), "the job itself, unchanged")
            }
        }
    }

    @Test func gracefulShutdownLetsTheRunningJobFinish() async throws {
        try await withConsumerFixture { fixture in
            let contents = Data((0..<30_000_000).map { UInt8(truncatingIfNeeded: $0 &* 11) })
            try fixture.server.serve("big.bin", contents)
            let ending = try await withPipeline(fixture) { pipeline in
                try await fixture.publish([fixture.job("big.bin")])
                try await fixture.waitUntil("the transfer to start") { pipeline.app.daemon.runningJobs == 1 }
                await pipeline.group.triggerGracefulShutdown()
                let outcomes = try await pipeline.outcomes(1)
                guard case .completed = outcomes[0] else {
                    Issue.record("expected completed, got \(outcomes)")
                    return
                }
            }
            #expect(ending == .drained)
            #expect(FileManager.default.contents(atPath: fixture.completes + "/big.bin") == contents)
        }
    }

    /// The bytes of the first staged file in `incompletes`.
    private static func stagedBytes(_ fixture: ConsumerFixture) -> Int {
        let staged = (try? FileManager.default.contentsOfDirectory(atPath: fixture.incompletes))?
            .first { $0.hasPrefix("job-") && !$0.contains(".") }
        return staged.flatMap { try? FileManager.default.attributesOfItem(atPath: fixture.incompletes + "/" + $0)[.size] as? Int } ?? 0
    }

    @Test func cancellationAbandonsTheRunningJobAndPlacesNothing() async throws {
        try await withConsumerFixture { fixture in
            #expect(try await runProcess("sh", ["-c", "head -c 200000000 /dev/urandom > '\(fixture.server.dataPath("huge.bin"))' && chmod 644 '\(fixture.server.dataPath("huge.bin"))'"]).status == 0)
            let config = try KafkaSyncConfig.load(path: fixture.configPath)
            let outcomes = OutcomeLog()
            let ending = try await withTransferStore(config.store.location, logger: Logger(label: "test")) { store in
                let events = PipelineEvents()
                events.observe(outcomes.observe)
                let app = try ConsumerApp(config: config, bootstrapServers: fixture.cluster.bootstrapServers, store: store,
                                          logger: Logger(label: "kafkasync.pipeline-test"), events: events)
                let running = Task { try await app.serviceGroup(signals: []).run() }
                try await fixture.publish([fixture.job("huge.bin")])
                try await fixture.waitUntil("bytes to arrive") { Self.stagedBytes(fixture) > 0 }
                let cancelled = ContinuousClock.now
                running.cancel()
                try await withTimeout(.seconds(10), "the pipeline to stop") { try await running.value }
                #expect(ContinuousClock.now - cancelled < .seconds(5), "abandoned at once")
                return app.daemon.ending
            }
            #expect(ending == .aborted)
            #expect(outcomes.all.isEmpty, "an abandoned job has no outcome: it is redelivered")
            #expect(!FileManager.default.fileExists(atPath: fixture.completes + "/huge.bin"))
            #expect(Self.stagedBytes(fixture) > 0, "the partial download stays to resume")
        }
    }
}

/// The outcomes a pipeline reported, in order.
final class OutcomeLog: Sendable {
    private let outcomes = Mutex<[Outcome]>([])

    var all: [Outcome] { outcomes.withLock { $0 } }

    /// Records the outcomes among the pipeline's events.
    @Sendable func observe(_ event: PipelineEvent) {
        if case .outcome(let outcome) = event { outcomes.withLock { $0.append(outcome) } }
    }
}
