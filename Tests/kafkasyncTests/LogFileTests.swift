import Foundation
import KafkaClient
import KafkaSyncCore
import TestSupport
import Testing

/// The daemon's log file failing (a full disk) costs log lines, never the daemon.
@Suite(.serialized, .timeLimit(.minutes(3))) struct LogFileTests {
    @Test func aLogFileOnAFullDeviceNeverStopsTheConsumer() async throws {
        try await withConsumerFixture(consumerConfig: #"log_file = "/dev/full""#) { fixture in
            try fixture.server.serve("while-full.txt", Data("written while the log file is full".utf8))
            let consumer = try await fixture.startConsumer()
            do {
                try await fixture.publish([fixture.job("while-full.txt")])
                let done = try await fixture.read(fixture.topics.done, count: 1)
                #expect(try DoneEvent.decode(done[0].value).status == "completed")
                #expect(FileManager.default.contents(atPath: fixture.completes + "/while-full.txt")
                    == Data("written while the log file is full".utf8))
                #expect(consumer.isRunning, "the consumer lives on")
                #expect(await consumer.stop(signal: SIGTERM) == 0, "\(consumer.stderr.suffix(2000))")
                let warnings = consumer.stderr.components(separatedBy: "cannot write the log file /dev/full").count - 1
                #expect(warnings == 1, "one warning on standard error, not one per line: \(consumer.stderr.suffix(2000))")
                #expect(consumer.stderr.contains("transfer completed"), "standard error still gets every line")
            } catch {
                if consumer.isRunning { _ = await consumer.stop(signal: SIGKILL) }
                Issue.record("consumer log:\n\(consumer.stderr.suffix(4000))")
                throw error
            }
        }
    }
}
