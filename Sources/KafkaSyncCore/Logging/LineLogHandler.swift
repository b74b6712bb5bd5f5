import Foundation
import Logging
import Synchronization

/// Writes each log record as one line, as text or JSON, to standard error and optionally to a file.
public struct LineLogHandler: LogHandler {
    /// Where lines go; shared by every logger of the process.
    public final class Outputs: Sendable {
        private let file: Mutex<FileHandle?>
        let format: ConsumerSettings.LogFormat

        /// Standard error, plus `file` (appended to, created when missing) when given.
        /// - Throws: when the file cannot be opened.
        public init(format: ConsumerSettings.LogFormat, file path: String?) throws {
            self.format = format
            if let path {
                try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                        withIntermediateDirectories: true)
                if !FileManager.default.fileExists(atPath: path) {
                    _ = FileManager.default.createFile(atPath: path, contents: nil)
                }
                guard let handle = FileHandle(forWritingAtPath: path) else {
                    throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
                }
                handle.seekToEndOfFile()
                file = Mutex(handle)
            } else {
                file = Mutex(nil)
            }
        }

        func write(_ line: String) {
            let data = Data((line + "\n").utf8)
            file.withLock { file in
                FileHandle.standardError.write(data)
                file?.write(data)
            }
        }
    }

    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let label: String
    private let outputs: Outputs

    /// A handler for `label` writing to `outputs`.
    public init(label: String, outputs: Outputs, level: Logger.Level) {
        self.label = label
        self.outputs = outputs
        logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let (level, message) = (event.level, event.message)
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let time = Date().formatted(.iso8601.time(includingFractionalSeconds: true).dateSeparator(.dash).year().month().day())
        switch outputs.format {
        case .text:
            let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.quotedIfNeeded("\($0.value)"))" }
            outputs.write(([time, level.rawValue, "\(label):", "\(message)"] + fields).joined(separator: " "))
        case .json:
            var object: [String: String] = ["time": time, "level": level.rawValue, "logger": label,
                                            "message": "\(message)"]
            for (key, value) in merged { object[key] = "\(value)" }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            outputs.write(String(decoding: data, as: UTF8.self))
        }
    }

    static func quotedIfNeeded(_ text: String) -> String {
        guard text.isEmpty || text.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0.isNewline }) else {
            return text
        }
        return "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n") + "\""
    }
}
