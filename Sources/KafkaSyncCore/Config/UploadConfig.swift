import Foundation

/// One S3-compatible destination files are uploaded to after download: `[uploads.NAME]`. A job chooses it with
/// `"upload": "NAME"`; a remote (`upload = "NAME"`) or a destination (`destinations = [...]`) names a default.
public struct UploadConfig: Sendable, Equatable {
    /// Which checksum each part (and a single-request object) carries.
    public enum ChecksumKind: String, Sendable, Equatable, CaseIterable {
        /// `x-amz-checksum-sha256` (default).
        case sha256
        /// `x-amz-checksum-crc32c`.
        case crc32c
        /// No checksum headers: for S3-compatible servers that reject them.
        case none
    }

    /// The smallest part S3 accepts (but for the last one).
    public static let minimumPartSize: Int64 = 5 << 20
    /// The largest part S3 accepts.
    public static let maximumPartSize: Int64 = 5 << 30
    /// The most parts of one upload.
    public static let maximumParts: Int64 = 10_000

    /// The `NAME` of `[uploads.NAME]`.
    public var name: String
    /// `endpoint`: any S3-compatible URL; `nil` means AWS (`https://s3.REGION.amazonaws.com`).
    public var endpoint: URL?
    /// `region` (default `AWS_REGION`, else `us-east-1`).
    public var region: String
    /// `bucket`.
    public var bucket: String
    /// `prefix`: a template of the key's start with `{destination}`, `{name}` (the job's name) and `{date}`
    /// (`YYYY-MM-DD`, UTC); the file's path (its name, or `dir/sub/file` in a directory job) follows it.
    public var prefix: String
    /// The access key id.
    public var accessKeyID: Secret
    /// The secret access key.
    public var secretAccessKey: Secret
    /// A session token (temporary credentials), when the source has one.
    public var sessionToken: Secret?
    /// Where the credentials came from, for `config check` (never the values).
    public var credentialsSource: String
    /// `path_style`: `https://host/bucket/key` instead of `https://bucket.host/key` (default: on for a custom
    /// `endpoint`, off for AWS).
    public var pathStyle: Bool
    /// `storage_class` (`STANDARD_IA`, …); `nil` lets the bucket decide.
    public var storageClass: String?
    /// `part_size` (default 16 MiB, 5 MiB-5 GiB); grown for a file that would need more than 10,000 parts.
    public var partSize: Int64 = 16 << 20
    /// `concurrency`: parts in flight per file (1...64, default 4). Memory is about `concurrency × part_size`.
    public var concurrency = 4
    /// `keep_local`: keep the downloaded file in `completes` after the upload (default true).
    public var keepLocal = true
    /// `checksum`.
    public var checksum: ChecksumKind = .sha256
    /// `abort_after`: multipart uploads this tool started and left unfinished longer than this are aborted by
    /// the janitor (default 24h).
    public var abortAfter: Duration = .seconds(86_400)
    /// `destinations`: jobs with one of these destinations upload here unless they name another upload.
    public var destinations: [String] = []

    /// The part size for a file of `size` bytes: ``partSize``, grown so the file fits in 10,000 parts.
    public func partSize(forFileOf size: Int64) -> Int64 {
        let needed = (size + Self.maximumParts - 1) / Self.maximumParts
        guard needed > partSize else { return partSize }
        // Whole MiB, so part boundaries stay aligned.
        return ((needed + (1 << 20) - 1) >> 20) << 20
    }

    /// The object key of `relativePath` (a file's name, or its path in a directory job's tree) for `job`.
    public func key(for job: TransferJob, relativePath: String, date: Date = Date()) -> String {
        let day = Self.dayFormat.string(from: date)
        let expanded = prefix.replacingOccurrences(of: "{destination}", with: job.destination ?? "")
            .replacingOccurrences(of: "{name}", with: job.name).replacingOccurrences(of: "{date}", with: day)
        let segments = (expanded + "/" + relativePath).split(separator: "/", omittingEmptySubsequences: true)
        return segments.joined(separator: "/")
    }

    private static let dayFormat: DateFormatter = {
        let format = DateFormatter()
        format.locale = Locale(identifier: "en_US_POSIX")
        format.timeZone = TimeZone(identifier: "UTC")
        format.dateFormat = "yyyy-MM-dd"
        return format
    }()
}

extension KafkaSyncConfig {
    /// The upload a job goes through: the one it names, else its remote's, else the one listing its destination.
    /// - Returns: `nil` when none applies; throws when the job names one the configuration does not define.
    public func upload(for job: TransferJob) throws(TransferFailure) -> UploadConfig? {
        if let name = job.upload {
            guard let upload = uploads[name] else {
                throw TransferFailure(.unknownUpload, "the job names upload \"\(name)\", which the config does not define")
            }
            return upload
        }
        if let name = remote(named: job.remote)?.upload { return uploads[name] }
        guard let destination = job.destination else { return nil }
        return uploads.values.sorted { $0.name < $1.name }.first { $0.destinations.contains(destination) }
    }
}

