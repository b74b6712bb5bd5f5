/// A failed S3 request: the HTTP status, S3's error code, a message that never holds a credential or a signature,
/// and whether retrying later may succeed (`isTransient`).
///
/// Codes are S3's own (`NoSuchBucket`, `SlowDown`, `PreconditionFailed`, ...) when the server sent an error body,
/// else one of these:
/// - `Timeout`: no complete answer within the request timeout (transient).
/// - `Transport`: the connection failed or broke (transient).
/// - `BadResponse`: an answer that cannot be understood: not XML, missing fields, too large (transient: usually a
///   proxy or a broken connection).
/// - `ResponseTooLarge`: an answer over the size this call reads (64 MiB objects, 16 MiB XML; not transient).
/// - `LocalFile`: the local file cannot be opened or read, or is shorter than asked (not transient).
/// - `EntityTooLarge`, `InvalidArgument`: refused before sending (not transient).
/// - `NotFound`, `AccessDenied`, `BadRequest`, `HTTP<status>`, ...: an error status without a body (HEAD).
///
/// Compare codes, never messages.
public struct S3Error: Error, Sendable, Hashable, CustomStringConvertible {
    /// The HTTP status, or `nil` when no response arrived (transport errors, timeouts) or the request was refused
    /// before sending.
    public let status: Int?
    /// S3's error code, or one of this module's codes listed on the type.
    public let code: String
    /// A human explanation: the operation, the key and the server's message. Never a credential or signature.
    public let message: String
    /// The server's request ID (`x-amz-request-id` or `<RequestId>`), for support cases.
    public let requestID: String?

    /// Creates an error.
    public init(status: Int?, code: String, message: String, requestID: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.requestID = requestID
    }

    /// Codes that mean "try again later", whatever the status.
    private static let transientCodes: Set<String> = [
        "Timeout", "Transport", "BadResponse",
        "SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "Throttling", "ThrottlingException",
        "ThrottledException", "RequestThrottled", "TooManyRequests", "TooManyRequestsException",
        "RequestLimitExceeded", "BandwidthLimitExceeded", "OperationAborted", "ConditionalRequestConflict",
    ]

    /// Whether retrying later may succeed: 500, 502, 503, 504, 408 and 429 statuses, throttling and time-outs on
    /// either side, transport errors and garbled answers. Everything else (403, 404, `NoSuchBucket`,
    /// `NoSuchUpload`, `PreconditionFailed`, `EntityTooLarge`, `InvalidRequest`, `BadDigest`, local file errors)
    /// is permanent.
    public var isTransient: Bool {
        if Self.transientCodes.contains(code) { return true }
        switch status {
        case 408, 429, 500, 502, 503, 504: return true
        default: return false
        }
    }

    /// `S3 error <code> (HTTP <status>): <message> [request <id>]`.
    public var description: String {
        var text = "S3 error \(code)"
        if let status { text += " (HTTP \(status))" }
        text += ": \(message)"
        if let requestID { text += " [request \(requestID)]" }
        return text
    }

    /// The code for an error status that came without an error body (HEAD answers have none).
    static func code(forStatus status: Int) -> String {
        switch status {
        case 301: "PermanentRedirect"
        case 400: "BadRequest"
        case 403: "AccessDenied"
        case 404: "NotFound"
        case 405: "MethodNotAllowed"
        case 409: "Conflict"
        case 412: "PreconditionFailed"
        case 416: "InvalidRange"
        case 429: "SlowDown"
        case 500: "InternalError"
        case 503: "ServiceUnavailable"
        default: "HTTP\(status)"
        }
    }
}
