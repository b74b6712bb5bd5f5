import Foundation
import KafkaSyncCore
import Synchronization
import TransferStore

/// The pipeline's events as the page's live stream (`GET /api/events`, Server-Sent Events), and what the API needs
/// that only this process knows: retries waiting for their time.
///
/// Events get increasing ids and the last ``bufferSize`` are kept, so a browser that reconnects with
/// `Last-Event-ID` misses nothing that is still buffered. Each subscriber has a bounded queue: one that falls
/// ``subscriberQueue`` events behind is disconnected (it reconnects and resumes), so a slow client never slows the
/// pipeline, which only ever appends under a lock. A stream writes what waits at most every ``batchInterval``:
/// a busy consumer tells thousands of events a second, and a socket write each cost more than the events.
public final class LiveEvents: Sendable {
    /// Events kept for reconnecting clients.
    static let bufferSize = 4096
    /// Events a client may fall behind before it is disconnected.
    static let subscriberQueue = 1024
    /// The shortest time between two writes of a stream.
    static let batchInterval: Duration = .milliseconds(200)
    /// Retries waiting listed at most (``retries``).
    static let retriesKept = 10_000

    /// One event of the stream. It is encoded by each stream that sends it, not by the pipeline that tells it.
    struct Entry: Sendable {
        let id: Int
        let type: String
        let event: Event?

        /// The JSON `data`.
        var data: String { event?.json ?? "{}" }

        /// The event in the text/event-stream format.
        var text: String { "id: \(id)\nevent: \(type)\ndata: \(data)\n\n" }
    }

    /// The JSON `data` of an event (docs/openapi.yaml, `Event`).
    struct Event: Sendable {
        var type: String
        var jobID: String
        var name: String?
        var remote: String?
        var bytes: Int64?
        var total: Int64?
        var attempt: Int?
        var errorClass: String?
        var errorMessage: String?
        var time: Date

        /// The event as one line of JSON, keys sorted (written by hand: Foundation's JSONEncoder costs tens of
        /// microseconds an event, and a busy consumer tells thousands a second).
        var json: String {
            var fields: [(String, String)] = []
            if let attempt { fields.append(("attempt", String(attempt))) }
            if let bytes { fields.append(("bytes", String(bytes))) }
            if let errorClass { fields.append(("error_class", Self.quoted(errorClass))) }
            if let errorMessage { fields.append(("error_message", Self.quoted(errorMessage))) }
            fields.append(("job_id", Self.quoted(jobID)))
            if let name { fields.append(("name", Self.quoted(name))) }
            if let remote { fields.append(("remote", Self.quoted(remote))) }
            fields.append(("time", Self.quoted(time.formatted(.iso8601))))
            if let total { fields.append(("total", String(total))) }
            fields.append(("type", Self.quoted(type)))
            return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
        }

