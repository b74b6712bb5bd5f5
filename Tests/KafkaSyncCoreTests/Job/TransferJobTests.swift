import Foundation
import Testing
@testable import KafkaSyncCore

/// One hostile message, the reason it must be rejected with and, when the validating init can express
/// the same job, that init call.
struct HostileInput: CustomTestStringConvertible, Sendable {
    typealias Build = @Sendable () throws(JobRejection) -> TransferJob

    let label: String
    let bytes: [UInt8]
    let reason: String
    let viaInit: Build?

    init(_ label: String, _ json: String, _ reason: String, viaInit: Build? = nil) {
        self.init(label, bytes: Array(json.utf8), reason, viaInit: viaInit)
    }

    init(_ label: String, bytes: [UInt8], _ reason: String, viaInit: Build? = nil) {
        self.label = label
        self.bytes = bytes
        self.reason = reason
        self.viaInit = viaInit
    }

    var testDescription: String { label }

    /// A valid job with the string field `key` set to `value`, and the init call setting the same.
    static func string(_ label: String, _ key: String, _ value: String, _ reason: String,
                       viaInit: @escaping @Sendable (String) throws(JobRejection) -> TransferJob) -> HostileInput {
        let fields = ["name": "a.bin", "location": "/data/"].merging([key: value]) { $1 }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let json = String(decoding: try! encoder.encode(fields), as: UTF8.self)
        return HostileInput(label, json, reason, viaInit: { () throws(JobRejection) in try viaInit(value) })
    }

    /// A valid job with the name `name`.
    static func name(_ label: String, _ name: String, _ reason: String) -> HostileInput {
        .string(label, "name", name, reason) { (name) throws(JobRejection) in
            try TransferJob(name: name, location: "/data/")
        }
    }

