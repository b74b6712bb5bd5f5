import AsyncSupport
import CoreMetrics
import Foundation
import Synchronization

/// The pipeline's metrics (swift-metrics; the process chooses the backend: Prometheus for `kafkasync consumer`),
/// counted from its ``PipelineEvents``. Labels are bounded: a remote the config does not define is `unknown`, codes
/// are the stable failure codes; never a file name or a job id.
public final class ConsumerMetrics: Sendable {
    private let config: KafkaSyncConfig
    private let running = Mutex<Set<String>>([])
    private let runningGauge = Gauge(label: "kafkasync_transfers_running")
    private let duration = Timer(label: "kafkasync_transfer_duration_seconds")
    private let size = Recorder(label: "kafkasync_transfer_size_bytes", aggregate: true)
    /// The counters made so far, by label and dimensions (bounded: the labels are): making one looks it up in the
    /// backend's registry under a lock, too slow for every outcome.
    private let counters = Mutex<[[String]: Counter]>([:])

    /// Metrics of the consumer of `config`, counting what `events` tell from now on.
    public init(config: KafkaSyncConfig, events: PipelineEvents) {
        self.config = config
        runningGauge.record(0)
        events.observe { [self] event in self.count(event) }
    }

    private func count(_ event: PipelineEvent) {
        switch event {
        case .started(let record):
            runningGauge.record(running.withLock { $0.insert(record.jobID); return $0.count })
        case .progress:
            break
        case .outcome(let outcome):
            if let id = outcome.job?.id { runningGauge.record(running.withLock { $0.remove(id); return $0.count }) }
            let remote = label(outcome.job?.remote)
            switch outcome {
            case .completed(let completion):
                transfers("completed", remote)
                counter("kafkasync_transfer_bytes_total", [("remote", remote)]).increment(by: Int(clamping: completion.bytes))
                duration.recordNanoseconds(Int64(clamping: completion.duration.wholeNanoseconds))
                size.record(completion.bytes)
            case .skipped:
                transfers("skipped-duplicate", remote)
            case .retry(_, let failure, _, _):
                transfers("retrying", remote)
                counter("kafkasync_retries_total", [("code", failure.code.description)]).increment()
            case .deadLetter(_, let failure):
                transfers("dead-lettered", remote)
                counter("kafkasync_dead_letters_total", [("code", failure.code.description)]).increment()
            }
        }
    }

    private func transfers(_ status: String, _ remote: String) {
        counter("kafkasync_transfers_total", [("status", status), ("remote", remote)]).increment()
    }

    private func counter(_ label: String, _ dimensions: [(String, String)]) -> Counter {
        let key = [label] + dimensions.flatMap { [$0.0, $0.1] }
        return counters.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(label: label, dimensions: dimensions)
            counters[key] = counter
            return counter
        }
    }

    /// The remote's name as a label (the default remote's for none), `unknown` for a name the config does not define.
    private func label(_ remote: String?) -> String {
        config.remote(named: remote)?.name ?? "unknown"
    }
}