        /// A JSON string: quotes, backslashes and control characters escaped (names come from servers and jobs).
        static func quoted(_ text: String) -> String {
            var out = "\""
            out.reserveCapacity(text.utf8.count + 2)
            for scalar in text.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                case _ where scalar.value < 0x20:
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                default: out.unicodeScalars.append(scalar)
                }
            }
            return out + "\""
        }
    }

    private struct Running: Sendable {
        var name: String
        var remote: String
        var total: Int64?
        var attempt: Int
    }

    /// One client of the stream: the events not written to it yet, which its stream takes in batches (one socket
    /// write each, not one per event). Bounded: a client ``subscriberQueue`` events behind ends (it fell behind).
    final class Subscriber: Sendable {
        private struct Pending {
            var entries: [Entry] = []
            var ended = false
        }
        private let pending = Mutex(Pending())
        /// An element whenever events wait (pushes between two takes make one); finished when the subscriber ends.
        let wakeups: AsyncStream<Void>
        private let wake: AsyncStream<Void>.Continuation

        init() { (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1)) }

        /// Adds `entry`, unless ``subscriberQueue`` wait already: then the subscriber ends instead.
        /// - Returns: whether it was added.
        fileprivate func push(_ entry: Entry) -> Bool {
            let added = pending.withLock { pending in
                guard !pending.ended, pending.entries.count < LiveEvents.subscriberQueue else {
                    pending.ended = true
                    return false
                }
                pending.entries.append(entry)
                return true
            }
            if added { wake.yield() } else { wake.finish() }
            return added
        }

        /// Ends the subscriber: what waits can still be taken.
        fileprivate func end() {
            pending.withLock { $0.ended = true }
            wake.finish()
        }

        /// The events waiting, oldest first, and whether the subscriber ended (no more will come).
        func take() -> (entries: [Entry], ended: Bool) {
            pending.withLock { pending in
                defer { pending.entries.removeAll(keepingCapacity: true) }
                return (pending.entries, pending.ended)
            }
        }
    }

    private struct State: Sendable {
        var nextID = 1
        var buffer: [Entry] = []
        var subscribers: [Int: Subscriber] = [:]
        var nextSubscriber = 0
        var running: [String: Running] = [:]
        var retries: [String: QueueResponse.Retry] = [:]
    }

    private let state = Mutex(State())

    /// A stream fed by `events` (none when the server runs without a pipeline: `kafkasync dashboard`).
    public init(events: PipelineEvents?) {
        events?.observe { [weak self] event in self?.receive(event) }
    }

    /// Retries waiting for their time, soonest first.
    var retries: [QueueResponse.Retry] {
        state.withLock { Array($0.retries.values) }.sorted { ($0.notBefore, $0.jobID) < ($1.notBefore, $1.jobID) }
    }

    /// A new subscriber: the buffered events after `lastEventID` (or a `reset` first when some were dropped from
    /// the buffer), then live ones, until it falls too far behind or `cancel` is called.
    func subscribe(after lastEventID: Int?) -> (subscriber: Subscriber, cancel: @Sendable () -> Void) {
        let subscriber = Subscriber()
        let key = state.withLock { state in
            if let lastEventID {
                let oldest = state.buffer.first?.id ?? state.nextID
                // Gone from the buffer, never given, or more than the client's queue holds: start over.
                if lastEventID + 1 < oldest || lastEventID >= state.nextID
                    || state.nextID - 1 - lastEventID >= Self.subscriberQueue {
                    _ = subscriber.push(Entry(id: state.nextID - 1, type: "reset", event: nil))
                } else {
                    for entry in state.buffer where entry.id > lastEventID { _ = subscriber.push(entry) }
                }
            }
            let key = state.nextSubscriber
            state.nextSubscriber += 1
            state.subscribers[key] = subscriber
            return key
        }
        let cancel: @Sendable () -> Void = { [weak self] in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: key) }
            subscriber.end()
        }
        return (subscriber, cancel)
    }

    /// Subscribers connected now.
    var subscriberCount: Int { state.withLock { $0.subscribers.count } }

    private func receive(_ event: PipelineEvent) {
        let now = Date()
        state.withLock { state in
            switch event {
            case .started(let record):
                let running = Running(name: record.name, remote: record.remote, total: record.bytesExpected,
                                      attempt: record.attempts)
                state.running[record.jobID] = running
                state.retries[record.jobID] = nil
                append(Event(type: "started", jobID: record.jobID, name: running.name, remote: running.remote,
                             bytes: 0, total: running.total, attempt: running.attempt, time: now), to: &state)
            case .progress(let jobID, let bytes, let total):
                if let total { state.running[jobID]?.total = total }
                let running = state.running[jobID]
                append(Event(type: "progress", jobID: jobID, name: running?.name, remote: running?.remote, bytes: bytes,
                             total: total ?? running?.total, attempt: running?.attempt, time: now), to: &state)
            case .outcome(let outcome):
                let jobID = outcome.job?.id ?? ""
                let running = state.running.removeValue(forKey: jobID)
                var entry = Event(type: "", jobID: jobID, name: outcome.job?.name, remote: running?.remote,
                                  attempt: running?.attempt, time: now)
                switch outcome {
                case .completed(let completion), .skipped(let completion):
                    if case .completed = outcome { entry.type = "completed" } else { entry.type = "skipped" }
                    entry.bytes = completion.bytes
                    entry.total = completion.bytes
                case .retry(let job, let failure, let attempt, let notBefore):
                    entry.type = "retrying"
                    entry.errorClass = failure.code.description
                    entry.errorMessage = failure.message
                    state.retries[job.id] = QueueResponse.Retry(jobID: job.id, name: job.name, attempt: attempt,
                                                                notBefore: notBefore)
                    // Bounded: a retry taken by another consumer is never seen starting here.
                    if state.retries.count > Self.retriesKept,
                       let oldest = state.retries.values.min(by: { $0.notBefore < $1.notBefore }) {
                        state.retries[oldest.jobID] = nil
                    }
                case .deadLetter(_, let failure):
                    entry.type = "dead_lettered"
                    entry.errorClass = failure.code.description
                    entry.errorMessage = failure.message
                }
                append(entry, to: &state)
            }
        }
    }

    /// Adds an event for every subscriber; one that fell behind is disconnected (it reconnects with its
    /// Last-Event-ID).
    private func append(_ event: Event, to state: inout State) {
        let entry = Entry(id: state.nextID, type: event.type, event: event)
        state.nextID += 1
        state.buffer.append(entry)
        if state.buffer.count > Self.bufferSize { state.buffer.removeFirst(state.buffer.count - Self.bufferSize / 2) }
        for (key, subscriber) in state.subscribers where !subscriber.push(entry) { state.subscribers[key] = nil }
    }
}
