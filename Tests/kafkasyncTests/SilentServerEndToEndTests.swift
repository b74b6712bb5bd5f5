import Foundation
import KafkaClient
import KafkaSyncCore
import TestSupport
import Testing

/// `kafkasync consumer` against a server that stops answering in the middle of a job: the sshd session serving
/// it is stopped with `SIGSTOP`, as a hung server would be.
@Suite(.serialized, .timeLimit(.minutes(5))) struct SilentServerEndToEndTests {
    @Test func aStoppedSessionSendsItsJobToRetryWhileOtherJobsAndCommitsGoOn() async throws {
        let remote: (SSHServerFixture) -> String = { server in
            """
            host = "127.0.0.1:\(server.port)"
            username = "\(server.username)"
            private_key = "\(server.clientKey)"
            known_hosts = "\(server.knownHosts)"
            stall_timeout = "3s"
            """
        }
        // One partition: the stalled job and the jobs after it share it, so its commits show whether it is stuck.
        // One stream per file, so the big job uses one connection.
        try await withConsumerFixture(partitions: 1, consumerConfig: "segment_threshold = \"4GiB\"",
                                      remoteConfig: remote) { fixture in
            let big = fixture.server.dataPath("big.bin")
            #expect(try await runProcess("truncate", ["-s", "1G", big]).status == 0)
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: big)
            var small: [String: Data] = [:]
            for index in 0..<10 {
                small["small-\(index).txt"] = Data("small \(index)".utf8)
                try fixture.server.serve("small-\(index).txt", small["small-\(index).txt"]!)
            }
            let consumer = try await fixture.startConsumer()
            let stopped = StoppedProcesses()
            defer {
                stopped.resume()
                if consumer.isRunning { kill(consumer.processIdentifier, SIGKILL) }
            }
            do {
                try await fixture.publish([fixture.job("big.bin")])
                try await waitFor("the big download to start on the server", within: .seconds(30)) {
                    stopped.stop(await fixture.server.processes(holdingOpen: big))
                }
                try await fixture.publish(small.keys.sorted().map { fixture.job($0) })

                try await fixture.waitUntil("the stalled job to fail", within: .seconds(30)) {
                    consumer.stderr.split(separator: "\n").contains {
                        $0.contains("transfer failed; retrying later") && $0.contains("big.bin") && $0.contains("timed_out")
                    }
                }
                let failedAfter = ContinuousClock.now - stopped.since!
                #expect(failedAfter < .seconds(8), "the job failed \(failedAfter) after its server stopped (stall_timeout 3s)")
                let retries = try await fixture.read(fixture.topics.retry, count: 1)
                #expect(retries[0].header(JobHeader.reason) == "timed_out")
                #expect(retries[0].header(JobHeader.errorClass) == "transient")

                // Every small job lands, and the big one on its retry, over a fresh connection.
                let done = try await fixture.read(fixture.topics.done, count: 11, within: .seconds(120))
                #expect(Set(try done.map { try DoneEvent.decode($0.value).name }) == Set(small.keys).union(["big.bin"]))
                for (name, contents) in small {
                    #expect(FileManager.default.contents(atPath: fixture.completes + "/" + name) == contents, "\(name)")
                }
                let landed = try FileManager.default.attributesOfItem(atPath: fixture.completes + "/big.bin")
                #expect(landed[.size] as? Int == 1 << 30)

                // The partition's commits went past the stalled job: all 11 jobs are committed.
                let config = try KafkaSyncConfig.load(path: fixture.configPath, environment: [:])
                try await waitFor("the group to commit every job", within: .seconds(30)) {
                    let committed = try? await KafkaAdmin.committedOffsets(
                        group: config.kafka.groupID, topic: fixture.topics.jobs,
                        bootstrapServers: fixture.cluster.bootstrapServers, logger: KafkaFixtures.logger())
                    return committed?[0] == 11
                }
                #expect(consumer.isRunning, "the daemon survives a silent server")
            } catch {
                Issue.record("consumer log:\n\(consumer.stderr.suffix(4000))")
                throw error
            }
        }
    }
}

/// Waits until `condition` holds, checking every 50 ms.
private func waitFor(_ what: String, within limit: Duration, _ condition: @escaping @Sendable () async -> Bool)
    async throws {
    try await withTimeout(limit, what) {
        while await !condition() { try await Task.sleep(for: .milliseconds(50)) }
    }
}
