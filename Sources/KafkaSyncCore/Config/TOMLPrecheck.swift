/// Checks for what TOMLKit 0.6.0 (toml++ 3.4) does not handle safely, run before it sees the text.
///
/// toml++ asserts (aborting the process in debug builds, undefined behaviour in release builds) on inputs that
/// `scripts/fuzz` (FuzzConfigLoader) found: a date-time value whose `T` is not followed by a digit
/// (`a = 1979-05-27T:`, `a = 1979-05-27T=07:32:00Z`), and a table header whose name starts with a character that cannot start a key
/// (`[%]`, `[ .a]`, `[é]`), and a `}` inside an array (`a = [1, }]`). No valid TOML has those shapes outside strings and comments, so they are reported
/// as the syntax errors they are.
enum TOMLPrecheck {
    /// What is wrong and its 1-based line, for the first such input outside strings and comments, or `nil`.
    static func problem(_ text: String) -> (line: Int, expected: String)? {
        let bytes = Array(text.utf8)
        // Brackets and braces open in a value, where a line may start with `[` without being a header.
        var open: [UInt8] = []
        // toml++ skips a byte order mark: the first line starts after it.
        var index = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0, line = 1, lineStart = true
        while index < bytes.count {
            let byte = bytes[index]
            defer { if byte != UInt8(ascii: " ") && byte != UInt8(ascii: "\t") { lineStart = byte == UInt8(ascii: "\n") } }
            if lineStart && open.isEmpty && byte == UInt8(ascii: "[") {
                guard startsAKey(bytes, after: index) else {
                    return (line, "valid TOML (a table header [name] starts with a letter, digit, _, - or a quote)")
                }
                while index < bytes.count && bytes[index] != UInt8(ascii: "\n") { index += 1 }
                continue
            }
            switch byte {
            case UInt8(ascii: "\n"):
                line += 1
                index += 1
            case UInt8(ascii: "#"):
                while index < bytes.count && bytes[index] != UInt8(ascii: "\n") { index += 1 }
            case UInt8(ascii: "\""), UInt8(ascii: "'"):
                index = endOfString(bytes, from: index, line: &line)
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                open.append(byte)
                index += 1
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                if byte == UInt8(ascii: "}") && open.last == UInt8(ascii: "[") {
                    return (line, "valid TOML (a } cannot close an array [ ])")
                }
                _ = open.popLast()
                index += 1
            default:
                if isBrokenDateTime(bytes, at: index) { return (line, "valid TOML (a date-time needs a time HH:MM:SS after its T)") }
                index += 1
            }
        }
        return nil
    }

    /// Whether what follows the `[` (or `[[`) of a table header at `start`, after spaces, can start a key (or
    /// is the `]` of an empty one, which toml++ reports as an error itself).
    private static func startsAKey(_ bytes: [UInt8], after start: Int) -> Bool {
        var index = start + 1
        if index < bytes.count && bytes[index] == UInt8(ascii: "[") { index += 1 }
        while index < bytes.count && (bytes[index] == UInt8(ascii: " ") || bytes[index] == UInt8(ascii: "\t")) { index += 1 }
        guard index < bytes.count else { return false }
        let byte = bytes[index]
        return (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            || "_-\"']".utf8.contains(byte)
    }

    /// The index after the string starting at `start` (a quote), counting its newlines.
    private static func endOfString(_ bytes: [UInt8], from start: Int, line: inout Int) -> Int {
        let quote = bytes[start]
        func run(_ at: Int) -> Int {
            var end = at
            while end < bytes.count && bytes[end] == quote { end += 1 }
            return end - at
        }
        let multiline = run(start) >= 3
        var index = start + (multiline ? 3 : 1)
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\\") && quote == UInt8(ascii: "\"") {
                if index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "\n") { line += 1 }
                index += 2
                continue
            }
            if byte == UInt8(ascii: "\n") {
                line += 1
                if !multiline { return index + 1 }
            }
            if byte == quote {
                let quotes = run(index)
                // A multi-line string ends at a run of 3 to 5 quotes (up to 2 of them belong to the text).
                if !multiline { return index + 1 }
                if quotes >= 3 { return index + min(quotes, 5) }
                index += quotes
                continue
            }
            index += 1
        }
        return index
    }

    /// `YYYY-MM-DD` then `T` or `t`, then not a digit, in a bare token that goes on to a `:`.
    private static func isBrokenDateTime(_ bytes: [UInt8], at start: Int) -> Bool {
        func isDigit(_ offset: Int) -> Bool {
            start + offset < bytes.count && (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[start + offset])
        }
        guard start + 11 < bytes.count, [0, 1, 2, 3, 5, 6, 8, 9].allSatisfy(isDigit),
              bytes[start + 4] == UInt8(ascii: "-"), bytes[start + 7] == UInt8(ascii: "-"),
              bytes[start + 10] == UInt8(ascii: "T") || bytes[start + 10] == UInt8(ascii: "t"), !isDigit(11)
        else { return false }
        // toml++ reads the token on past `=` (`1979-05-27T=07:32:00Z` asserts too).
        let terminators = Set(" \t\r\n,]}#".utf8)
        var index = start + 11
        while index < bytes.count && !terminators.contains(bytes[index]) {
            if bytes[index] == UInt8(ascii: ":") { return true }
            index += 1
        }
        return false
    }
}
