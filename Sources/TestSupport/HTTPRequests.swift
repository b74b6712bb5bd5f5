import AsyncHTTPClient
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// An HTTP response as tests read it.
public struct HTTPResult: Sendable {
    /// The status code.
    public let status: Int
    /// The header fields, names in lower case.
    public let headers: [String: String]
    /// The body.
    public let body: Data

    /// The body as UTF-8 text.
    public var text: String { String(decoding: body, as: UTF8.self) }

    /// The body decoded from JSON (dates in ISO 8601, as the server writes them).
    public func json<T: Decodable>(_ type: T.Type) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(type, from: body)
    }
}

/// Sends one request to a real server and reads the whole response (AsyncHTTPClient, on NIO: Foundation's
/// URLSession on Linux runs every request of the process through one libcurl queue, which stalled for tens of
/// seconds under a loaded test run, its own timeouts included).
/// - Parameters:
///   - url: an absolute URL.
///   - timeout: how long the server may take (generous: the whole suite runs at once on two cores, and a request
///     to a server in the test process waited over 10 s at its start).
/// - Throws: when the URL is malformed or the connection fails (a non-2xx status is a result, not an error).
public func httpRequest(_ url: String, method: String = "GET", headers: [String: String] = [:], body: Data? = nil,
                        timeout: TimeInterval = 30) async throws -> HTTPResult {
    guard URL(string: url)?.host != nil else { throw URLError(.badURL) }
    var request = HTTPClientRequest(url: url)
    request.method = HTTPMethod(rawValue: method)
    // No idle keep-alive connection outlives the request: a server's graceful shutdown need not wait for one.
    request.headers.add(name: "Connection", value: "close")
    for (name, value) in headers { request.headers.replaceOrAdd(name: name, value: value) }
    if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
    let response = try await HTTPClient.shared.execute(request, timeout: .milliseconds(Int64(timeout * 1000)))
    let collected = try await response.body.collect(upTo: 256 << 20)
    var fields: [String: String] = [:]
    for field in response.headers { fields[field.name.lowercased()] = field.value }
    return HTTPResult(status: Int(response.status.code), headers: fields, body: Data(buffer: collected))
}

/// A dashboard page URL as `kafkasync consumer` and `kafkasync dashboard` print it: `http://HOST:PORT/#token=TOKEN`
/// (the page's write token rides in the fragment, which browsers never send).
public struct DashboardPage: Sendable {
    /// The server's URL without the fragment, ending in `/`.
    public let url: String
    /// The write token, when the URL carries one.
    public let token: String?

    /// Splits a printed page URL.
    public init(_ page: String) {
        let parts = page.components(separatedBy: "#token=")
        url = parts[0]
        token = parts.count == 2 ? parts[1] : nil
    }
}
