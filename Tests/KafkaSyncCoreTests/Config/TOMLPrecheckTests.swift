import Foundation
import Testing
@testable import KafkaSyncCore

/// Inputs found by scripts/fuzz (FuzzConfigLoader) that made TOMLKit's toml++ abort the process.
@Suite struct TOMLPrecheckTests {
    static let validRest = """

        [remoteDetails]
        host = "h"
        username = "u"
        password = "p"

        [locations]
        incompletes = "/tmp/in"
        completes = "/tmp/out"
        """

    func issues(_ toml: String) -> [ConfigIssue]? {
        do {
            _ = try KafkaSyncConfig.parse(toml: toml, configFile: "/nonexistent/config.toml", environment: [:])
            return nil
        } catch {
            return error.issues
        }
    }

    @Test(arguments: [
        "when = 1979-05-27T`07:32:00Z",
        "when = 1979-05-27t:",
        "when = 1979-05-27Tx:00",
        "when = [1979-05-27T:]",
        "when = {b = 1979-05-27t+:}",
        "when = 1979-05-27T=07:32:00Z",
        // The input the fuzzer found, as it found it.
        "kafka_url = 9094\nnum_threads = 1e3\ndebug_level = true\nremoteDetails = [1, \"two\", 3.0, {a = 1}]\nwhen = 1979-05-27T`07:32:00Z\n[lowo\", 3.0, {a = 1}]\n",
    ])
    func aDateTimeWithoutATimeIsASyntaxErrorNotAnAbort(_ toml: String) {
        let found = issues("# line 1\n" + toml + Self.validRest)
        #expect(found?.first?.code == .syntax, "\(String(describing: found))")
        let line = 2 + toml.split(separator: "\n").firstIndex { $0.contains("1979-05-27") }!
        #expect(found?.first?.key == "config.toml line \(line)")
    }

    @Test(arguments: ["[%]", "[ .a]", "[\u{FFFD}fka]", "  [[ é]]", "[a]\n[+]", "[#[consumer]]", "[", "[{", "[[#]]", "a = 1\n[\n", "[[[", "\u{FEFF}[%]"])
    func aTableHeaderThatCannotStartAKeyIsASyntaxErrorNotAnAbort(_ header: String) {
        let found = issues(header + Self.validRest)
        #expect(found?.first?.code == .syntax, "\(String(describing: found))")
        #expect(found?.first?.expected.contains("table header") == true)
    }

    @Test(arguments: ["a = [}]", "a = [1,}]", "a = [ }]", "a = [\n}]", "a = {b = [}]}", "a = [#c\n}]", "a = [[}]]",
                      "kafka_urmoteDekafka_urmoteDetails = [}]\nwhen = 1979-05-27T\n"])
    func aBraceInsideAnArrayIsASyntaxErrorNotAnAbort(_ toml: String) {
        let found = issues(toml + Self.validRest)
        #expect(found?.first?.code == .syntax, "\(String(describing: found))")
        #expect(found?.first?.expected.contains("cannot close an array") == true)
    }

    @Test func theSameTextInStringsAndCommentsIsFine() {
        let toml = """
            kafka_url = "1979-05-27T:9094" # 1979-05-27T:x
            num_threads = 4
            debug_level = 'info'
            [kafka.properties]
            "a" = '''
            1979-05-27T:'' '''
            "b" = \"\"\"\\
            1979-05-27T:\"\"\"\"\"
            "c" = "\\"1979-05-27T:"
            "e" = "\\n[%]"
            """ + Self.validRest
        #expect(issues(toml) == nil)
        #expect(TOMLPrecheck.problem(toml + "\nx = 2026-01-01T-:")?.line == 19)
        #expect(TOMLPrecheck.problem("d = [\n  [ [1], {} ],\n  [],\n  [\n    1,\n  ],\n  [{a = 1}],\n]\n[t]\n") == nil,
                "lines of a multi-line array start with [ too")
    }
}