extension ConfigLoader {
    static let uploadKeys = ["endpoint", "region", "bucket", "prefix", "access_key_id_env", "secret_access_key_env",
                             "access_key_id_file", "secret_access_key_file", "session_token_env", "profile",
                             "path_style", "storage_class", "part_size", "concurrency", "keep_local", "checksum",
                             "abort_after", "destinations"]

    /// `[uploads.NAME]` tables.
    mutating func namedUploads(_ node: TOMLNode?) -> [String: UploadConfig] {
        guard let node else { return [:] }
        guard case .table(let tables) = node else {
            wrongType("uploads", node, expected: "tables [uploads.NAME]")
            return [:]
        }
        var uploads: [String: UploadConfig] = [:]
        for (name, value) in tables.sorted(by: { $0.key < $1.key }) {
            let key = "uploads.\(name)"
            guard Self.isPlainName(name) else {
                issues.append(ConfigIssue(.invalidValue, key: "[\(key)]", value: "\"\(name)\"",
                                          expected: "an upload name of 1-64 characters A-Z a-z 0-9 _ . -"))
                continue
            }
            guard case .table(let table) = value else {
                wrongType(key, value, expected: "a table [\(key)]")
                continue
            }
            if let upload = upload(table, name: name, key: key) { uploads[name] = upload }
        }
        return uploads
    }

