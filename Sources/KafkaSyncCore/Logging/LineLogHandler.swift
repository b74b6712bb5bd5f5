import Foundation
import Logging
import Synchronization

/// Writes each log record as one line, as text or JSON, to standard error and optionally to a file.
///
/// Messages and metadata carry remote text (file names, server messages): control characters in them are
/// escaped, so a record is always one line and nothing reaches a terminal as a control sequence.
public struct LineLogHandler: LogHandler {
    /// Where lines go; shared by every logger of the process.
    ///
    /// Lines are written with `write(2)`: a failing log file (a full disk, `/dev/full`, a vanished NFS mount)
    /// drops its lines, counted in ``droppedLines`` and announced once on standard error, and never stops or
    /// crashes the process (Foundation's `FileHandle.write` traps on errors).
    public final class Outputs: Sendable {
        private struct FileState {
            var dropped = 0
            var failing = false
        }

        let format: ConsumerSettings.LogFormat
        private let path: String?
        /// Owned: closed in `deinit`.
        private let file: Int32?
        private let standardError: Int32?
        private let state = Mutex(FileState())

        /// Standard error, plus `file` (appended to, created when missing) when given.
        /// - Throws: `CocoaError` naming the file when it cannot be opened.
        public convenience init(format: ConsumerSettings.LogFormat, file path: String?) throws {
            try self.init(format: format, file: path, standardError: STDERR_FILENO)
        }

        /// As the public initializer, with standard error replaceable (`nil`: file only) for tests.
        init(format: ConsumerSettings.LogFormat, file path: String?, standardError: Int32?) throws {
            self.format = format
            self.path = path
            self.standardError = standardError
            guard let path else {
                file = nil
                return
            }
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else {
                let code = POSIXErrorCode(rawValue: errno) ?? .EIO
                throw CocoaError(code == .EACCES || code == .EPERM ? .fileWriteNoPermission : .fileWriteUnknown,
                                 userInfo: [NSFilePathErrorKey: path, NSUnderlyingErrorKey: POSIXError(code)])
            }
            file = descriptor
        }

        deinit {
            if let file { close(file) }
        }

        /// Lines the log file could not take (they still went to standard error).
        public var droppedLines: Int { state.withLock { $0.dropped } }

        func write(_ line: String) {
            let bytes = Array((line + "\n").utf8)
            state.withLock { state in
                if let standardError { _ = Self.write(bytes, to: standardError) }
                guard let file, let path else { return }
                if let error = Self.write(bytes, to: file) {
                    state.dropped += 1
                    if !state.failing, let standardError {
                        let warning = "kafkasync: cannot write the log file \(path) (\(String(cString: strerror(error)))): "
                            + "its lines are dropped until it works again; they still go to standard error\n"
                        _ = Self.write(Array(warning.utf8), to: standardError)
                    }
                    state.failing = true
                } else if state.failing {
                    state.failing = false
                    if let standardError {
                        let note = "kafkasync: the log file \(path) works again; \(state.dropped) lines were dropped in all\n"
                        _ = Self.write(Array(note.utf8), to: standardError)
                    }
                }
            }
        }

        /// Writes all of `bytes`; the `errno` of the failure, if any.
        private static func write(_ bytes: [UInt8], to descriptor: Int32) -> Int32? {
            var offset = 0
            while offset < bytes.count {
                let written = bytes.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
                if written < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += written
            }
            return nil
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
        outputs.write(Self.line(time: Date(), level: event.level, label: label, message: event.message,
                                metadata: metadata.merging(event.metadata ?? [:]) { $1 }, format: outputs.format))
    }

    /// One record as one line (without the newline).
    static func line(time: Date, level: Logger.Level, label: String, message: Logger.Message,
                     metadata: Logger.Metadata, format: ConsumerSettings.LogFormat) -> String {
        let time = time.formatted(.iso8601.time(includingFractionalSeconds: true).dateSeparator(.dash).year().month().day())
        let message = escapingControlCharacters("\(message)")
        switch format {
        case .text:
            let fields = metadata.sorted { $0.key < $1.key }
                .map { "\(escapingControlCharacters($0.key))=\(quotedIfNeeded("\($0.value)"))" }
            return ([time, level.rawValue, "\(label):", message] + fields).joined(separator: " ")
        case .json:
            var object: [String: String] = ["time": time, "level": level.rawValue, "logger": label, "message": message]
            for (key, value) in metadata { object[key] = escapingControlCharacters("\(value)") }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            return String(decoding: data, as: UTF8.self)
        }
    }

    /// A metadata value as is, or quoted (with `\\` and `\"` escaped) when it is empty or holds a space, `"`,
    /// `=` or a control character.
    static func quotedIfNeeded(_ text: String) -> String {
        guard text.isEmpty || text.unicodeScalars.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || needsEscaping($0) })
        else { return text }
        return "\"" + escapingControlCharacters(text.replacingOccurrences(of: "\\", with: "\\\\")
            .replacingOccurrences(of: "\"", with: "\\\"")) + "\""
    }

    /// `text` with every control character written out: `\n`, `\r`, `\t`, and `\u{1B}` for the others (C0,
    /// DEL, C1, the Unicode line and paragraph separators and the bidirectional overrides, which reorder what
    /// a terminal shows).
    static func escapingControlCharacters(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscaping) else { return text }
        var escaped = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": escaped.append(contentsOf: #"\n"#.unicodeScalars)
            case "\r": escaped.append(contentsOf: #"\r"#.unicodeScalars)
            case "\t": escaped.append(contentsOf: #"\t"#.unicodeScalars)
            case _ where needsEscaping(scalar):
                escaped.append(contentsOf: "\\u{\(String(scalar.value, radix: 16, uppercase: true))}".unicodeScalars)
            default: escaped.append(scalar)
            }
        }
        return String(escaped)
    }

    private static func needsEscaping(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0..<0x20, 0x7F...0x9F, 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }
}
