import Crypto
import Foundation
import Hummingbird
import KafkaSyncCore

/// Logs each request at debug level: method and path only, never the query (EventSource's `?token=`) nor headers
/// (`Authorization`).
struct LogPathsMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        context.logger.debug("HTTP request", metadata: ["http.method": "\(request.method)", "http.path": "\(request.uri.path)"])
        return try await next(request, context)
    }
}

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

/// Requires `Authorization: Bearer <token>` (or `?token=`, which EventSource needs: it cannot set headers);
/// anything else is 401. With `readsOpen`, GET passes without it and only writes (POST) need it, so a page of
/// another origin can never publish jobs (it cannot read the token, and CORS is closed). The comparison takes the
/// same time wherever the tokens differ (both are hashed first); the token never appears in a response or a log line.
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    private let expected: SHA256.Digest
    private let readsOpen: Bool

    init(token: Secret, readsOpen: Bool) {
        expected = SHA256.hash(data: Data(token.revealed.utf8))
        self.readsOpen = readsOpen
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        if readsOpen && (request.method == .get || request.method == .head) { return try await next(request, context) }
        let header = request.headers[.authorization] ?? ""
        let prefix = "Bearer "
        let given = header.hasPrefix(prefix) ? String(header.dropFirst(prefix.count)) : request.uri.queryParameters.get("token")
        guard let given, SHA256.hash(data: Data(given.utf8)) == expected else {
            throw HTTPError(.unauthorized, headers: [.wwwAuthenticate: "Bearer"], message: "a bearer token is required")
        }
        return try await next(request, context)
    }
}