    /// A valid job plus `"key": rawValue`, for values of the wrong JSON type.
    static func raw(_ label: String, _ key: String, _ rawValue: String, _ reason: String,
                    viaInit: Build? = nil) -> HostileInput {
        HostileInput(label, #"{"name": "a.bin", "location": "/data/", "\#(key)": \#(rawValue)}"#, reason, viaInit: viaInit)
    }
}

private let hex64 = String(repeating: "ab", count: 32)

let hostileInputs: [HostileInput] = [
    // Path traversal in every spelling.
    .name("dot-dot", "..", "path_traversal"),
    .name("dot-dot prefix", "../../etc/passwd", "path_traversal"),
    .name("dot-dot in the middle", "a/../../b", "path_traversal"),
    .name("dot-dot at the end", "films/..", "path_traversal"),
    .name("backslash dot-dot", "..\\..\\windows", "path_traversal"),
    .name("dot backslash dot-dot", ".\\..", "path_traversal"),
    .name("mixed separators", "a\\../b", "path_traversal"),
    .name("percent-encoded dot-dot", "%2e%2e/secret", "path_traversal"),
    .name("upper-case percent-encoded dot-dot", "a/%2E%2E", "path_traversal"),
    .name("percent-encoded slash", "..%2fetc", "path_traversal"),
    .name("percent-encoded backslash", "%2e%2e%5cx", "path_traversal"),
    // Absolute and otherwise invalid names.
    .name("absolute name", "/etc/passwd", "absolute_path"),
    .name("backslash absolute", "\\server\\share", "absolute_path"),
    .name("drive letter", "C:\\Windows\\system32", "absolute_path"),
    .name("drive letter with slash", "d:/x", "absolute_path"),
    .name("home-relative", "~/.ssh/id_rsa", "absolute_path"),
    .name("empty component", "a//b", "invalid_path"),
    .name("dot component", "./a", "invalid_path"),
    .name("lone dot", ".", "invalid_path"),
    // Words a program (lftp) would read as an option or a URL.
    .name("option-like name", "-O", "invalid_path"),
    .name("option-like name with a value", "--use-pget-n=99", "invalid_path"),
    .name("file: name", "file:etc/passwd", "invalid_path"),
    .name("sftp: name", "SFTP:x", "invalid_path"),
    .name("bookmark name", "bm:home", "invalid_path"),
    .name("slot name", "slot:1", "invalid_path"),
    .string("option-like location", "location", "-O/tmp/x", "invalid_path") { (value) throws(JobRejection) in
        try TransferJob(name: "a.bin", location: value)
    },
    // A combining mark makes "-" and it one Character, but lftp still reads a leading "-".
    .string("option-like location with a combining mark", "location", "-\u{301}O/tmp/x", "invalid_path") { (value) throws(JobRejection) in
        try TransferJob(name: "a.bin", location: value)
    },
    .string("sftp URL location", "location", "sftp://evil.example/srv", "invalid_path") { (value) throws(JobRejection) in
        try TransferJob(name: "a.bin", location: value)
    },
    .string("file: location", "location", "file:/etc", "invalid_path") { (value) throws(JobRejection) in
        try TransferJob(name: "passwd", location: value)
    },
    .string("http: location without slashes", "location", "http:evil", "invalid_path") { (value) throws(JobRejection) in
        try TransferJob(name: "a.bin", location: value)
    },
    .string("unknown scheme with a slash", "location", "x-custom+v1.2:/srv", "invalid_path") { (value) throws(JobRejection) in
        try TransferJob(name: "a.bin", location: value)
    },
    // Control characters.
    .name("NUL", "a\u{0}b", "control_character"),
    .name("newline", "a\nb", "control_character"),
    .name("escape sequence", "\u{1b}[31mred", "control_character"),
    .name("DEL", "a\u{7f}", "control_character"),
    .name("C1 control", "a\u{85}b", "control_character"),
    .string("control character in location", "location", "/x\u{7}/", "control_character") { (value) throws(JobRejection) in
        try TransferJob(name: "a.bin", location: value)
    },
    .string("control character in id", "id", "job\r\n1", "control_character") { (value) throws(JobRejection) in
        try TransferJob(name: "a.bin", location: "/data/", id: value)
    },
    .string("NUL in info_hash", "info_hash", "ab\u{0}", "control_character") { (value) throws(JobRejection) in
        try TransferJob(name: "a.bin", location: "/data/", infoHash: value)
    },
    .string("NUL in checksum", "checksum", "md5:\u{0}", "control_character") { (value) throws(JobRejection) in
        try TransferJob(name: "a.bin", location: "/data/", checksum: value)
    },
    .string("newline in remote", "remote", "eu\n", "control_character") { (value) throws(JobRejection) in
        try TransferJob(name: "a.bin", location: "/data/", remote: value)
    },
    .string("escaped control character in destination", "destination", "tv\u{1b}", "control_character") { (value) throws(JobRejection) in
        try TransferJob(name: "a.bin", location: "/data/", destination: value)
    },
    // Empty and oversized strings.
    .name("empty name", "", "empty_field"),
    .string("empty location", "location", "", "empty_field") { (value) throws(JobRejection) in
        try TransferJob(name: "a.bin", location: value)
    },
    .name("oversized name", String(repeating: "n", count: 1025), "field_too_long"),
    .string("oversized location", "location", "/" + String(repeating: "l", count: 4096), "field_too_long") { (value) throws(JobRejection) in
        try TransferJob(name: "a.bin", location: value)
    },
    .string("oversized info_hash", "info_hash", String(repeating: "h", count: 257), "field_too_long") { (value) throws(JobRejection) in
        try TransferJob(name: "a.bin", location: "/data/", infoHash: value)
    },
    .string("oversized id", "id", String(repeating: "i", count: 257), "field_too_long") { (value) throws(JobRejection) in
        try TransferJob(name: "a.bin", location: "/data/", id: value)
    },
    // Location.
    .string("dot-dot in location", "location", "/srv/../etc", "path_traversal") { (value) throws(JobRejection) in
        try TransferJob(name: "a.bin", location: value)
    },
    .string("percent-encoded dot-dot in location", "location", "/srv/%2e%2e", "path_traversal") { (value) throws(JobRejection) in
        try TransferJob(name: "a.bin", location: value)
    },
    // Destination.
    .string("destination escaping completes", "destination", "../outside", "path_traversal") { (value) throws(JobRejection) in
        try TransferJob(name: "a.bin", location: "/data/", destination: value)
    },
    .string("destination escaping from inside", "destination", "tv/../../x", "path_traversal") { (value) throws(JobRejection) in
        try TransferJob(name: "a.bin", location: "/data/", destination: value)
    },
    .string("absolute destination", "destination", "/etc", "absolute_path") { (value) throws(JobRejection) in
        try TransferJob(name: "a.bin", location: "/data/", destination: value)
    },
    .string("drive-letter destination", "destination", "C:\\x", "absolute_path") { (value) throws(JobRejection) in
        try TransferJob(name: "a.bin", location: "/data/", destination: value)
    },
    // Checksum.
    .string("unknown checksum algorithm", "checksum", "crc32:deadbeef", "unknown_checksum_algorithm") { (value) throws(JobRejection) in
        try TransferJob(name: "a.bin", location: "/data/", checksum: value)
    },
    .string("checksum without algorithm", "checksum", "deadbeef", "invalid_checksum") { (value) throws(JobRejection) in
        try TransferJob(name: "a.bin", location: "/data/", checksum: value)
    },
    .string("checksum too short", "checksum", "sha256:abc", "invalid_checksum") { (value) throws(JobRejection) in
        try TransferJob(name: "a.bin", location: "/data/", checksum: value)
    },
    .string("checksum too long", "checksum", "sha1:" + hex64, "invalid_checksum") { (value) throws(JobRejection) in
        try TransferJob(name: "a.bin", location: "/data/", checksum: value)
    },
    .string("checksum not hex", "checksum", "md5:" + String(repeating: "z", count: 32), "invalid_checksum") { (value) throws(JobRejection) in
        try TransferJob(name: "a.bin", location: "/data/", checksum: value)
    },
    .string("checksum in full-width hex digits", "checksum", "md5:" + String(repeating: "\u{FF41}", count: 32), "invalid_checksum") { (value) throws(JobRejection) in
        try TransferJob(name: "a.bin", location: "/data/", checksum: value)
    },
    // Remote and kind.
    .string("bad remote name", "remote", "a b", "invalid_remote") { (value) throws(JobRejection) in
        try TransferJob(name: "a.bin", location: "/data/", remote: value)
    },
    .string("empty remote name", "remote", "", "invalid_remote") { (value) throws(JobRejection) in
        try TransferJob(name: "a.bin", location: "/data/", remote: value)
    },
    .string("remote name too long", "remote", String(repeating: "r", count: 65), "invalid_remote") { (value) throws(JobRejection) in
        try TransferJob(name: "a.bin", location: "/data/", remote: value)
    },
    .string("bad kind", "kind", "symlink", "invalid_kind") { (value) throws(JobRejection) in
        try TransferJob(name: "a.bin", location: "/data/", kind: TransferJob.Kind(parsing: value))
    },
    // Size.
    .raw("size is negative", "size", "-1", "invalid_size") { () throws(JobRejection) in
        try TransferJob(name: "a.bin", location: "/data/", size: -1)
    },
    .raw("size is beyond 2^53", "size", "9007199254740993", "invalid_size") { () throws(JobRejection) in
        try TransferJob(name: "a.bin", location: "/data/", size: 9_007_199_254_740_993)
    },
    .raw("size is beyond Int64", "size", "99999999999999999999999", "invalid_size"),
    .raw("size is fractional", "size", "1.5", "wrong_type"),
    .raw("size is a string", "size", #""10""#, "wrong_type"),
    .raw("size is a boolean", "size", "true", "wrong_type"),
    // Wrong types.
    HostileInput("name is a number", #"{"name": 5, "location": "/x"}"#, "wrong_type"),
    HostileInput("name is an array", #"{"name": ["a"], "location": "/x"}"#, "wrong_type"),
    HostileInput("location is an object", #"{"name": "a", "location": {}}"#, "wrong_type"),
    .raw("info_hash is an object", "info_hash", "{}", "wrong_type"),
    .raw("id is a number", "id", "7", "wrong_type"),
    .raw("checksum is a number", "checksum", "12345", "wrong_type"),
    .raw("remote is a boolean", "remote", "false", "wrong_type"),
    .raw("destination is an array", "destination", #"["tv"]"#, "wrong_type"),
    .raw("kind is a number", "kind", "1", "wrong_type"),
    // Missing fields.
    HostileInput("missing name", #"{"location": "/x"}"#, "missing_field"),
    HostileInput("missing location", #"{"name": "a"}"#, "missing_field"),
    HostileInput("null name", #"{"name": null, "location": "/x"}"#, "missing_field"),
    HostileInput("empty object", "{}", "missing_field"),
    // The message as a whole.
    HostileInput("oversized message", #"{"name": "a", "location": "/x", "pad": "\#(String(repeating: "p", count: 70 * 1024))"}"#, "too_large"),
    HostileInput("deep nesting", String(repeating: "[", count: 1000) + String(repeating: "]", count: 1000), "too_deep"),
    HostileInput("deep nesting inside a field", #"{"name": "a", "location": "/x", "extra": \#(String(repeating: "{\"a\":", count: 40))1\#(String(repeating: "}", count: 40))}"#, "too_deep"),
    HostileInput("unclosed deep nesting", String(repeating: "{\"a\":[", count: 5000), "too_deep"),
    HostileInput("invalid UTF-8", bytes: [0x7B, 0x22, 0x6E, 0x22, 0x3A, 0x22, 0xFF, 0xFE, 0x22, 0x7D], "invalid_utf8"),
    HostileInput("bare invalid UTF-8", bytes: [0xFF, 0xFE], "invalid_utf8"),
    HostileInput("truncated UTF-8 sequence", bytes: Array(#"{"name": "é"#.utf8.dropLast()), "invalid_utf8"),
    HostileInput("not JSON", "name=a location=/x", "invalid_json"),
    HostileInput("truncated JSON", #"{"name": "a", "location": "/x""#, "invalid_json"),
    HostileInput("trailing garbage", #"{"name": "a", "location": "/x"} x"#, "invalid_json"),
    HostileInput("lone surrogate escape", #"{"name": "a\ud800", "location": "/x"}"#, "invalid_json"),
    HostileInput("empty message", "", "invalid_json"),
    HostileInput("top-level array", #"[{"name": "a", "location": "/x"}]"#, "not_an_object"),
    HostileInput("top-level string", #""a""#, "not_an_object"),
    HostileInput("top-level number", "42", "not_an_object"),
    HostileInput("null", "null", "not_an_object"),
]

private func decodeJob(_ json: String) throws(JobRejection) -> TransferJob {
    try TransferJob.decode(Array(json.utf8))
}

@Suite struct TransferJobTests {
    @Test(arguments: hostileInputs)
    func hostileInputIsRejectedWithItsReason(_ input: HostileInput) {
        let error = #expect(throws: JobRejection.self) { try TransferJob.decode(input.bytes) }
        #expect(error?.reason.code == input.reason, "\(error?.message ?? "accepted")")
        #expect((error?.message.count ?? 0) < 400, "messages never echo large inputs")
        #expect(error?.message.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }) == false)
    }

    @Test(arguments: hostileInputs.filter { $0.viaInit != nil })
    func validatingInitRejectsWhatDecodeRejects(_ input: HostileInput) throws {
        let build = try #require(input.viaInit)
        let error = #expect(throws: JobRejection.self) { try build() }
        #expect(error?.reason.code == input.reason, "\(error?.message ?? "accepted")")
    }

    @Test func thereAreEnoughHostileInputs() {
        #expect(hostileInputs.count >= 30)
        #expect(hostileInputs.filter { $0.viaInit != nil }.count >= 30)
        #expect(Set(hostileInputs.map(\.label)).count == hostileInputs.count, "labels are unique")
    }

    @Test func originalFormatDecodesUnchanged() throws {
        let job = try decodeJob(#"{"info_hash": "12345abcdef", "name": "my-test-file.mkv", "location": "/path/to/remote/files/"}"#)
        #expect(job.id == "12345abcdef")
        #expect(job.infoHash == "12345abcdef")
        #expect(job.name == "my-test-file.mkv")
        #expect(job.location == "/path/to/remote/files/")
        #expect(job.kind == .auto)
        #expect(job.checksum == nil && job.size == nil && job.remote == nil && job.destination == nil)
        #expect(job.remotePath == "/path/to/remote/files/my-test-file.mkv")
    }

    @Test func originalFormatRoundTripsToTheOriginalKeys() throws {
        let original = ["info_hash": "12345abcdef", "name": "my-test-file.mkv", "location": "/path/to/remote/files/"]
        let job = try TransferJob.decode(Array(try JSONEncoder().encode(original)))
        let encoded = job.encodedJSON()
        #expect(try JSONSerialization.jsonObject(with: Data(encoded)) as? [String: String] == original)
        #expect(!encoded.contains(UInt8(ascii: " ")) && !encoded.contains(UInt8(ascii: "\n")), "compact")
        #expect(try TransferJob.decode(encoded) == job)
    }

    @Test func everyOptionalFieldDecodesAndRoundTrips() throws {
        let job = try decodeJob("""
            {"id": "client-7", "info_hash": "h", "name": "season 1/ep 01.mkv", "location": "shows",
             "checksum": "SHA256:\(hex64.uppercased())", "size": 1048576, "remote": "backup.eu-1",
             "destination": "tv/shows", "kind": "file", "future_field": {"ignored": [true]}}
            """)
        #expect(job.id == "client-7")
        #expect(job.infoHash == "h")
        #expect(job.checksum == (try Checksum(parsing: "sha256:" + hex64)))
        #expect(job.size == 1_048_576)
        #expect(job.remote == "backup.eu-1")
        #expect(job.destination == "tv/shows")
        #expect(job.kind == .file)
        #expect(job.remotePath == "shows/season 1/ep 01.mkv")
        let encoded = try #require(JSONSerialization.jsonObject(with: Data(job.encodedJSON())) as? [String: Any])
        #expect(Set(encoded.keys) == ["id", "info_hash", "name", "location", "checksum", "size", "remote", "destination", "kind"])
        #expect(encoded["checksum"] as? String == "sha256:" + hex64)
        #expect(try TransferJob.decode(job.encodedJSON()) == job)
    }

    @Test func nullOptionalFieldsAreAbsent() throws {
        let job = try decodeJob(#"{"name": "a", "location": "/x", "id": null, "checksum": null, "size": null, "kind": null}"#)
        #expect(job == (try TransferJob(name: "a", location: "/x")))
    }

    @Test func derivedIDIsStableAndDependsOnRemoteLocationAndName() throws {
        let job = try TransferJob(name: "x", location: "/a")
        #expect(job.id == (try TransferJob(name: "x", location: "/a")).id)
        #expect(job.id.hasPrefix("job-") && job.id.count == 20)
        #expect(job.id.dropFirst(4).allSatisfy { "0123456789abcdef".contains($0) })
        #expect(job.id != (try TransferJob(name: "x", location: "/b")).id)
        #expect(job.id != (try TransferJob(name: "y", location: "/a")).id)
        #expect(job.id != (try TransferJob(name: "x", location: "/a", remote: "r2")).id)
        #expect(try TransferJob(name: "x", location: "/a", infoHash: "").id == job.id, "an empty hash is no hash")
        #expect(try TransferJob(name: "x", location: "/a", id: "").id == job.id, "an empty id is no id")
        #expect(try decodeJob(#"{"name": "x", "location": "/a"}"#).id == job.id)
        #expect(!job.encodedJSON().contains(UInt8(ascii: "j")), "a default id is not sent")
        #expect(try TransferJob.decode(job.encodedJSON()).id == job.id)
    }

    @Test func anExplicitIDIsKeptAndSent() throws {
        let job = try TransferJob(name: "x", location: "/a", infoHash: "h", id: "mine")
        #expect(job.id == "mine")
        #expect(try TransferJob.decode(job.encodedJSON()).id == "mine")
    }

    @Test(arguments: [
        ("MD5:" + String(repeating: "AbC1", count: 8), Checksum.Algorithm.md5, String(repeating: "abc1", count: 8)),
        ("Sha1:" + String(repeating: "F0", count: 20), .sha1, String(repeating: "f0", count: 20)),
        ("sha256:" + hex64, .sha256, hex64),
    ])
    func checksumIsNormalized(_ text: String, _ algorithm: Checksum.Algorithm, _ hex: String) throws {
        let checksum = try Checksum(parsing: text)
        #expect(checksum.algorithm == algorithm)
        #expect(checksum.hex == hex)
        #expect(checksum.description == "\(algorithm.rawValue):\(hex)")
        #expect(try JSONDecoder().decode(Checksum.self, from: JSONEncoder().encode(checksum)) == checksum)
    }

    @Test(arguments: [
        ("/path/to/remote/files/", "my-test-file.mkv", "/path/to/remote/files/my-test-file.mkv"),
        ("/in", "a.bin", "/in/a.bin"),
        ("/", "a.bin", "/a.bin"),
        ("in//", "d/e.bin", "in/d/e.bin"),
        ("~/in", "dir/", "~/in/dir/"),
    ])
    func remotePathJoinsWithExactlyOneSlash(_ location: String, _ name: String, _ expected: String) throws {
        #expect(try TransferJob(name: name, location: location).remotePath == expected)
    }

    @Test func acceptedEdgeCases() throws {
        #expect(try decodeJob(#"{"name": "dir/", "location": "/x", "size": 0}"#).size == 0)
        #expect(try decodeJob(#"{"name": "a", "location": "/x", "size": 9007199254740992}"#).size == 1 << 53)
        #expect(try decodeJob(#"{"name": "a", "location": "/x", "size": 1.0}"#).size == 1, "a whole number")
        #expect(try decodeJob(#"{"name": "a..b", "location": "/x"}"#).name == "a..b")
        #expect(try decodeJob(#"{"name": "...", "location": "/x"}"#).name == "...")
        #expect(try decodeJob(#"{"name": "~$report.docx", "location": "/x"}"#).name == "~$report.docx")
        #expect(try decodeJob(#"{"name": "é:notes", "location": "/x"}"#).name == "é:notes")
        #expect(try decodeJob(#"{"name": "100%.txt", "location": "/x"}"#).name == "100%.txt")
        // Dashes and colons that are not an option or a URL scheme.
        #expect(try decodeJob(#"{"name": "my-file.mkv", "location": "/x"}"#).name == "my-file.mkv")
        #expect(try decodeJob(#"{"name": "report: q3.pdf", "location": "/x"}"#).name == "report: q3.pdf")
        #expect(try decodeJob(#"{"name": "ab:c", "location": "/x"}"#).name == "ab:c")
        #expect(try decodeJob(#"{"name": "1:/2", "location": "/x"}"#).name == "1:/2")
        #expect(try decodeJob(#"{"name": "a/-b", "location": "in-box/"}"#).location == "in-box/")
        #expect(try decodeJob(#"{"name": "a", "location": "/srv/sftp://x/"}"#).location == "/srv/sftp://x/")
        #expect(try decodeJob(#"{"name": "ünïcødé 名前.txt", "location": "~/in"}"#).name == "ünïcødé 名前.txt")
        #expect(try decodeJob(#"{"name": "a", "location": "/x", "destination": ""}"#).destination == nil)
        #expect(try decodeJob(#"{"name": "a", "location": "/x", "kind": "directory"}"#).kind == .directory)
        let head = #"{"name": "a", "location": "/x", "pad": ""#, tail = #""}"#
        let exactlyAtLimit = head + String(repeating: "p", count: 65_536 - head.utf8.count - tail.utf8.count) + tail
        #expect(exactlyAtLimit.utf8.count == 65_536)
        #expect(try decodeJob(exactlyAtLimit).name == "a")
        let sixteenDeep = String(repeating: "[", count: 15) + String(repeating: "]", count: 15)
        #expect(try decodeJob(#"{"name": "a", "location": "/x", "extra": \#(sixteenDeep)}"#).name == "a")
        #expect(try decodeJob(#"{"name": "[[[[[[[[[[[[[[[[[[[[", "location": "/x\"{{{{{{{{{{{{{{{{{{{{"}"#).name.hasPrefix("[["),
                "brackets inside strings do not count as nesting")
    }

    @Test func codableUsesTheWireFormatAndItsValidation() throws {
        let job = try TransferJob(name: "a.bin", location: "/data", checksum: "md5:" + String(repeating: "0", count: 32),
                                  size: 7, destination: "x", kind: .file)
        #expect(try JSONDecoder().decode(TransferJob.self, from: JSONEncoder().encode(job)) == job)
        #expect(try JSONDecoder().decode(TransferJob.self, from: Data(job.encodedJSON())) == job)
        let error = #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(TransferJob.self, from: Data(#"{"name": "../x", "location": "/"}"#.utf8))
        }
        guard case .dataCorrupted(let context)? = error else { Issue.record("not dataCorrupted: \(String(describing: error))"); return }
        #expect((context.underlyingError as? JobRejection)?.reason == .pathTraversal)
    }

    @Test func rejectionsNameTheFieldAndExplainTheProblem() {
        let traversal = #expect(throws: JobRejection.self) { try decodeJob(#"{"name": "../etc/passwd", "location": "/"}"#) }
        #expect(traversal?.field == "name")
        #expect(traversal?.message == #"name "../etc/passwd" contains a ".." path component"#)
        #expect(traversal?.description == #"name "../etc/passwd" contains a ".." path component (path_traversal)"#)
        let type = #expect(throws: JobRejection.self) { try decodeJob(#"{"name": "a", "location": "/", "size": "10"}"#) }
        #expect(type?.field == "size")
        #expect(type?.message == "size must be a number, not a string")
        let large = #expect(throws: JobRejection.self) { try TransferJob.decode([UInt8](repeating: 0x20, count: 70_000)) }
        #expect(large?.field == nil)
        #expect(large?.message == "the message is 70000 bytes; at most 65536 are allowed")
    }

    @Test func rejectionMessagesEscapeAndTruncateTheInput() {
        let error = #expect(throws: JobRejection.self) {
            try TransferJob(name: "\u{1b}[2J" + String(repeating: "x", count: 500) + "\0", location: "/")
        }
        #expect(error?.reason == .controlCharacter)
        #expect(error?.message.hasPrefix(#"name "\u{1b}[2Jxxx"#) == true)
        #expect(error?.message.hasSuffix(#"x…" contains NUL or another control character"#) == true)
        #expect((error?.message.count ?? .max) < 200)
    }

    @Test func kindParsesItsThreeNames() throws {
        #expect(try TransferJob.Kind.allCases.map { (kind) throws(JobRejection) in try TransferJob.Kind(parsing: kind.rawValue) }
                == [.file, .directory, .auto])
        #expect(throws: JobRejection.self) { try TransferJob.Kind(parsing: "File") }
    }
}
