import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// One element of a parsed XML document: its name, its own character data and its child elements.
struct XMLNode: Sendable, Equatable {
    var name: String
    var text = ""
    var children: [XMLNode] = []

    /// The first child named `name`.
    func child(_ name: String) -> XMLNode? { children.first { $0.name == name } }
    /// Every child named `name`.
    func children(_ name: String) -> [XMLNode] { children.filter { $0.name == name } }
    /// The text of the first child named `name`.
    func text(_ name: String) -> String? { child(name)?.text }
    /// Whether this is the root of the answer to `operation`: S3 names it `<Operation>Result`, moto
    /// `<Operation>Response`.
    func isAnswer(of operation: String) -> Bool { name == operation + "Result" || name == operation + "Response" }
    /// The text of the first child named `name`, without surrounding whitespace (numbers, booleans).
    func trimmed(_ name: String) -> String? { text(name)?.trimmingCharacters(in: .whitespacesAndNewlines) }
}

/// The S3 XML documents this client reads and writes. Parsing is strict and bounded: at most ``maxBytes`` of
/// input, ``maxDepth`` levels, no DTD or external entities; anything else is `nil` (the caller's `BadResponse`).
enum S3XML {
    /// The largest XML answer read (ListParts of 10,000 parts is about 2.5 MB).
    static let maxBytes = 16 << 20
    static let maxDepth = 32

    /// Parses a document; `nil` when it is not well-formed, too large or too deep. Leading whitespace is skipped:
    /// S3 sends spaces before a `CompleteMultipartUpload` answer to keep the connection alive.
    static func parse(_ bytes: [UInt8]) -> XMLNode? {
        guard bytes.count <= maxBytes else { return nil }
        let start = bytes.firstIndex { !(($0 == 0x20) || ($0 == 0x09) || ($0 == 0x0A) || ($0 == 0x0D)) }
        guard let start else { return nil }
        let parser = XMLParser(data: Data(bytes[start...]))
        parser.shouldResolveExternalEntities = false
        parser.shouldProcessNamespaces = false
        let builder = TreeBuilder()
        parser.delegate = builder
        guard parser.parse(), !builder.failed, let root = builder.root else { return nil }
        return root
    }

    // MARK: Answers

    /// `<Error><Code/><Message/><RequestId/></Error>`: code, message, request ID; `nil` for any other document.
    static func error(_ root: XMLNode) -> (code: String, message: String, requestID: String?)? {
        guard root.name == "Error", let code = root.text("Code"), !code.isEmpty else { return nil }
        return (code, root.text("Message") ?? "", root.text("RequestId"))
    }

    /// `InitiateMultipartUploadResult/UploadId`.
    static func uploadID(_ root: XMLNode) -> String? {
        guard root.isAnswer(of: "InitiateMultipartUpload") || root.isAnswer(of: "CreateMultipartUpload"),
              let id = root.text("UploadId"), !id.isEmpty
        else { return nil }
        return id
    }

    /// `CompleteMultipartUploadResult/ETag`.
    static func completedETag(_ root: XMLNode) -> String? {
        guard root.isAnswer(of: "CompleteMultipartUpload"), let etag = root.text("ETag"), !etag.isEmpty else {
            return nil
        }
        return etag
    }

    struct PartsPage: Equatable {
        var parts: [S3Part]
        var isTruncated: Bool
        var nextPartNumberMarker: Int?
    }

    /// One page of `ListPartsResult`; `nil` when a part lacks its number, ETag or size.
    static func partsPage(_ root: XMLNode) -> PartsPage? {
        guard root.isAnswer(of: "ListParts") else { return nil }
        var parts: [S3Part] = []
        for node in root.children("Part") {
            guard let number = node.trimmed("PartNumber").flatMap({ Int($0) }), let etag = node.text("ETag"),
                  let size = node.trimmed("Size").flatMap({ Int64($0) })
            else { return nil }
            let checksum = node.text("ChecksumSHA256") ?? node.text("ChecksumCRC32C")
            parts.append(S3Part(number: number, etag: etag, checksum: checksum, size: size))
        }
        return PartsPage(parts: parts, isTruncated: root.trimmed("IsTruncated")?.lowercased() == "true",
                         nextPartNumberMarker: root.trimmed("NextPartNumberMarker").flatMap { Int($0) })
    }

    struct UploadsPage {
        var uploads: [S3MultipartUploadInfo]
        var isTruncated: Bool
        var nextKeyMarker: String?
        var nextUploadIDMarker: String?
    }

    /// One page of `ListMultipartUploadsResult`; `nil` when an upload lacks its key, ID or a valid date.
    static func uploadsPage(_ root: XMLNode) -> UploadsPage? {
        guard root.isAnswer(of: "ListMultipartUploads") else { return nil }
        var uploads: [S3MultipartUploadInfo] = []
        for node in root.children("Upload") {
            guard let key = node.text("Key"), let id = node.text("UploadId"),
                  let initiated = node.trimmed("Initiated").flatMap(date)
            else { return nil }
            uploads.append(S3MultipartUploadInfo(key: key, uploadID: id, initiated: initiated))
        }
        return UploadsPage(uploads: uploads, isTruncated: root.trimmed("IsTruncated")?.lowercased() == "true",
                           nextKeyMarker: root.text("NextKeyMarker"),
                           nextUploadIDMarker: root.text("NextUploadIdMarker"))
    }

    /// An ISO 8601 timestamp with or without fractional seconds (`2010-11-10T20:48:33.000Z`).
    static func date(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }

    // MARK: Requests

    /// The `CompleteMultipartUpload` body: parts by ascending number, each with its checksum element when it has
    /// one (the element told by the checksum's length).
    static func completeBody(_ parts: [S3Part]) -> String {
        var body = #"<?xml version="1.0" encoding="UTF-8"?>"#
            + #"<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#
        for part in parts.sorted(by: { $0.number < $1.number }) {
            body += "<Part><PartNumber>\(part.number)</PartNumber><ETag>\(escape(part.etag))</ETag>"
            if let checksum = part.checksum,
               let element = S3ChecksumAlgorithm.inferred(fromBase64: checksum)?.xmlElement {
                body += "<\(element)>\(escape(checksum))</\(element)>"
            }
            body += "</Part>"
        }
        return body + "</CompleteMultipartUpload>"
    }

    /// The `CreateBucket` body for regions other than us-east-1.
    static func createBucketBody(region: String) -> String {
        #"<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>"#
            + escape(region) + "</LocationConstraint></CreateBucketConfiguration>"
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(character)
            }
        }
        return out
    }
}

/// Builds an `XMLNode` tree from parser events. Used by one parser on one thread, then read; never shared.
private final class TreeBuilder: NSObject, XMLParserDelegate {
    var stack: [XMLNode] = []
    var root: XMLNode?
    var failed = false

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
        guard stack.count < S3XML.maxDepth, root == nil else {
            failed = true
            parser.abortParsing()
            return
        }
        stack.append(XMLNode(name: elementName))
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        guard !stack.isEmpty else { return }
        stack[stack.count - 1].text += string
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?,
                qualifiedName qName: String?) {
        guard let node = stack.popLast() else { return }
        if stack.isEmpty {
            root = node
        } else {
            stack[stack.count - 1].children.append(node)
        }
    }

    func parser(_ parser: XMLParser, foundExternalEntityDeclarationWithName name: String, publicID: String?,
                systemID: String?) {
        failed = true
        parser.abortParsing()
    }

    func parser(_ parser: XMLParser, parseErrorOccurred parseError: any Error) {
        failed = true
    }
}