    /// Whether `name` can name a remote or an upload: 1-64 characters `A-Z a-z 0-9 _ . -`.
    static func isPlainName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64 && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
    }

    mutating func upload(_ table: [String: TOMLNode], name: String, key: String) -> UploadConfig? {
        warnUnknown(table, known: Self.uploadKeys, table: key)
        let issuesBefore = issues.count
        var endpoint: URL?
        let endpointExpected = "an http:// or https:// URL of an S3-compatible server, like \"https://minio.example:9000\""
        if let text = nonEmptyString((key + ".endpoint", table["endpoint"]), expected: endpointExpected) {
            if let url = URL(string: text), ["http", "https"].contains(url.scheme?.lowercased() ?? ""),
               url.host?.isEmpty == false, url.query == nil, url.user == nil {
                endpoint = url
            } else {
                issues.append(ConfigIssue(.invalidValue, key: key + ".endpoint", value: "\"\(text)\"", expected: endpointExpected))
            }
        }
        let region = nonEmptyString((key + ".region", table["region"]), expected: "an S3 region like \"eu-west-1\"")
            ?? environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? "us-east-1"
        let bucketExpected = "an S3 bucket name: 3-63 characters a-z 0-9 . -"
        let bucket = nonEmptyString((key + ".bucket", table["bucket"]), expected: bucketExpected, required: true) ?? ""
        if !bucket.isEmpty, !(3...63).contains(bucket.count)
            || !bucket.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || ".-".contains($0)) }) {
            issues.append(ConfigIssue(.invalidValue, key: key + ".bucket", value: "\"\(bucket)\"", expected: bucketExpected))
        }
        let prefixExpected = "a key prefix template with {destination}, {name} or {date}, like \"incoming/{date}/\""
        var prefix = "{destination}"
        if table["prefix"] != nil, let text = string((key + ".prefix", table["prefix"]), expected: prefixExpected) {
            if text.utf8.count <= 512, !text.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }),
               !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
                prefix = text
            } else {
                issues.append(ConfigIssue(.invalidValue, key: key + ".prefix", value: "\"\(text)\"", expected: prefixExpected))
            }
        }
        let credentials = uploadCredentials(table, key: key)
        var upload = UploadConfig(name: name, endpoint: endpoint, region: region, bucket: bucket, prefix: prefix,
                                  accessKeyID: credentials?.id ?? Secret(""), secretAccessKey: credentials?.secret ?? Secret(""),
                                  sessionToken: credentials?.token, credentialsSource: credentials?.source ?? "",
                                  pathStyle: endpoint != nil)
        if let value = boolean((key + ".path_style", table["path_style"])) { upload.pathStyle = value }
        if let value = boolean((key + ".keep_local", table["keep_local"])) { upload.keepLocal = value }
        upload.storageClass = nonEmptyString((key + ".storage_class", table["storage_class"]),
                                             expected: "an S3 storage class like \"STANDARD_IA\"")
        let sizeSource: Sourced = (key + ".part_size", table["part_size"])
        if sizeSource.value != nil {
            let size: Int64? = switch sizeSource.value {
            case .integer(let number)?: Int64(number)
            case .string(let text)?: Self.byteSize(text)
            default: nil
            }
            if let size, (UploadConfig.minimumPartSize...UploadConfig.maximumPartSize).contains(size) {
                upload.partSize = size
            } else {
                issues.append(ConfigIssue(.invalidValue, key: sizeSource.key, value: sizeSource.value?.rendered,
                                          expected: "a size from 5MiB to 5GiB, like \"16MiB\""))
            }
        }
        upload.concurrency = integer((key + ".concurrency", table["concurrency"]), in: 1...64, default: 4) ?? 4
        upload.checksum = choice((key + ".checksum", table["checksum"]), default: UploadConfig.ChecksumKind.sha256) ?? .sha256
        upload.abortAfter = positiveDuration((key + ".abort_after", table["abort_after"]), default: upload.abortAfter)
            ?? upload.abortAfter
        switch table["destinations"] {
        case .array(let values)?:
            for value in values {
                if case .string(let text) = value, !text.isEmpty { upload.destinations.append(text) }
                else { wrongType(key + ".destinations", value, expected: "job destinations as non-empty strings") }
            }
        case let other?: wrongType(key + ".destinations", other, expected: "an array of job destinations")
        case nil: break
        }
        return issues.count == issuesBefore ? upload : nil
    }

    /// The credentials, from the first source that has them: `access_key_id_env`/`secret_access_key_env` (or
    /// `_file`), the `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` environment variables, or a profile (`profile`,
    /// else `AWS_PROFILE`, else `default`) of `~/.aws/credentials` (`AWS_SHARED_CREDENTIALS_FILE`).
    mutating func uploadCredentials(_ table: [String: TOMLNode], key: String)
        -> (id: Secret, secret: Secret, token: Secret?, source: String)?
    {
        let idKeys = ["access_key_id_env", "access_key_id_file"].filter { table[$0] != nil }
        let secretKeys = ["secret_access_key_env", "secret_access_key_file"].filter { table[$0] != nil }
        if idKeys.count > 1 || secretKeys.count > 1 {
            issues.append(ConfigIssue(.conflict, key: key + "." + (idKeys.count > 1 ? idKeys[1] : secretKeys[1]),
                                      value: "<redacted>", expected: "only one of the _env and _file forms"))
            return nil
        }
        if let idKey = idKeys.first, let secretKey = secretKeys.first {
            guard let (id, idSource) = secret(table, key: key, name: idKey, what: "access key id"),
                  let (secretValue, secretSource) = secret(table, key: key, name: secretKey, what: "secret access key")
            else { return nil }
            let token = table["session_token_env"] == nil ? nil
                : secret(table, key: key, name: "session_token_env", what: "session token")?.0
            return (id, secretValue, token, "\(idSource), \(secretSource)")
        }
        if idKeys.count + secretKeys.count == 1 {
            let missing = idKeys.isEmpty ? "access_key_id_env" : "secret_access_key_env"
            issues.append(ConfigIssue(.missingKey, key: key + "." + missing, value: nil,
                                      expected: "both the access key id and the secret access key (_env or _file)"))
            return nil
        }
        if let id = environment["AWS_ACCESS_KEY_ID"], let secretValue = environment["AWS_SECRET_ACCESS_KEY"],
           !id.isEmpty, !secretValue.isEmpty {
            return (Secret(id), Secret(secretValue), environment["AWS_SESSION_TOKEN"].map(Secret.init),
                    "from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        }
        let profile = nonEmptyString((key + ".profile", table["profile"]), expected: "a profile of ~/.aws/credentials")
            ?? environment["AWS_PROFILE"] ?? "default"
        let file = environment["AWS_SHARED_CREDENTIALS_FILE"]
            ?? (environment["HOME"] ?? NSHomeDirectory()) + "/.aws/credentials"
        if let text = try? String(contentsOfFile: file, encoding: .utf8),
           let values = Self.iniSection(text, named: profile),
           let id = values["aws_access_key_id"], let secretValue = values["aws_secret_access_key"] {
            return (Secret(id), Secret(secretValue), values["aws_session_token"].map(Secret.init),
                    "from profile \(profile) of \(file)")
        }
        issues.append(ConfigIssue(.missingKey, key: key + ".access_key_id_env", value: nil, expected: """
            credentials: access_key_id_env and secret_access_key_env (or _file), the AWS_ACCESS_KEY_ID and \
            AWS_SECRET_ACCESS_KEY environment variables, or profile "\(profile)" in \(file)
            """))
        return nil
    }

    /// The `key = value` lines of `[name]` in an INI file (`~/.aws/credentials`).
    static func iniSection(_ text: String, named name: String) -> [String: String]? {
        var values: [String: String]?
        for line in text.split(whereSeparator: \.isNewline).map({ $0.trimmingCharacters(in: .whitespaces) }) {
            if line.hasPrefix("[") && line.hasSuffix("]") {
                if values != nil { break }
                if line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces) == name { values = [:] }
            } else if values != nil, !line.hasPrefix("#"), !line.hasPrefix(";"), let equals = line.firstIndex(of: "=") {
                values![line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()] =
                    line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return values
    }

    /// A boolean value; `nil` when absent (or wrong, with an issue).
    mutating func boolean(_ sourced: Sourced) -> Bool? {
        switch sourced.value {
        case nil: return nil
        case .bool(let value)?: return value
        case let other?:
            wrongType(sourced.key, other, expected: "true or false")
            return nil
        }
    }
}
