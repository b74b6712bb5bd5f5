import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

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

/// A client with no cache and no cookies (Foundation's URLSession, ephemeral).
private let session = URLSession(configuration: .ephemeral)

/// Sends one request to a real server and reads the whole response.
/// - Parameters:
///   - url: an absolute URL.
///   - timeout: how long the server may take.
/// - Throws: when the URL is malformed or the connection fails (a non-2xx status is a result, not an error).
public func httpRequest(_ url: String, method: String = "GET", headers: [String: String] = [:], body: Data? = nil,
                        timeout: TimeInterval = 10) async throws -> HTTPResult {
    guard let target = URL(string: url) else { throw URLError(.badURL) }
    var request = URLRequest(url: target, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: timeout)
    request.httpMethod = method
    // No idle keep-alive connection outlives the request: a server's graceful shutdown need not wait for one.
    request.setValue("close", forHTTPHeaderField: "Connection")
    for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
    request.httpBody = body
    let (data, response) = try await session.data(for: request)
    guard let http = response as? HTTPURLResponse else { throw URLError(.badServerResponse) }
    var fields: [String: String] = [:]
    for (name, value) in http.allHeaderFields {
        if let name = name as? String, let value = value as? String { fields[name.lowercased()] = value }
    }
    return HTTPResult(status: http.statusCode, headers: fields, body: data)
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
