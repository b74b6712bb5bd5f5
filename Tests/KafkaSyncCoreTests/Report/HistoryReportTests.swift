import Foundation
import Testing
import TransferStore
@testable import KafkaSyncCore

@Suite struct HistoryReportTests {
    let utc = TimeZone(identifier: "UTC")!
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)  // 2027-01-15 08:00:00 UTC

    @Test func humanSizesDurationsRatesAndSpans() {
        #expect(HumanFormat.bytes(0) == "0 B")
        #expect(HumanFormat.bytes(1023) == "1023 B")
        #expect(HumanFormat.bytes(1536) == "1.50 KiB")
        #expect(HumanFormat.bytes(12_900_000) == "12.3 MiB")
        #expect(HumanFormat.bytes(1 << 30) == "1.00 GiB")
        #expect(HumanFormat.duration(0.42) == "0.4s")
        #expect(HumanFormat.duration(185) == "3m05s")
        #expect(HumanFormat.duration(3725) == "1h02m")
        #expect(HumanFormat.duration(183_600) == "2d03h")
        #expect(HumanFormat.rate(1_572_864) == "1.50 MiB/s")
        #expect(HumanFormat.timestamp(t0, timeZone: utc) == "2027-01-15 08:00:00")
        #expect(HumanFormat.timeSpan("90s") == 90)
        #expect(HumanFormat.timeSpan("1h") == 3600)
        #expect(HumanFormat.timeSpan("1.5d") == 129_600)
        for bad in ["", "h", "5", "-1h", "1y", "nanh"] { #expect(HumanFormat.timeSpan(bad) == nil, "\(bad)") }
    }

    @Test func tableIsAlignedWithSizesTimesRatesAndErrors() {
        let done = TransferRecord(jobID: "1", name: "film.mkv", remote: "r", remotePath: "/film.mkv", status: .completed,
                                  attempts: 1, bytesExpected: 104_857_600, bytesTransferred: 104_857_600,
                                  receivedAt: t0, startedAt: t0, finishedAt: t0.addingTimeInterval(10))
        let failed = TransferRecord(jobID: "2", name: "gone.txt", remote: "r", remotePath: "/gone.txt", status: .failed,
                                    attempts: 3, errorClass: "no_such_file", errorMessage: "no such file\non the server",
                                    receivedAt: t0.addingTimeInterval(-60))
        let lines = HistoryReport.table([done, failed], timeZone: utc).split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines[0].hasPrefix("RECEIVED"))
        #expect(lines[1].contains("2027-01-15 08:00:00") && lines[1].contains("completed") && lines[1].contains("100.0 MiB")
                && lines[1].contains("10.0s") && lines[1].contains("10.0 MiB/s"))
        #expect(lines[2].contains("failed") && lines[2].contains("gone.txt  (no_such_file: no such file on the server)"))
        // Columns line up: the names start where the NAME header does.
        func column(of text: String, in line: String) -> Int? {
            line.range(of: text).map { line.distance(from: line.startIndex, to: $0.lowerBound) }
        }
        let nameColumn = column(of: "NAME", in: lines[0])
        #expect(nameColumn != nil)
        #expect(column(of: "film.mkv", in: lines[1]) == nameColumn)
        #expect(column(of: "gone.txt", in: lines[2]) == nameColumn)
        #expect(HistoryReport.table([]) == "No transfers match.")
    }

    @Test func jsonLinesCarryEveryFieldAndTheDerivedOnes() throws {
        let record = TransferRecord(jobID: "j", infoHash: "h", name: "a b.bin", remote: "r", remotePath: "/x/a b.bin",
                                    status: .completed, attempts: 1, bytesTransferred: 2000, receivedAt: t0,
                                    startedAt: t0, finishedAt: t0.addingTimeInterval(4))
        let line = HistoryReport.jsonLines([record, record]).split(separator: "\n")
        #expect(line.count == 2)
        let object = try #require(JSONSerialization.jsonObject(with: Data(line[0].utf8)) as? [String: Any])
        #expect(object["job_id"] as? String == "j")
        #expect(object["remote_path"] as? String == "/x/a b.bin")
        #expect(object["status"] as? String == "completed")
        #expect(object["bytes_transferred"] as? Int == 2000)
        #expect(object["received_at"] as? String == "2027-01-15T08:00:00Z")
        #expect(object["duration_seconds"] as? Double == 4)
        #expect(object["average_rate_bytes_per_second"] as? Double == 500)
    }

    @Test func statusShowsCountsRunningTransfersAndLastErrors() {
        let running = TransferRecord(jobID: "r", name: "big.iso", remote: "r", remotePath: "/big.iso", status: .running,
                                     attempts: 1, bytesExpected: 4000, bytesTransferred: 1000, workerHost: "w1",
                                     receivedAt: t0, startedAt: t0)
        let error = TransferRecord(jobID: "e", name: "x.bin", remote: "r", remotePath: "/x.bin", status: .deadLettered,
                                   errorClass: "permission_denied", errorMessage: "permission denied", receivedAt: t0)
        let text = HistoryReport.status(allTime: [.completed: 12, .running: 1, .deadLettered: 1],
                                        lastDay: [.completed: 2, .running: 1], running: [running],
                                        recentErrors: [error], now: t0.addingTimeInterval(10), timeZone: utc)
        let completedLine = text.split(separator: "\n").first { $0.hasPrefix("completed") }
        #expect(completedLine?.split(separator: " ") == ["completed", "2", "12"])
        #expect(text.contains("Running now (1):"))
        #expect(text.contains("big.iso") && text.contains("1000 B / 3.91 KiB 25%") && text.contains("100 B/s")
                && text.contains("for 10.0s") && text.contains("w1"))
        #expect(text.contains("Last errors:"))
        #expect(text.contains("dead-lettered  x.bin  permission_denied: permission denied"))
        #expect(HistoryReport.status(allTime: [:], lastDay: [:], running: [], recentErrors: [], now: t0)
                    .hasPrefix("No transfers recorded yet."))
    }
}
