import ArgumentParser
import Foundation
import KafkaClient
import KafkaSyncCore
import Logging

/// `kafkasync dlq`: inspect and replay dead letters.
struct DLQCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq",
        abstract: "Inspect and replay jobs in the dead-letter topic.",
        subcommands: [List.self, Replay.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the dead letters with their reasons.")
        @OptionGroup var options: ConfigOptions
        @Flag(help: "One JSON object per line instead of a table.") var json = false

        func run() async throws {
            let config = try options.load()
            let letters = try await readDeadLetters(config)
            if json {
                for letter in letters { printNow(jsonLine(letter)) }
                return
            }
            guard !letters.isEmpty else {
                printNow("No dead letters in \(config.topics.deadLetter).")
                return
            }
            printNow("POSITION  LAST FAILURE          ATTEMPTS  REASON               JOB")
            for letter in letters {
                let job = letter.name.map { "\(letter.jobID ?? "") \($0)" } ?? "(invalid job)"
                printNow([letter.position.padding(toLength: 9, withPad: " ", startingAt: 0),
                          String(letter.lastFailure.prefix(20)).padding(toLength: 21, withPad: " ", startingAt: 0),
                          "\(letter.attempts)".padding(toLength: 9, withPad: " ", startingAt: 0),
                          letter.reason.padding(toLength: 20, withPad: " ", startingAt: 0), job].joined(separator: " "))
                printNow("          \(letter.error)")
            }
            printNow("\(letters.count) dead letter(s). Replay with: kafkasync dlq replay --id <POSITION or job id> | --all")
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Publish dead letters to the jobs topic again, as fresh jobs.",
            discussion: "Dead letters stay in the topic; a replayed job that completes again is skipped as a duplicate.")
        @OptionGroup var options: ConfigOptions
        @Option(help: "A dead letter's POSITION (partition:offset) or job id (repeatable).") var id: [String] = []
        @Flag(help: "Replay every dead letter.") var all = false

        func validate() throws {
            guard all != !id.isEmpty else { throw ValidationError("give --id ID (one or more) or --all") }
        }

        func run() async throws {
            let config = try options.load()
            let letters = try await readDeadLetters(config)
            let (chosen, unknown) = all ? (letters, []) : DeadLetter.select(letters, ids: id)
            for wanted in unknown { printError("kafkasync: no dead letter has position or job id \(wanted)") }
            let producer = try KafkaProducer(configuration: try config.producerConfiguration(sendingTo: [config.topics.jobs]),
                                             logger: makeLogger("kafkasync.dlq", level: .error))
            var sent = 0
            for letter in chosen {
                do {
                    let report = try await letter.replay(through: producer, to: config.topics.jobs)
                    printNow("✅ replayed \(letter.position) \(letter.name ?? "") to \(report.topic) partition \(report.partition) offset \(report.offset)")
                    sent += 1
                } catch {
                    printError("✖ \(letter.position): \(error)")
                }
            }
            await producer.close()
            printNow("replayed \(sent) of \(chosen.count) dead letter(s)")
            if sent < chosen.count || !unknown.isEmpty { throw ExitCode(1) }
        }
    }
}

private func readDeadLetters(_ config: KafkaSyncConfig) async throws -> [DeadLetter] {
    do {
        return try await DeadLetter.readAll(topic: config.topics.deadLetter, bootstrapServers: try config.bootstrapServers(),
                                            properties: config.consumerProperties,
                                            logger: makeLogger("kafkasync.dlq", level: .error))
    } catch {
        printError("kafkasync: cannot read \(config.topics.deadLetter): \(error)")
        throw ExitCode(1)
    }
}

private func jsonLine(_ letter: DeadLetter) -> String {
    var object: [String: Any] = [
        "position": letter.position, "reason": letter.reason, "error_class": letter.errorClass, "error": letter.error,
        "attempts": letter.attempts, "origin": letter.origin, "first_failure": letter.firstFailure,
        "last_failure": letter.lastFailure, "message": String(decoding: letter.value, as: UTF8.self),
    ]
    if let id = letter.jobID { object["job_id"] = id }
    if let name = letter.name { object["name"] = name }
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
    return String(decoding: data, as: UTF8.self)
}
