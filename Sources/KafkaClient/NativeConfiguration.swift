import CRdKafka

/// librdkafka property names.
public enum KafkaProperty {
    /// Whether a property's value is a secret (SASL passwords, key material, tokens) that must never be echoed
    /// in errors, logs or `config check`.
    public static func isSecret(_ key: String) -> Bool {
        let lower = key.lowercased()
        return ["password", "secret", "jaas", "key.pem", "token", "credentials"].contains { lower.contains($0) }
    }
}

/// Builds an `rd_kafka_conf_t` from key/value properties; the result is owned by whoever calls `rd_kafka_new`.
enum NativeConfiguration {
    /// Creates a configuration with `properties` applied in order; later entries win.
    /// - Throws: ``KafkaError/Code/configuration`` naming the property (never a secret value).
    static func make(_ properties: [(String, String)]) throws(KafkaError) -> OpaquePointer {
        let conf = rd_kafka_conf_new()!
        var errstr = [CChar](repeating: 0, count: 512)
        for (key, value) in properties {
            let result = rd_kafka_conf_set(conf, key, value, &errstr, errstr.count)
            if result != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                let reason = cString(errstr)
                let shown = KafkaProperty.isSecret(key) ? "<redacted>" : "\"\(value)\""
                throw .configuration("Kafka property \(key) = \(shown) was rejected: \(reason)")
            }
        }
        return conf
    }

    /// Creates a client handle from a configuration, taking ownership of `conf`.
    static func newHandle(_ type: rd_kafka_type_t, _ conf: OpaquePointer) throws(KafkaError) -> OpaquePointer {
        var errstr = [CChar](repeating: 0, count: 512)
        guard let handle = rd_kafka_new(type, conf, &errstr, errstr.count) else {
            rd_kafka_conf_destroy(conf)
            throw .configuration("could not create Kafka client: \(cString(errstr))")
        }
        return handle
    }
}

/// Routes librdkafka's log lines to swift-log. librdkafka calls this from its own threads.
/// The handle's opaque must point to a ``LoggingContext`` that outlives the handle.
func kafkaLogCallback(_ rk: OpaquePointer?, _ level: Int32, _ facility: UnsafePointer<CChar>?,
                      _ buffer: UnsafePointer<CChar>?) {
    guard let rk, let opaque = rd_kafka_opaque(rk) else { return }
    let context = Unmanaged<AnyObject>.fromOpaque(opaque).takeUnretainedValue()
    guard let logging = context as? LoggingContext else { return }
    let text = buffer.map { String(cString: $0) } ?? ""
    let fac = facility.map { String(cString: $0) } ?? ""
    // Libraries log at info or below: the daemon decides what the user sees.
    let swiftLevel: Logger.Level = level <= 4 ? .info : (level <= 6 ? .debug : .trace)
    logging.logger.log(level: swiftLevel, "librdkafka: \(text)", metadata: ["kafka.facility": "\(fac)"])
}

/// Something that can receive librdkafka's log lines: the object a handle's opaque points to.
protocol LoggingContext: AnyObject, Sendable {
    var logger: Logger { get }
}

/// The opaque of handles that need nothing but logging.
final class LogSink: LoggingContext {
    let logger: Logger
    init(logger: Logger) { self.logger = logger }
}

import Logging

/// Decodes a NUL-terminated C buffer (librdkafka's `errstr`).
func cString(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
