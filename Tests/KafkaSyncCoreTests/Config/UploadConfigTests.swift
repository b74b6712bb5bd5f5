import Foundation
import TestSupport
import Testing
@testable import KafkaSyncCore

/// `[uploads.NAME]`: where results are uploaded, with what credentials, how.
@Suite struct UploadConfigTests {
    let base = ConfigFixtures.minimal()
    let keys = ["KS_ID": "AKIDEXAMPLE", "KS_SECRET": "very-secret-value-123"]

    private func parse(_ uploads: String, remote: String = "", environment: [String: String]? = nil)
        throws(ConfigError) -> KafkaSyncConfig
    {
        try KafkaSyncConfig.parse(toml: base + "\n" + remote + "\n" + uploads + "\n", configFile: "/etc/kafkasync/config.toml",
                                  environment: environment ?? keys)
    }

    private func issues(_ uploads: String, remote: String = "", environment: [String: String]? = nil) -> [ConfigIssue] {
        do {
            _ = try parse(uploads, remote: remote, environment: environment)
            return []
        } catch {
            return error.issues
        }
    }

    static let minimal = """
        [uploads.archive]
        bucket = "my-bucket"
        access_key_id_env = "KS_ID"
        secret_access_key_env = "KS_SECRET"
        """

    @Test func defaultsFillInAndKeysFollowThePrefixTemplate() throws {
        let upload = try #require(try parse(Self.minimal).uploads["archive"])
        #expect(upload.endpoint == nil && upload.region == "us-east-1" && !upload.pathStyle, "AWS, virtual-host style")
        #expect(upload.partSize == 16 << 20 && upload.concurrency == 4 && upload.keepLocal && upload.checksum == .sha256)
        #expect(upload.abortAfter == .seconds(86_400))
        #expect(upload.accessKeyID.revealed == "AKIDEXAMPLE" && upload.secretAccessKey.revealed == "very-secret-value-123")
        let job = try TransferJob(name: "dir/report.csv", location: "/out", destination: "finance/q3")
        #expect(upload.key(for: job, relativePath: "report.csv") == "finance/q3/report.csv")
        var templated = upload
        templated.prefix = "incoming/{date}/{name}/"
        let date = Date(timeIntervalSince1970: 1_764_633_600)  // 2025-12-02
        #expect(templated.key(for: job, relativePath: "report.csv", date: date) == "incoming/2025-12-02/dir/report.csv/report.csv")
    }

    @Test func everyKeyIsReadAndACustomEndpointDefaultsToPathStyle() throws {
        let config = try parse("""
            [uploads.minio]
            endpoint = "http://minio.local:9000"
            region = "eu-west-1"
            bucket = "data.lake"
            prefix = "x/{destination}"
            access_key_id_env = "KS_ID"
            secret_access_key_env = "KS_SECRET"
            storage_class = "STANDARD_IA"
            part_size = "64MiB"
            concurrency = 8
            keep_local = false
            checksum = "crc32c"
            abort_after = "2h"
            destinations = ["lake"]
            """)
        let upload = try #require(config.uploads["minio"])
        #expect(upload.endpoint?.absoluteString == "http://minio.local:9000" && upload.pathStyle)
        #expect(upload.region == "eu-west-1" && upload.bucket == "data.lake" && upload.storageClass == "STANDARD_IA")
        #expect(upload.partSize == 64 << 20 && upload.concurrency == 8 && !upload.keepLocal && upload.checksum == .crc32c)
        #expect(upload.abortAfter == .seconds(7200) && upload.destinations == ["lake"])
        let job = try TransferJob(name: "a.bin", location: "/", destination: "lake")
        #expect(try config.upload(for: job)?.name == "minio", "the destination names its default upload")
        #expect(try config.upload(for: TransferJob(name: "a.bin", location: "/")) == nil)
    }

