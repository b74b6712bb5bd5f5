import Crypto
import Foundation
import Hummingbird
import KafkaSyncCore

/// Refuses a request whose declared body is larger than `maxBodySize` (413) before a route reads it. A body
/// without a length is bounded where it is read (``DashboardRequestContext/maxUploadSize``).
struct RequestLimitsMiddleware<Context: RequestContext>: RouterMiddleware {
    let maxBodySize: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > maxBodySize {
            throw HTTPError(.contentTooLarge, message: "the request body is larger than \(maxBodySize) bytes")
        }
        return try await next(request, context)
    }
}

/// Requires `Authorization: Bearer <token>`; anything else is 401. The comparison takes the same time wherever the
/// tokens differ (both are hashed first), and the token never appears in a response or a log line.
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    private let expected: SHA256.Digest

    init(token: Secret) {
        expected = SHA256.hash(data: Data(token.revealed.utf8))
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let header = request.headers[.authorization] ?? ""
        let prefix = "Bearer "
        guard header.hasPrefix(prefix), SHA256.hash(data: Data(header.dropFirst(prefix.count).utf8)) == expected else {
            throw HTTPError(.unauthorized, headers: [.wwwAuthenticate: "Bearer"], message: "a bearer token is required")
        }
        return try await next(request, context)
    }
}
