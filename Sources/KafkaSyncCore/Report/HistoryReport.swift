import Foundation
import TransferStore

/// The text of `kafkasync history` and `kafkasync status`.
public enum HistoryReport {
    /// An aligned table, newest first, one transfer a line.
    public static func table(_ records: [TransferRecord], timeZone: TimeZone = .current) -> String {
        guard !records.isEmpty else { return "No transfers match." }
        let header = ["RECEIVED", "STATUS", "SIZE", "TIME", "RATE", "TRIES", "NAME"]
        let rows = records.map { record -> [String] in
            var name = record.name
            if let errorClass = record.errorClass, record.status != .completed {
                name += "  (\(errorClass)\(record.errorMessage.map { ": \(oneLine($0, limit: 80))" } ?? ""))"
            }
            return [
                HumanFormat.timestamp(record.receivedAt, timeZone: timeZone),
                record.status.rawValue,
                size(record),
                record.duration.map(HumanFormat.duration) ?? "-",
                record.averageRate.map(HumanFormat.rate) ?? "-",
                "\(record.attempts)",
                name,
            ]
        }
        return aligned([header] + rows, rightAligned: [2, 3, 4, 5])
    }

    /// One JSON object a line: the record's fields in snake case, times in ISO 8601, plus
    /// `duration_seconds` and `average_rate_bytes_per_second`.
    public static func jsonLines(_ records: [TransferRecord]) -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .iso8601
        return records.compactMap { record -> String? in
            guard let data = try? encoder.encode(record),
                  var object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
            object["duration_seconds"] = record.duration
            object["average_rate_bytes_per_second"] = record.averageRate
            guard let line = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
            else { return nil }
            return String(decoding: line, as: UTF8.self)
        }.joined(separator: "\n")
    }

    /// Counts per status, what runs now with its progress, and the last errors.
    public static func status(allTime: [TransferStatus: Int], lastDay: [TransferStatus: Int],
                              running: [TransferRecord], recentErrors: [TransferRecord], now: Date,
                              unfinishedUploads: [UploadRecord] = [], timeZone: TimeZone = .current) -> String {
        var lines: [String] = []
        let statuses = TransferStatus.allCases.filter { allTime[$0] != nil }
        if statuses.isEmpty {
            lines.append("No transfers recorded yet.")
        } else {
            let table = [["STATUS", "LAST 24H", "ALL TIME"]]
                + statuses.map { [$0.rawValue, "\(lastDay[$0] ?? 0)", "\(allTime[$0] ?? 0)"] }
            lines.append(aligned(table, rightAligned: [1, 2]))
        }
        lines.append("")
        if running.isEmpty {
            lines.append("Running now: nothing.")
        } else {
            lines.append("Running now (\(running.count)):")
            let rows = running.map { record -> [String] in
                let started = record.startedAt ?? record.receivedAt
                let elapsed = now.timeIntervalSince(started)
                let rate = elapsed > 0 ? HumanFormat.rate(Double(record.bytesTransferred) / elapsed) : "-"
                let percent = record.bytesExpected.flatMap { $0 > 0 ? " \(record.bytesTransferred * 100 / $0)%" : nil } ?? ""
                return ["  " + record.name, size(record) + percent, rate, "for " + HumanFormat.duration(elapsed),
                        record.workerHost ?? ""]
            }
            lines.append(aligned(rows, rightAligned: [1, 2]))
        }
        if !unfinishedUploads.isEmpty {
            lines.append("")
            lines.append("Uploads not finished (\(unfinishedUploads.count); kafkasync uploads list):")
            let rows = unfinishedUploads.prefix(10).map { upload -> [String] in
                ["  s3://\(upload.bucket)/\(upload.key)", upload.state.rawValue,
                 "\(HumanFormat.bytes(upload.bytesUploaded)) / \(HumanFormat.bytes(upload.size))",
                 upload.errorClass ?? ""]
            }
            lines.append(aligned(rows, rightAligned: [2]))
        }
        if !recentErrors.isEmpty {
            lines.append("")
            lines.append("Last errors:")
            for record in recentErrors {
                let what = [record.errorClass, record.errorMessage.map { oneLine($0, limit: 120) }]
                    .compactMap { $0 }.joined(separator: ": ")
                lines.append("  \(HumanFormat.timestamp(record.updatedAt, timeZone: timeZone))  \(record.status.rawValue)  \(record.name)  \(what)")
            }
        }
        return lines.joined(separator: "\n")
    }

    /// Bytes so far, with the expected total while not complete.
    static func size(_ record: TransferRecord) -> String {
        let done = HumanFormat.bytes(record.bytesTransferred)
        guard let expected = record.bytesExpected, expected != record.bytesTransferred else {
            return record.bytesTransferred == 0 && record.status != .completed ? "-" : done
        }
        return "\(done) / \(HumanFormat.bytes(expected))"
    }

    static func oneLine(_ text: String, limit: Int) -> String {
        let flat = text.split(whereSeparator: \.isNewline).joined(separator: " ")
        return flat.count > limit ? String(flat.prefix(limit)) + "…" : flat
    }

    /// Pads columns to a common width (the last column is never padded).
    static func aligned(_ rows: [[String]], rightAligned: Set<Int>) -> String {
        let columns = rows.map(\.count).max() ?? 0
        let widths = (0..<columns).map { column in rows.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, cell in
                if column == row.count - 1 && !rightAligned.contains(column) { return cell }
                let padding = String(repeating: " ", count: widths[column] - cell.count)
                return rightAligned.contains(column) ? padding + cell : cell + padding
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
