import Foundation
import Testing
@testable import KafkaSyncCore

/// One hostile message and the reason it must be rejected with.
struct HostileInput: CustomTestStringConvertible, Sendable {
    let label: String
    let bytes: [UInt8]
    let reason: String

    init(_ label: String, _ json: String, _ reason: String) {
        self.label = label
        self.bytes = Array(json.utf8)
        self.reason = reason
    }

    init(_ label: String, bytes: [UInt8], _ reason: String) {
        self.label = label
        self.bytes = bytes
        self.reason = reason
    }

    var testDescription: String { label }

    /// A job whose `name` is `name` (escaped as JSON).
    static func name(_ label: String, _ name: String, _ reason: String) -> HostileInput {
        HostileInput(label, #"{"name": \#(jsonString(name)), "location": "/data/"}"#, reason)
    }

    static func field(_ label: String, _ key: String, _ rawValue: String, _ reason: String) -> HostileInput {
        HostileInput(label, #"{"name": "a.bin", "location": "/data/", "\#(key)": \#(rawValue)}"#, reason)
    }
}

func jsonString(_ text: String) -> String {
    String(decoding: try! JSONEncoder().encode(text), as: UTF8.self)
}

let hostileInputs: [HostileInput] = [
    .name("dot-dot", "..", "path_traversal"),
    .name("dot-dot prefix", "../../etc/passwd", "path_traversal"),
    .name("dot-dot in the middle", "a/../../b", "path_traversal"),
    .name("dot-dot at the end", "films/..", "path_traversal"),
    .name("backslash dot-dot", "..\\..\\windows", "path_traversal"),
    .name("mixed separators", "a\\../b", "path_traversal"),
    .name("percent-encoded dot-dot", "%2e%2e/secret", "path_traversal"),
    .name("percent-encoded slash", "..%2fetc", "path_traversal"),
    .name("absolute name", "/etc/passwd", "absolute_path"),
    .name("backslash absolute", "\\server\\share", "absolute_path"),
    .name("drive letter", "C:\\Windows\\system32", "absolute_path"),
    .name("home-relative", "~/.ssh/id_rsa", "absolute_path"),
    .name("empty component", "a//b", "invalid_path"),
    .name("dot component", "./a", "invalid_path"),
    .name("NUL", "a\u{0}b", "control_character"),
    .name("newline", "a\nb", "control_character"),
    .name("escape sequence", "\u{1b}[31mred", "control_character"),
    .name("C1 control", "a\u{85}b", "control_character"),
    .name("empty name", "", "empty_field"),
    .name("oversized name", String(repeating: "n", count: 1025), "field_too_long"),
    HostileInput("control character in location", #"{"name": "a", "location": "/x\u0007/"}"#, "control_character"),
    HostileInput("dot-dot in location", #"{"name": "a", "location": "/srv/../etc"}"#, "path_traversal"),
    HostileInput("empty location", #"{"name": "a", "location": ""}"#, "empty_field"),
    HostileInput("missing name", #"{"location": "/x"}"#, "missing_field"),
    HostileInput("missing location", #"{"name": "a"}"#, "missing_field"),
    HostileInput("null name", #"{"name": null, "location": "/x"}"#, "missing_field"),
    HostileInput("name is a number", #"{"name": 5, "location": "/x"}"#, "wrong_type"),
    HostileInput("name is an array", #"{"name": ["a"], "location": "/x"}"#, "wrong_type"),
    .field("info_hash is an object", "info_hash", "{}", "wrong_type"),
    .field("size is a string", "size", #""10""#, "wrong_type"),
    .field("size is a boolean", "size", "true", "wrong_type"),
    .field("size is fractional", "size", "1.5", "invalid_size"),
    .field("size is negative", "size", "-1", "invalid_size"),
    .field("size is beyond 2^53", "size", "9007199254740993", "invalid_size"),
    .field("unknown checksum algorithm", "checksum", #""crc32:deadbeef""#, "unknown_checksum_algorithm"),
    .field("checksum without algorithm", "checksum", #""deadbeef""#, "invalid_checksum"),
    .field("checksum too short", "checksum", #""sha256:abc""#, "invalid_checksum"),
    .field("checksum not hex", "checksum", "\"md5:\(String(repeating: "z", count: 32))\"", "invalid_checksum"),
    .field("destination escaping completes", "destination", #""../outside""#, "path_traversal"),
    .field("absolute destination", "destination", #""/etc""#, "absolute_path"),
    .field("bad remote name", "remote", #""a b""#, "invalid_remote"),
    .field("bad kind", "kind", #""symlink""#, "invalid_kind"),
    .field("oversized info_hash", "info_hash", jsonString(String(repeating: "h", count: 257)), "field_too_long"),
    HostileInput("oversized message", #"{"name": "a", "location": "/x", "pad": "\#(String(repeating: "p", count: 70_000))"}"#, "too_large"),
    HostileInput("deep nesting", String(repeating: "[", count: 1000) + String(repeating: "]", count: 1000), "too_deep"),
    HostileInput("deep nesting inside a field", #"{"name": "a", "location": "/x", "extra": \#(String(repeating: "{\"a\":", count: 40))1\#(String(repeating: "}", count: 40))}"#, "too_deep"),
    HostileInput("invalid UTF-8", bytes: [0x7B, 0x22, 0x6E, 0x22, 0x3A, 0x22, 0xFF, 0xFE, 0x22, 0x7D], "invalid_utf8"),
    HostileInput("not JSON", "name=a location=/x", "invalid_json"),
    HostileInput("truncated JSON", #"{"name": "a", "location": "/x""#, "invalid_json"),
    HostileInput("empty message", "", "invalid_json"),
    HostileInput("top-level array", #"[{"name": "a", "location": "/x"}]"#, "not_an_object"),
    HostileInput("top-level string", #""a""#, "not_an_object"),
    HostileInput("null", "null", "not_an_object"),
]

@Suite struct TransferJobTests {
    @Test(arguments: hostileInputs)
    func hostileInputIsRejectedWithItsReason(_ input: HostileInput) {
        #expect(throws: JobRejection.self) { try TransferJob.decode(input.bytes) }
        do {
            _ = try TransferJob.decode(input.bytes)
        } catch {
            #expect(error.reason.code == input.reason, "\(error.message)")
            #expect(error.message.count < 400, "messages never echo large inputs")
            #expect(!error.message.contains("\u{0}") && !error.message.contains("\u{1b}"))
        }
    }

    @Test func thereAreEnoughHostileInputs() {
        #expect(hostileInputs.count >= 30)
        #expect(Set(hostileInputs.map(\.label)).count == hostileInputs.count)
    }

    @Test func originalFormatDecodesUnchanged() throws {
        let original = #"{"info_hash": "12345abcdef", "name": "my-test-file.mkv", "location": "/path/to/remote/files/"}"#
        let job = try TransferJob.decode(Array(original.utf8))
        #expect(job.id == "12345abcdef")
        #expect(job.infoHash == "12345abcdef")
        #expect(job.name == "my-test-file.mkv")
        #expect(job.location == "/path/to/remote/files/")
        #expect(job.kind == .auto)
        #expect(job.checksum == nil && job.size == nil && job.remote == nil && job.destination == nil)
        #expect(job.remotePath == "/path/to/remote/files/my-test-file.mkv")
    }

    @Test func originalFormatRoundTripsToTheOriginalKeys() throws {
        let job = try TransferJob(name: "f.mkv", location: "/in", infoHash: "abc")
        let object = try #require(JSONSerialization.jsonObject(with: Data(job.encodedJSON())) as? [String: String])
        #expect(object == ["info_hash": "abc", "name": "f.mkv", "location": "/in"])
        #expect(try TransferJob.decode(job.encodedJSON()) == job)
    }

    @Test func everyOptionalFieldDecodesAndRoundTrips() throws {
        let json = """
            {"id": "client-7", "info_hash": "h", "name": "season 1/ep 01.mkv", "location": "shows",
             "checksum": "SHA256:\(String(repeating: "AB", count: 32))", "size": 1048576, "remote": "backup.eu-1",
             "destination": "tv/shows", "kind": "file", "future_field": {"ignored": true}}
            """
        let job = try TransferJob.decode(Array(json.utf8))
        #expect(job.id == "client-7")
        #expect(job.checksum?.algorithm == .sha256)
        #expect(job.checksum?.hex == String(repeating: "ab", count: 32), "hex normalized to lowercase")
        #expect(job.size == 1_048_576)
        #expect(job.remote == "backup.eu-1")
        #expect(job.destination == "tv/shows")
        #expect(job.kind == .file)
        #expect(job.remotePath == "shows/season 1/ep 01.mkv")
        #expect(try TransferJob.decode(job.encodedJSON()) == job)
    }

    @Test func derivedIDIsStableAndDependsOnRemoteLocationAndName() throws {
        let a = try TransferJob(name: "x", location: "/a")
        let again = try TransferJob(name: "x", location: "/a")
        let otherLocation = try TransferJob(name: "x", location: "/b")
        let otherRemote = try TransferJob(name: "x", location: "/a", remote: "r2")
        #expect(a.id == again.id)
        #expect(a.id.hasPrefix("job-") && a.id.count == 20)
        #expect(a.id != otherLocation.id)
        #expect(a.id != otherRemote.id)
        #expect(try TransferJob(name: "x", location: "/a", infoHash: "").id == a.id, "an empty hash is no hash")
        #expect(try TransferJob.decode(a.encodedJSON()).id == a.id)
    }

    @Test func validatingInitRejectsWhatDecodeRejects() {
        #expect { try TransferJob(name: "../x", location: "/") } throws: {
            ($0 as? JobRejection)?.reason == .pathTraversal
        }
        #expect { try TransferJob(name: "x", location: "/", checksum: "crc32:00") } throws: {
            ($0 as? JobRejection)?.reason == .unknownChecksumAlgorithm
        }
        #expect { try TransferJob(name: "x", location: "/", size: -5) } throws: {
            ($0 as? JobRejection)?.reason == .invalidSize
        }
        #expect { try TransferJob.Kind(parsing: "folder") } throws: { ($0 as? JobRejection)?.reason == .invalidKind }
    }

    @Test func acceptedEdgeCases() throws {
        #expect(try TransferJob.decode(Array(#"{"name": "dir/", "location": "/x", "size": 0}"#.utf8)).size == 0)
        #expect(try TransferJob.decode(Array(#"{"name": "a..b", "location": "/x"}"#.utf8)).name == "a..b")
        #expect(try TransferJob.decode(Array(#"{"name": "ünïcødé 名前.txt", "location": "~/in"}"#.utf8)).name == "ünïcødé 名前.txt")
        #expect(try TransferJob.decode(Array(#"{"name": "a", "location": "/x", "destination": ""}"#.utf8)).destination == nil)
        let head = #"{"name": "a", "location": "/x", "pad": ""#, tail = #""}"#
        let exactlyAtLimit = head + String(repeating: "p", count: 65_536 - head.utf8.count - tail.utf8.count) + tail
        #expect(exactlyAtLimit.utf8.count == 65_536)
        #expect(try TransferJob.decode(Array(exactlyAtLimit.utf8)).name == "a")
    }

    @Test func rejectionMessagesEscapeAndTruncateTheInput() {
        do {
            _ = try TransferJob(name: "/" + String(repeating: "x", count: 500) + "\u{1b}", location: "/")
            Issue.record("accepted an absolute name")
        } catch {
            #expect(error.message.contains("…"))
            #expect(error.message.count < 200)
        }
    }
}
