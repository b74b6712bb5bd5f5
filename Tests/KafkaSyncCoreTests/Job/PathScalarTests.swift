import Foundation
import Testing
@testable import KafkaSyncCore

/// Path checks look at what a file system sees (bytes split at `/` and `\`), not at Swift `Character`s: a
/// combining mark after a separator merges with it into one `Character`, which hid `..` and leading `/`.
@Suite struct PathScalarTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let field: String
        let value: String
        let reason: String
        var testDescription: String { "\(field) \(value.unicodeScalars.map { $0.isASCII ? "\($0)" : "U+\(String($0.value, radix: 16))" }.joined())" }
    }

    @Test(arguments: [
        Case(field: "name", value: "../\u{301}x", reason: "path_traversal"),
        Case(field: "name", value: "a/../\u{301}", reason: "path_traversal"),
        Case(field: "name", value: "/\u{301}etc/passwd", reason: "absolute_path"),
        Case(field: "name", value: "\\\u{301}x", reason: "absolute_path"),
        Case(field: "name", value: "~/\u{301}x", reason: "absolute_path"),
        Case(field: "name", value: "a//\u{301}b", reason: "invalid_path"),
        Case(field: "name", value: "./\u{301}b", reason: "invalid_path"),
        Case(field: "destination", value: "../\u{301}", reason: "path_traversal"),
        Case(field: "destination", value: "%2e%2e/\u{301}up", reason: "path_traversal"),
        Case(field: "location", value: "/srv/../\u{301}x", reason: "path_traversal"),
    ])
    func aCombiningMarkAfterASeparatorHidesNothing(_ test: Case) throws {
        let fields = ["name": "a.bin", "location": "/data/"].merging([test.field: test.value]) { $1 }
        let json = try JSONEncoder().encode(fields)
        #expect(throws: JobRejection.self) { try TransferJob.decode(Array(json)) }
        do {
            _ = try TransferJob.decode(Array(json))
        } catch {
            #expect(error.reason.code == test.reason)
            #expect(error.field == test.field)
        }
    }

    @Test func combiningMarksInsideComponentsAreStillFine() throws {
        let job = try TransferJob(name: "re\u{301}sume\u{301}/..\u{301}/x\u{301}.txt", location: "/data/", destination: "a\u{301}/b")
        #expect(job.name == "re\u{301}sume\u{301}/..\u{301}/x\u{301}.txt", "`..\u{301}` is not `..` on disk either")
        #expect(TransferJob.pathComponents("../\u{301}x") == ["..", "\u{301}x"])
    }
}
