import Hummingbird
import NIOCore

/// The page (index.html, app.js, app.css under Assets/), embedded in the binary by SwiftPM (`.embedInCode`).
struct DashboardAssets: Sendable {
    /// The URL path.
    let path: String
    let contentType: String
    let bytes: [UInt8]

    static let all = [
        DashboardAssets(path: "/", contentType: "text/html; charset=utf-8", bytes: PackageResources.index_html),
        DashboardAssets(path: "/app.js", contentType: "text/javascript; charset=utf-8", bytes: PackageResources.app_js),
        DashboardAssets(path: "/app.css", contentType: "text/css; charset=utf-8", bytes: PackageResources.app_css),
    ]

    /// The file, with headers that keep other sites from framing the page or loading anything from elsewhere.
    var response: Response {
        Response(status: .ok, headers: [
            .contentType: contentType, .cacheControl: "no-cache", .xContentTypeOptions: "nosniff",
            .contentSecurityPolicy: "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
        ], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
