import Foundation

/// A real S3 API for the upload tests: moto in server mode (PyPI `moto[server]`, installed by `scripts/bootstrap`)
/// on a free loopback port, with a bucket, behind `Tests/Fixtures/s3_fault_proxy.py`, a fake named as such: it
/// forwards every request unchanged, counts them, and injects on request the faults moto cannot be told to show
/// (503s, 403s, a server that rejects checksum headers, a stalled upload).
public final class S3Fixture: Sendable {
    /// The bucket the fixture created.
    public let bucket: String
    /// The proxy's address: what a client uses (`http://127.0.0.1:PORT`).
    public let endpoint: String
    /// moto's own address, behind the proxy (to read objects without counting).
    public let directEndpoint: String
    private let moto: BackgroundProcess
    private let proxy: BackgroundProcess

    /// Starts moto and the proxy and creates `bucket`.
    /// - Throws: ``FixtureUnavailable`` when moto is not installed or does not start: tests fail then, never skip.
    public init(bucket: String = "kafkasync-test") async throws {
        self.bucket = bucket
        let motoPort = try freeLoopbackPort(), proxyPort = try freeLoopbackPort()
        do {
            // Parts may be as small as 256 bytes, so the client's multipart tests stay small (the key buffer
            // default derives from the minimum part size and would be negative).
            moto = try BackgroundProcess("moto_server", ["-H", "127.0.0.1", "-p", "\(motoPort)"],
                                         environment: ["S3_UPLOAD_PART_MIN_SIZE": "256",
                                                       "MOTO_S3_DEFAULT_KEY_BUFFER_SIZE": "1048576"])
        } catch {
            throw FixtureUnavailable(what: "moto_server is not installed (pip install 'moto[server]'; scripts/bootstrap does)")
        }
        directEndpoint = "http://127.0.0.1:\(motoPort)"
        endpoint = "http://127.0.0.1:\(proxyPort)"
        proxy = try BackgroundProcess("python3", [packageRoot() + "/Tests/Fixtures/s3_fault_proxy.py", "\(proxyPort)", "\(motoPort)"])
        let direct = directEndpoint
        do {
            try await waitUntil("moto answers", within: .seconds(60)) {
                (try? await httpRequest(direct + "/moto-api/", timeout: 2))?.status == 200
            }
            try await waitUntil("the S3 proxy answers", within: .seconds(20)) { [endpoint] in
                (try? await httpRequest(endpoint + "/__proxy/counts", timeout: 2))?.status == 200
            }
            let created = try await httpRequest("\(directEndpoint)/\(bucket)", method: "PUT")
            guard created.status == 200 else { throw FixtureUnavailable(what: "moto refused the bucket: \(created.text)") }
        } catch {
            _ = await moto.stop()
            _ = await proxy.stop()
            throw FixtureUnavailable(what: "moto did not start: \(error) \(moto.stderr.suffix(2000))")
        }
    }

    /// Requests per S3 operation that reached the proxy (`PutObject`, `UploadPart`, …), and the part numbers
    /// the store acknowledged (`UploadPartNumbers`).
    public func counts() async throws -> [String: Int] {
        let json = try JSONSerialization.jsonObject(with: try await httpRequest(endpoint + "/__proxy/counts").body)
        return ((json as? [String: Any]) ?? [:]).compactMapValues { $0 as? Int }
    }

    /// The part numbers acknowledged through the proxy, in order.
    public func acknowledgedParts() async throws -> [Int] {
        let json = try JSONSerialization.jsonObject(with: try await httpRequest(endpoint + "/__proxy/counts").body)
        return ((json as? [String: Any])?["UploadPartNumbers"] as? [Int]) ?? []
    }

    /// Sends a control command (`reject-checksums/on`, `fail/2/503`, `hold-parts-after/3`, `release`, `reset`).
    public func control(_ command: String) async throws {
        let result = try await httpRequest(endpoint + "/__proxy/" + command, method: "POST", body: Data())
        guard result.status == 200 else { throw FixtureUnavailable(what: "the S3 proxy refused \(command)") }
    }

    /// moto does not check signatures, but answers anonymous object reads with 403: the reads of the tests carry
    /// an Authorization header (with no valid signature).
    private static let reader = [
        "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0",
    ]

    /// An object's bytes, read from moto directly, or `nil` when there is none.
    public func object(_ key: String) async throws -> Data? {
        let result = try await httpRequest("\(directEndpoint)/\(bucket)/\(Self.encoded(key))", headers: Self.reader, timeout: 60)
        return result.status == 200 ? result.body : nil
    }

    /// An object's `x-amz-meta-*` headers (names without the prefix), or `nil` when there is none.
    public func metadata(_ key: String) async throws -> [String: String]? {
        let result = try await httpRequest("\(directEndpoint)/\(bucket)/\(Self.encoded(key))", method: "HEAD",
                                           headers: Self.reader)
        guard result.status == 200 else { return nil }
        return Dictionary(uniqueKeysWithValues: result.headers.filter { $0.key.hasPrefix("x-amz-meta-") }
            .map { (String($0.key.dropFirst("x-amz-meta-".count)), $0.value) })
    }

    /// The keys in the bucket.
    public func keys() async throws -> [String] {
        let text = try await httpRequest("\(directEndpoint)/\(bucket)?list-type=2", headers: Self.reader).text
        return text.components(separatedBy: "<Key>").dropFirst().compactMap { $0.components(separatedBy: "</Key>").first }
            .map { $0.replacingOccurrences(of: "&amp;", with: "&") }.sorted()
    }

    /// The ids of the multipart uploads open in the bucket.
    public func openUploads() async throws -> [String] {
        let text = try await httpRequest("\(directEndpoint)/\(bucket)?uploads", headers: Self.reader).text
        return text.components(separatedBy: "<UploadId>").dropFirst().compactMap { $0.components(separatedBy: "</UploadId>").first }
    }

    /// Stops the proxy and moto.
    public func stop() async {
        try? await control("release")
        _ = await proxy.stop()
        _ = await moto.stop()
    }

    private static func encoded(_ key: String) -> String {
        key.split(separator: "/", omittingEmptySubsequences: false).map {
            $0.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? String($0)
        }.joined(separator: "/")
    }
}

/// Runs `body` with a fresh ``S3Fixture`` and stops it afterwards, whatever happens.
public func withS3Fixture<T: Sendable>(_ body: (S3Fixture) async throws -> T) async throws -> T {
    let fixture = try await S3Fixture()
    do {
        let result = try await body(fixture)
        await fixture.stop()
        return result
    } catch {
        await fixture.stop()
        throw error
    }
}
