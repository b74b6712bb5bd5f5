import Foundation

/// The event published on `<topic>.done` when a job's result is in `completes`.
public struct DoneEvent: Codable, Sendable, Equatable {
    /// The job id.
    public var id: String
    /// The job's name.
    public var name: String
    /// `completed` or `skipped` (already there).
    public var status: String
    /// The final path.
    public var path: String
    /// Bytes of the file or of all files of the directory.
    public var bytes: Int64
    /// Files (1 for a file job).
    public var files: Int
    /// How long the transfer took.
    public var durationMs: Int64
    /// The verified checksum, if the job gave one.
    public var checksum: String?
    /// The consumer's host.
    public var worker: String
    /// When the job's message was published (its Kafka timestamp), epoch milliseconds.
    public var publishedAtMs: Int64?
    /// When the result was in place, epoch milliseconds.
    public var finishedAtMs: Int64

    // Snake case spelled out: a key strategy would convert every key of every event.
    enum CodingKeys: String, CodingKey {
        case id, name, status, path, bytes, files, checksum, worker
        case durationMs = "duration_ms", publishedAtMs = "published_at_ms", finishedAtMs = "finished_at_ms"
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// Decodes an event from a `.done` record.
    public static func decode(_ bytes: [UInt8]) throws -> DoneEvent {
        try JSONDecoder().decode(DoneEvent.self, from: Data(bytes))
    }
}
