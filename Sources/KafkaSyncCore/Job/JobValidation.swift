import Foundation

// The checks behind every `TransferJob`; each throws the `JobRejection` naming the field.

extension TransferJob {
    /// A non-empty string of at most `limit` UTF-8 bytes without control characters (C0, DEL, C1).
    static func checkString(_ value: String, field: String, limit: Int) throws(JobRejection) {
        if value.isEmpty { throw JobRejection(.emptyField, field: field, "\(field) is empty") }
        if value.utf8.count > limit {
            throw JobRejection(.fieldTooLong, field: field,
                               "\(field) is \(value.utf8.count) bytes long; at most \(limit) are allowed")
        }
        try checkNoControlCharacters(value, field: field)
    }

    /// A string without control characters (C0, DEL, C1); every string field of a job is checked with this.
    static func checkNoControlCharacters(_ value: String, field: String) throws(JobRejection) {
        if value.unicodeScalars.contains(where: isControlCharacter) {
            throw JobRejection(.controlCharacter, field: field,
                               "\(field) \(excerpt(value)) contains NUL or another control character")
        }
    }

    /// No `..` component in any spelling: `/` or `\` separated, as written or percent-decoded.
    static func checkNoTraversal(_ path: String, field: String) throws(JobRejection) {
        var spellings = [path]
        if path.utf8.contains(UInt8(ascii: "%")), let decoded = path.removingPercentEncoding { spellings.append(decoded) }
        for spelling in spellings {
            if pathComponents(spelling).contains("..") {
                throw JobRejection(.pathTraversal, field: field,
                                   "\(field) \(excerpt(path)) contains a \"..\" path component")
            }
        }
    }

    /// A relative path that stays below the folder it is placed in: not absolute (`/x`, `\x`, `C:x`, `~/x`),
    /// no `..`, and no empty or `.` components (a single trailing `/` is allowed).
    static func checkRelativePath(_ path: String, field: String) throws(JobRejection) {
        let start = Array(path.unicodeScalars.prefix(2))
        let isDrivePath = start.count == 2 && start[0].isASCII && start[0].properties.isAlphabetic && start[1] == ":"
        let isHomePath = path == "~" || (start.first == "~" && start.count == 2 && isSeparator(start[1]))
        if let first = start.first, isSeparator(first) || isDrivePath || isHomePath {
            throw JobRejection(.absolutePath, field: field, "\(field) \(excerpt(path)) must be a relative path")
        }
        try checkNoTraversal(path, field: field)
        var components = pathComponents(path)
        if components.count > 1 && components.last == "" { components.removeLast() }
        if components.contains("") || components.contains(".") {
            throw JobRejection(.invalidPath, field: field,
                               "\(field) \(excerpt(path)) has an empty or \".\" path component")
        }
    }

    /// A remote path that a program given it as an argument (lftp) reads as a path, not as an option or a URL:
    /// - it must not start with `-`;
    /// - it must not start with a URL scheme: ASCII letters, digits, `+`, `.` or `-` after a letter, then `:`,
    ///   then either `/` (`sftp://host/x`, `file:/etc`) or anything when the scheme is one lftp knows without
    ///   slashes or by name (`file:`, `bm:`, `slot:`, `sftp:`, `http:` …, in any case).
    ///
    /// A colon elsewhere is fine: `report: q3.pdf`, `a:b`, `my-file.mkv` and `é:notes` are accepted.
    static func checkNotOptionOrURL(_ path: String, field: String) throws(JobRejection) {
        // By scalar: a combining mark after "-" makes one Character of both, and lftp still sees the "-".
        if path.unicodeScalars.first == "-" {
            throw JobRejection(.invalidPath, field: field,
                               "\(field) \(excerpt(path)) starts with \"-\" and could be read as a program option")
        }
        if let scheme = urlScheme(of: path) {
            throw JobRejection(.invalidPath, field: field,
                               "\(field) \(excerpt(path)) starts with the URL scheme \"\(scheme):\"; a path is expected")
        }
    }

    /// The URL scheme `path` starts with, by the rule of ``checkNotOptionOrURL(_:field:)``.
    private static func urlScheme(of path: String) -> String? {
        let scalars = Array(path.unicodeScalars.prefix(64))
        guard let first = scalars.first, first.isASCII, first.properties.isAlphabetic,
              let colon = scalars.firstIndex(of: ":") else { return nil }
        let scheme = scalars[..<colon]
        guard scheme.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "+.-".unicodeScalars.contains($0)) })
        else { return nil }
        let name = String(String.UnicodeScalarView(scheme)).lowercased()
        let rest = scalars.dropFirst(colon + 1)
        return rest.first == "/" || lftpSchemes.contains(name) ? name : nil
    }

    /// lftp's protocols and its `bm:` / `slot:` forms (lftp's `url.cc` and `lftp(1)`).
    private static let lftpSchemes: Set = ["file", "ftp", "ftps", "hftp", "http", "https", "fish", "sftp", "bm", "slot",
                                           "torrent", "magnet"]

    /// A remote's or an upload's name (`field`): 1-64 characters of `A-Z a-z 0-9 _ . -`.
    static func checkRemoteName(_ remote: String, field: String = "remote") throws(JobRejection) {
        try checkNoControlCharacters(remote, field: field)
        guard (1...64).contains(remote.unicodeScalars.count), remote.unicodeScalars.allSatisfy(remoteNameCharacters.contains)
        else {
            throw JobRejection(field == "remote" ? .invalidRemote : .invalidUpload, field: field,
                               "\(field) \(excerpt(remote)) must be 1-64 characters of A-Z a-z 0-9 _ . -")
        }
    }

    private static let remoteNameCharacters = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-".unicodeScalars)

    /// U+0000–U+001F, U+007F and U+0080–U+009F.
    static func isControlCharacter(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }

    /// The components of a path as a file system sees them: split at every `/` and `\` scalar. Splitting
    /// `Character`s would miss a separator followed by a combining mark (`"../\u{301}x"` is one `Character`
    /// component, but `..` and `\u{301}x` on disk).
    static func pathComponents(_ path: String) -> [String] {
        path.unicodeScalars.split(omittingEmptySubsequences: false, whereSeparator: isSeparator)
            .map { String(String.UnicodeScalarView($0)) }
    }

    private static func isSeparator(_ scalar: Unicode.Scalar) -> Bool { scalar == "/" || scalar == "\\" }
}

/// A short, escaped excerpt of an untrusted string for error messages: quoted, control characters, quotes and
/// backslashes escaped, cut after `limit` scalars.
func excerpt(_ value: String, limit: Int = 100) -> String {
    var result = ""
    for scalar in value.unicodeScalars.prefix(limit) {
        if TransferJob.isControlCharacter(scalar) {
            result += "\\u{\(String(scalar.value, radix: 16))}"
        } else if scalar == "\"" || scalar == "\\" {
            result += "\\\(scalar)"
        } else {
            result.unicodeScalars.append(scalar)
        }
    }
    if value.unicodeScalars.count > limit { result += "…" }
    return "\"\(result)\""
}
