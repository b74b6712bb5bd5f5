import Foundation
import Logging
import TestSupport
import Testing
@testable import KafkaSyncCore

/// Log lines stay lines whatever remote text they carry, and a failing log file never stops the process.
@Suite struct LineLogHandlerTests {
    /// Text a hostile server could send as a file name or an error message.
    static let hostile = "evil\r\nfake line\u{1B}[31mred\u{0}end\u{9B}\u{2028}\u{202E}"

    /// Every record written to a log file (standard error left out), read back.
    func logged(_ format: ConsumerSettings.LogFormat, _ body: (Logger) -> Void) throws -> String {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("logs/test.log")
        let outputs = try LineLogHandler.Outputs(format: format, file: path, standardError: nil)
        body(Logger(label: "kafkasync.test") { LineLogHandler(label: $0, outputs: outputs, level: .trace) })
        return try String(contentsOfFile: path, encoding: .utf8)
    }

    @Test func controlCharactersInMessagesAndMetadataAreEscapedOnOneLine() throws {
        let text = try logged(.text) { logger in
            logger.error("transfer failed: \(Self.hostile)", metadata: ["remote.message": "\(Self.hostile)", "plain": "ok"])
        }
        #expect(text.hasSuffix("\n"))
        let line = String(text.dropLast())
        #expect(!line.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) || $0.value == 0x2028 || $0.value == 0x202E },
                "no control character left: \(line.debugDescription)")
        let escaped = #"evil\r\nfake line\u{1B}[31mred\u{0}end\u{9B}\u{2028}\u{202E}"#
        #expect(line.contains("kafkasync.test: transfer failed: " + escaped + " "))
        #expect(line.hasSuffix(#" plain=ok remote.message=""# + escaped + #"""#))
    }

    @Test func quotedValuesStayUnambiguous() {
        #expect(LineLogHandler.quotedIfNeeded("a b") == #""a b""#)
        #expect(LineLogHandler.quotedIfNeeded(#"C:\dir"#) == #"C:\dir"#)
        #expect(LineLogHandler.quotedIfNeeded("x\\\"\n") == #""x\\\"\n""#, "backslash, quote, newline: each escaped once")
        #expect(LineLogHandler.quotedIfNeeded("") == #""""#)
    }

    @Test func jsonLinesCarryTheSameEscapedText() throws {
        let text = try logged(.json) { $0.warning("\(Self.hostile)", metadata: ["name": "\(Self.hostile)"]) }
        let lines = text.split(separator: "\n")
        #expect(lines.count == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: String])
        let escaped = #"evil\r\nfake line\u{1B}[31mred\u{0}end\u{9B}\u{2028}\u{202E}"#
        #expect(object["message"] == escaped)
        #expect(object["name"] == escaped)
    }

    @Test func aFullLogFileDropsLinesInsteadOfCrashing() throws {
        let outputs = try LineLogHandler.Outputs(format: .text, file: "/dev/full", standardError: nil)
        let logger = Logger(label: "kafkasync.test") { LineLogHandler(label: $0, outputs: outputs, level: .info) }
        for index in 0..<3 { logger.info("line \(index)") }
        #expect(outputs.droppedLines == 3)
    }
}
