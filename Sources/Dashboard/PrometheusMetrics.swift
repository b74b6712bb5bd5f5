import KafkaSyncCore
import Metrics
import Prometheus

/// The process's metrics in Prometheus's text format: swift-metrics bootstrapped with swift-prometheus, the
/// histogram buckets of KafkaSync's metrics, and `kafkasync_build_info`.
public struct PrometheusMetrics: Sendable {
    private let registry: PrometheusCollectorRegistry

    /// Makes Prometheus the process's metrics backend (once per process, before any metric is created).
    public static func bootstrap() -> PrometheusMetrics {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        let transferSeconds: [Double] = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600]
        let storeSeconds: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]
        let sizes: [Double] = [1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10]
        factory.durationHistogramBuckets = [
            "kafkasync_transfer_duration_seconds": transferSeconds.map(Self.duration),
            "kafkasync_store_write_seconds": storeSeconds.map(Self.duration),
        ]
        factory.valueHistogramBuckets = ["kafkasync_transfer_size_bytes": sizes]
        MetricsSystem.bootstrap(factory)
        Gauge(label: "kafkasync_build_info", dimensions: [("version", BuildInfo.version), ("commit", BuildInfo.commit)])
            .record(1)
        return PrometheusMetrics(registry: registry)
    }

    private static func duration(_ seconds: Double) -> Duration { .microseconds(Int64(seconds * 1_000_000)) }

    /// The text exposition of every metric.
    @Sendable public func render() -> String {
        registry.emitToString()
    }
}