    @Test func aJobNamesItsUploadAndARemoteNamesADefault() throws {
        let config = try parse(Self.minimal, remote: "upload = \"archive\"\n")
        #expect(try config.upload(for: TransferJob(name: "a", location: "/"))?.name == "archive", "the remote's default")
        let job = try TransferJob(name: "a", location: "/", upload: "nope")
        let failure = #expect(throws: TransferFailure.self) { try config.upload(for: job) }
        #expect(failure?.code == .unknownUpload && failure?.isTransient == false)
        let found = issues(Self.minimal, remote: "upload = \"archiv\"\n")
        #expect(found.contains { $0.key == "remoteDetails.upload" && $0.expected.contains("archive") }, "\(found)")
    }

    @Test func partSizesAreGrownToStayUnder10000Parts() throws {
        let upload = try #require(try parse(Self.minimal).uploads["archive"])
        #expect(upload.partSize(forFileOf: 1 << 30) == 16 << 20)
        let huge: Int64 = 500 << 30  // 500 GiB: 16 MiB parts would be 32,000
        let grown = upload.partSize(forFileOf: huge)
        #expect((huge + grown - 1) / grown <= 10_000 && grown % (1 << 20) == 0)
    }

    @Test(arguments: [
        ("bucket = \"My_Bucket\"", "uploads.archive.bucket"),
        ("part_size = \"1MiB\"", "uploads.archive.part_size"),
        ("concurrency = 0", "uploads.archive.concurrency"),
        ("checksum = \"md5\"", "uploads.archive.checksum"),
        ("endpoint = \"ftp://x\"", "uploads.archive.endpoint"),
        ("prefix = \"../up\"", "uploads.archive.prefix"),
        ("keep_local = \"no\"", "uploads.archive.keep_local"),
    ])
    func invalidValuesNameTheKey(line: String, key: String) {
        let found = issues(Self.minimal.replacingOccurrences(of: "bucket = \"my-bucket\"",
                                                             with: line.hasPrefix("bucket") ? line : "bucket = \"my-bucket\"\n" + line))
        #expect(found.contains { $0.key == key }, "\(found)")
    }

    @Test func credentialsComeFromTheAWSEnvironmentOrAProfileAndMissingOnesAreNamed() throws {
        let bare = "[uploads.archive]\nbucket = \"my-bucket\"\n"
        let fromEnvironment = try parse(bare, environment: ["AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "envsecret",
                                                            "HOME": "/nonexistent"])
        #expect(fromEnvironment.uploads["archive"]?.accessKeyID.revealed == "AKIDENV")
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let credentials = try directory.write("credentials", """
            [default]
            aws_access_key_id = AKIDDEFAULT
            aws_secret_access_key = defaultsecret
            [work]
            aws_access_key_id = AKIDWORK
            aws_secret_access_key = worksecret
            aws_session_token = worktoken
            """)
        let fromProfile = try parse(bare + "profile = \"work\"\n", environment: ["AWS_SHARED_CREDENTIALS_FILE": credentials])
        #expect(fromProfile.uploads["archive"]?.accessKeyID.revealed == "AKIDWORK")
        #expect(fromProfile.uploads["archive"]?.sessionToken?.revealed == "worktoken")
        let missing = issues(bare, environment: ["HOME": "/nonexistent"])
        #expect(missing.contains { $0.key == "uploads.archive.access_key_id_env" && $0.expected.contains("AWS_ACCESS_KEY_ID") })
        let half = issues(bare + "access_key_id_env = \"KS_ID\"\n")
        #expect(half.contains { $0.code == .missingKey }, "\(half)")
    }

    @Test func configCheckShowsTheUploadWithoutItsSecrets() throws {
        let text = try parse(Self.minimal).renderedRedacted()
        #expect(text.contains("[uploads.archive]") && text.contains("bucket = \"my-bucket\""))
        #expect(text.contains("credentials = <redacted> (from access_key_id_env KS_ID, from secret_access_key_env KS_SECRET)"), "\(text)")
        #expect(!text.contains("very-secret-value-123") && !text.contains("AKIDEXAMPLE"))
    }
}
