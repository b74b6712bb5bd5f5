import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSH
import Synchronization

/// What the server says about a remote path.
public struct SFTPFileAttributes: Sendable, Equatable {
    /// Size in bytes, if the server said.
    public var size: Int64?
    /// POSIX permission and type bits, if the server said.
    public var permissions: UInt32?
    /// Modification time, if the server said.
    public var modificationTime: Date?
    /// Whether it is a directory.
    public var isDirectory: Bool
    /// Whether it is a regular file.
    public var isRegularFile: Bool

    /// Attributes with these values.
    public init(size: Int64?, permissions: UInt32?, modificationTime: Date?, isDirectory: Bool, isRegularFile: Bool) {
        self.size = size
        self.permissions = permissions
        self.modificationTime = modificationTime
        self.isDirectory = isDirectory
        self.isRegularFile = isRegularFile
    }

    init(_ attributes: SFTPAttributes) {
        size = attributes.size.map { Int64(clamping: $0) }
        permissions = attributes.permissions
        modificationTime = attributes.modificationTime.map { Date(timeIntervalSince1970: Double($0)) }
        isDirectory = attributes.isDirectory
        isRegularFile = attributes.isRegularFile
    }
}

/// One entry of a remote directory.
public struct SFTPDirectoryEntry: Sendable, Equatable {
    /// The entry's name: one path component, checked by ``SFTPSession/checkEntryName(_:in:)`` (never a path).
    public var name: String
    /// What the server said about it.
    public var attributes: SFTPFileAttributes
}

/// A remote file open for reading on one session, with the attributes it had when opened.
public struct SFTPOpenFile: Sendable {
    /// The remote path.
    public let path: String
    /// What the server said about it.
    public let attributes: SFTPFileAttributes
    let handle: ByteBuffer
}

/// An SFTP v3 session on one SSH channel: requests are pipelined, answered by id.
public final class SFTPSession: Sendable {
    private let channel: any Channel
    private let logger: Logger
    private let nextID = Mutex<UInt32>(1)
    /// The largest READ the server serves in one response (`limits@openssh.com`, else 32 KiB).
    public let maximumReadLength: Int

    private init(channel: any Channel, logger: Logger, maximumReadLength: Int) {
        self.channel = channel
        self.logger = logger
        self.maximumReadLength = maximumReadLength
    }

    /// Starts the subsystem, exchanges INIT/VERSION and asks for the server's limits.
    static func start(on channel: any Channel, logger: Logger) async throws(SFTPError) -> SFTPSession {
        do {
            try await channel.eventLoop.flatSubmit {
                (try? channel.pipeline.syncOperations.handler(type: SFTPChannelHandler.self))
                    .map { $0.subsystemStarted(on: channel.eventLoop) }
                    ?? channel.eventLoop.makeFailedFuture(SFTPError(.connectionLost, "the SFTP channel closed"))
            }.sftpValue()
        } catch {
            throw mapped(error)
        }
        let bootstrap = SFTPSession(channel: channel, logger: logger, maximumReadLength: 32 * 1024)
        guard case .version(let version, let extensions) = try await bootstrap.request({ _ in .initialize(version: 3) })
        else { throw SFTPError(.protocolError, "the server did not answer INIT with VERSION") }
        guard version >= 3 else { throw SFTPError(.protocolError, "the server speaks SFTP version \(version), not 3") }
        var readLength = 32 * 1024
        if extensions.contains(where: { $0.name == "limits@openssh.com" }),
           case .extendedReply(_, let data) = try await bootstrap.request({ .limits(id: $0) }),
           let limits = try? SFTPPacketParser.limits(data), limits.maximumReadLength > 0 {
            // Stay inside our own packet limit too (header bytes on top of the data).
            readLength = Int(min(limits.maximumReadLength, UInt64(SFTPPacketParser.defaultMaximumPacketLength - 1024)))
        }
        logger.debug("SFTP session started", metadata: ["sftp.max_read": "\(readLength)"])
        return SFTPSession(channel: channel, logger: logger, maximumReadLength: readLength)
    }

    // MARK: Requests

    /// Sends a request now and returns the future of its response (for pipelining).
    func send(_ make: (UInt32) -> SFTPRequest) -> EventLoopFuture<SFTPResponse> {
        withoutActuallyEscaping(make) { send([$0])[0] }
    }

    /// Sends requests now, in one SSH message, and returns the futures of their responses in the same order.
    func send(_ makes: [(UInt32) -> SFTPRequest]) -> [EventLoopFuture<SFTPResponse>] {
        let first = nextID.withLock { id in
            defer { id = id &+ UInt32(makes.count) }
            return id
        }
        let requests = makes.enumerated().map { index, make in
            (request: make(first &+ UInt32(index)), response: channel.eventLoop.makePromise(of: SFTPResponse.self))
        }
        // A write that never reaches the handler (closed channel) must still complete the responses
        // (completing an already completed promise is a no-op in NIO).
        let written = channel.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenFailure { error in requests.forEach { $0.response.fail(Self.mapped(error)) } }
        channel.writeAndFlush(SFTPOutbound(requests: requests), promise: written)
        return requests.map(\.response.futureResult)
    }

    func request(_ make: (UInt32) -> SFTPRequest) async throws(SFTPError) -> SFTPResponse {
        try await send(make).sftpValue()
    }

    static func mapped(_ error: any Error) -> SFTPError {
        (error as? SFTPError) ?? SFTPError(.connectionLost, "the SFTP connection failed: \(error)")
    }

    /// Turns a non-OK status into an error naming the path.
    static func error(_ code: SFTPStatusCode, _ message: String, path: String) -> SFTPError {
        let detail = message.isEmpty ? "" : " (\(message))"
        switch code {
        case .noSuchFile: return SFTPError(.noSuchFile, "\(path) does not exist on the server\(detail)")
        case .permissionDenied: return SFTPError(.permissionDenied, "the server denies access to \(path)\(detail)")
        case .noConnection, .connectionLost: return SFTPError(.connectionLost, "the server lost its connection\(detail)")
        case .badMessage, .operationUnsupported: return SFTPError(.protocolError, "the server rejected a request for \(path)\(detail)")
        default: return SFTPError(.failure, "the server failed on \(path)\(detail)")
        }
    }

    private func expectHandle(_ response: SFTPResponse, path: String) throws(SFTPError) -> ByteBuffer {
        switch response {
        case .handle(_, let handle): return handle
        case .status(_, let code, let message): throw Self.error(code, message, path: path)
        default: throw SFTPError(.protocolError, "unexpected answer to opening \(path)")
        }
    }

    private func expectAttributes(_ response: SFTPResponse, path: String) throws(SFTPError) -> SFTPAttributes {
        switch response {
        case .attributes(_, let attributes): return attributes
        case .status(_, let code, let message): throw Self.error(code, message, path: path)
        default: throw SFTPError(.protocolError, "unexpected answer to stat of \(path)")
        }
    }

    // MARK: Operations

    /// The canonical absolute form of `path` (REALPATH).
    public func realPath(_ path: String) async throws(SFTPError) -> String {
        switch try await request({ .realpath(id: $0, path: path) }) {
        case .name(_, let entries) where entries.count == 1: return entries[0].filename
        case .status(_, let code, let message): throw Self.error(code, message, path: path)
        default: throw SFTPError(.protocolError, "unexpected answer to REALPATH of \(path)")
        }
    }

    /// The attributes of `path`, following symbolic links (STAT).
    public func attributes(_ path: String) async throws(SFTPError) -> SFTPFileAttributes {
        SFTPFileAttributes(try expectAttributes(try await request({ .stat(id: $0, path: path) }), path: path))
    }

    /// The entries of a remote directory (without `.` and `..`), in the server's order.
    ///
    /// Names come from the server, so they are checked before anyone joins them to a path: see
    /// ``checkEntryName(_:in:)``. The `.` and `..` entries that every real server lists are dropped (they are never
    /// used as paths); any other unsafe name fails the whole listing.
    /// - Parameter limit: the listing stops once it holds more than `limit` entries (so it returns at most
    ///   `limit + 1`, and the caller can tell it was cut): a server cannot fill memory with names.
    /// - Throws: `protocol_error` (permanent) naming `unsafe_remote_name` and the entry, or the server's error.
    public func listDirectory(_ path: String, limit: Int = .max) async throws(SFTPError) -> [SFTPDirectoryEntry] {
        let handle = try expectHandle(try await request({ .opendir(id: $0, path: path) }), path: path)
        var entries: [SFTPDirectoryEntry] = []
        defer { _ = send({ .close(id: $0, handle: handle) }) }
        while entries.count <= limit {
            switch try await request({ .readdir(id: $0, handle: handle) }) {
            case .name(_, let names):
                for name in names where name.filename != "." && name.filename != ".." {
                    try Self.checkEntryName(name.filename, in: path)
                    entries.append(SFTPDirectoryEntry(name: name.filename, attributes: SFTPFileAttributes(name.attributes)))
                    if entries.count > limit { break }
                }
            case .status(_, .endOfFile, _):
                return entries
            case .status(_, let code, let message):
                throw Self.error(code, message, path: path)
            default:
                throw SFTPError(.protocolError, "unexpected answer to READDIR of \(path)")
            }
        }
        return entries
    }

    /// The longest name a listing may hold, in UTF-8 bytes (`NAME_MAX` of Linux and most file systems).
    public static let maximumNameLength = 255

    /// Checks that a name a server listed is one path component that stays where it is joined: not empty, not
    /// `.` or `..`, without `/`, `\\` or NUL, at most ``maximumNameLength`` bytes.
    /// - Throws: `protocol_error` whose message starts with `unsafe_remote_name` and names the entry, escaped.
    public static func checkEntryName(_ name: String, in folder: String) throws(SFTPError) {
        let isUnsafe = name.isEmpty || name == "." || name == ".." || name.utf8.count > maximumNameLength
            || name.utf8.contains { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "\\") || $0 == 0 }
        guard isUnsafe else { return }
        // Escaped (control characters, NUL, anything not ASCII) so the message is one printable line.
        var shown = "\"" + name.unicodeScalars.prefix(80).map { $0.escaped(asASCII: true) }.joined() + "\""
        if name.unicodeScalars.count > 80 { shown += "… (\(name.utf8.count) bytes)" }
        throw SFTPError(.protocolError, "unsafe_remote_name: the server listed \(shown) in \(folder), which is not a "
                        + "plain file name (empty, . or .., a /, \\ or NUL, or over \(maximumNameLength) bytes)")
    }

    /// The attributes of `path` (STAT, following symbolic links) and, when it is a regular file, the file opened for
    /// reading: STAT and OPEN go out together, so a file costs one round trip before its data instead of two.
    /// - Returns: the open file (for ``download(_:to:offset:window:progress:)`` or ``close(_:)``) when `path` is a
    ///   regular file and `open` is set; else `nil` (a handle the server gave anyway is closed).
    /// - Throws: the STAT's error, or when `path` is a regular file, the OPEN's.
    public func lookUp(_ path: String, open: Bool = true) async throws(SFTPError)
        -> (attributes: SFTPFileAttributes, file: SFTPOpenFile?)
    {
        guard open else { return (try await attributes(path), nil) }
        let responses = send([{ .stat(id: $0, path: path) }, { .open(id: $0, path: path, flags: .read, attributes: .empty) }])
        let (stat, opened) = (try await responses[0].sftpValue(), try await responses[1].sftpValue())
        let handle = try? expectHandle(opened, path: path)
        let attributes: SFTPFileAttributes
        do {
            attributes = SFTPFileAttributes(try expectAttributes(stat, path: path))
        } catch {
            handle.map(closeHandle)
            throw error
        }
        guard attributes.isRegularFile else {
            handle.map(closeHandle)
            return (attributes, nil)
        }
        return (attributes, SFTPOpenFile(path: path, attributes: attributes, handle: try expectHandle(opened, path: path)))
    }

    /// Opens a file for reading whose attributes the caller knows (from a directory listing).
    public func open(_ path: String, attributes: SFTPFileAttributes) async throws(SFTPError) -> SFTPOpenFile {
        SFTPOpenFile(path: path, attributes: attributes, handle: try await openHandle(path))
    }

    /// OPENs `path` for reading.
    private func openHandle(_ path: String) async throws(SFTPError) -> ByteBuffer {
        try expectHandle(try await request({ .open(id: $0, path: path, flags: .read, attributes: .empty) }), path: path)
    }

    /// Closes a file that is not downloaded after all (without waiting for the server's answer).
    public func close(_ file: SFTPOpenFile) {
        closeHandle(file.handle)
    }

    private func closeHandle(_ handle: ByteBuffer) {
        _ = send({ .close(id: $0, handle: handle) })  // nothing to learn from its answer
    }

    /// Downloads an open file (from ``lookUp(_:open:)`` or ``open(_:attributes:)``) into the local file
    /// `localPath` from `offset` on (for resuming: bytes before it are kept), and closes it. Up to `window` READs of
    /// ``maximumReadLength`` are in flight; memory stays bounded by them. With the size known, exactly that many
    /// bytes are read; without it, the server is asked (FSTAT) and one more READ confirms the end.
    ///
    /// The local file only ever holds a contiguous prefix: when the download fails it ends where the bytes stop
    /// following each other, so resuming from its size leaves no hole.
    /// - Parameters:
    ///   - limit: without a size from the listing, the most bytes the file may have (the size a job announced);
    ///     the FSTAT size bounds it too.
    ///   - progress: called with the contiguous bytes received so far (from `offset`); at most one chunk of them
    ///     is still being written when it is called.
    ///   - received: called with each chunk in file order, just before it is written (to digest the file while it
    ///     downloads, without reading it again).
    /// - Returns: the size of the local file when done.
    /// - Throws: `size_exceeded` (transient) when the file reads past the size announced (FSTAT or `limit`).
    public func download(_ file: SFTPOpenFile, to localPath: String, offset: Int64 = 0, window: Int = 32,
                         limit: Int64? = nil, progress: @Sendable (Int64) -> Void = { _ in },
                         received: (ByteBuffer) -> Void = { _ in }) async throws(SFTPError) -> Int64 {
        try await read(file.path, handle: file.handle, into: localPath, truncatingTo: offset, from: offset,
                       to: file.attributes.size, limit: limit, window: window, progress: progress, received: received)
    }

    /// Downloads the bytes `range` of `remotePath` into the same positions of `localPath`, leaving the rest of
    /// the local file alone (for segmented downloads: several ranges into one file at once). The range is written
    /// in order without holes, and `progress` reports the contiguous bytes from its start.
    /// - Returns: the end of the range.
    public func download(_ remotePath: String, to localPath: String, range: Range<Int64>, window: Int = 32,
                         progress: @Sendable (Int64) -> Void = { _ in }) async throws(SFTPError) -> Int64 {
        try await read(remotePath, handle: try await openHandle(remotePath), into: localPath, truncatingTo: nil,
                       from: range.lowerBound, to: range.upperBound, limit: nil, window: window, progress: progress,
                       received: { _ in })
    }

    /// Reads an open remote file into `localPath` and closes it (its CLOSE rides with the last READ when one READ
    /// is all there is left).
    private func read(_ remotePath: String, handle: ByteBuffer, into localPath: String, truncatingTo length: Int64?,
                      from start: Int64, to end: Int64?, limit: Int64?, window: Int, progress: @Sendable (Int64) -> Void,
                      received: (ByteBuffer) -> Void) async throws(SFTPError) -> Int64
    {
        var closed = false
        defer { if !closed { closeHandle(handle) } }
        var size = end.map { UInt64($0) }
        if size == nil {
            size = try? expectAttributes(try await request({ .fstat(id: $0, handle: handle) }), path: remotePath).size
        }
        let bound = [size, limit.map { UInt64(max(0, $0)) }].compactMap { $0 }.min()
        let file = try LocalFile(path: localPath, truncateTo: length)
        defer { file.close() }
        let written = try await readPipelined(handle: handle, path: remotePath, from: UInt64(start), size: size,
                                              confirmEnd: end == nil, limit: bound, window: max(1, window), into: file,
                                              closed: &closed, progress: progress, received: received)
        return start + written
    }

    /// Reads with up to `window` READs in flight. When `size` is known (and `confirmEnd` off) and one READ is all
    /// there is left, the CLOSE goes out with it and `closed` is set; a short answer then ends the download early
    /// (the caller sees fewer bytes than it asked for). With `confirmEnd` the file is read until the server says it
    /// ends, but never past `limit`.
    ///
    /// Only a contiguous prefix reaches the file: a short answer's rest is asked again, and the answers after it
    /// wait in memory (at most `window` of them: no new READ goes out meanwhile) until that gap is filled. So an
    /// interrupted download leaves a whole prefix to resume from, and `progress` counts only that prefix.
    /// - Returns: the bytes of the prefix written from `start`.
    private func readPipelined(handle: ByteBuffer, path: String, from start: UInt64, size: UInt64?, confirmEnd: Bool,
                               limit: UInt64?, window: Int, into file: LocalFile, closed: inout Bool,
                               progress: @Sendable (Int64) -> Void, received: (ByteBuffer) -> Void)
        async throws(SFTPError) -> Int64 {
        do {
            // One write runs while the next responses arrive; writes stay in offset order.
            return try await withThrowingTaskGroup(of: Void.self) { writes in
                let chunk = UInt64(maximumReadLength)
                var next = start
                var atEnd = false
                var contiguous = start  // where the bytes handed to the file end
                var writing = false
                var inFlight: [(offset: UInt64, length: UInt64, response: EventLoopFuture<SFTPResponse>)] = []
                inFlight.reserveCapacity(window)
                var reads: [(offset: UInt64, length: UInt64)] = []
                var held: [(offset: UInt64, data: ByteBuffer)] = []  // answers past a gap, by offset
                /// Sends the `reads` collected, in one message (with the CLOSE when `close` is set).
                func issue(close: Bool = false) {
                    var requests = reads.map { read in
                        { (id: UInt32) in SFTPRequest.read(id: id, handle: handle, offset: read.offset, length: UInt32(read.length)) }
                    }
                    if close { requests.append { .close(id: $0, handle: handle) } }
                    guard !requests.isEmpty else { return }
                    for (read, response) in zip(reads, send(requests)) { inFlight.append((read.offset, read.length, response)) }
                    reads.removeAll(keepingCapacity: true)
                }
                while true {
                    while !atEnd && inFlight.count + reads.count + held.count < window && (size.map { next < $0 } ?? true) {
                        let length = confirmEnd ? chunk : min(chunk, size! - next)
                        reads.append((next, length))
                        next += length
                    }
                    if confirmEnd && inFlight.isEmpty && reads.isEmpty && size.map({ next >= $0 }) == true && !atEnd {
                        // The size said we are done; one more read confirms the end (the file may have grown).
                        reads.append((next, chunk))
                        next += chunk
                    }
                    let last = !closed && !confirmEnd && inFlight.isEmpty && reads.count == 1 && size.map({ next >= $0 }) == true
                    issue(close: last)
                    closed = closed || last
                    guard !inFlight.isEmpty else { break }
                    let (offset, length, future) = inFlight.removeFirst()
                    switch try await future.sftpValue() {
                    case .data(_, let data):
                        let count = UInt64(data.readableBytes)
                        guard count > 0, count <= length else {
                            throw SFTPError(.protocolError, "the server returned \(count) bytes for a read of \(length)")
                        }
                        if let limit, offset + count > limit {
                            throw SFTPError(.sizeExceeded, "\(path) has more than the \(limit) bytes announced for it: "
                                            + "it grew while downloading")
                        }
                        // A short read: ask for the rest, while the file is open.
                        if count < length && !closed { reads.append((offset + count, length - count)) }
                        held.insert((offset, data), at: held.firstIndex { $0.offset > offset } ?? held.endIndex)
                        while let first = held.first, first.offset == contiguous {
                            held.removeFirst()
                            received(first.data)
                            if writing { try await writes.next() }
                            writing = first.data.readableBytes > LocalFile.inlineWriteLimit
                            if writing {
                                writes.addTask { try await file.write(first.data, at: Int64(first.offset)) }
                            } else {
                                try file.writeNow(first.data, at: Int64(first.offset))
                            }
                            contiguous += UInt64(first.data.readableBytes)
                        }
                        progress(Int64(contiguous - start))
                    case .status(_, .endOfFile, _):
                        atEnd = true
                    case .status(_, let code, let message):
                        throw Self.error(code, message, path: path)
                    default:
                        throw SFTPError(.protocolError, "unexpected answer to READ of \(path)")
                    }
                }
                // Answers still held lie past a gap that was never filled (a short last READ): they are dropped.
                try await writes.waitForAll()
                return Int64(contiguous - start)
            }
        } catch {
            throw Self.mapped(error)
        }
    }

    /// Closes the session's channel.
    public func close() async {
        try? await channel.close()
    }
}

extension EventLoopFuture where Value: Sendable {
    /// The future's value, as `get()`, except that a cancelled task stops waiting at once with `cancelled` (`get()`
    /// ignores cancellation: a task waiting on a silent server would hang until the stall time-out). Only the
    /// waiting ends: a request stays pending on its session, and an answer that still comes is dropped.
    /// - Throws: the future's error as an ``SFTPError`` (others become `connectionLost`), or `cancelled`.
    func sftpValue() async throws(SFTPError) -> Value {
        let waiter = eventLoop.makePromise(of: Value.self)
        cascade(to: waiter)
        do {
            return try await withTaskCancellationHandler {
                try await waiter.futureResult.get()
            } onCancel: {
                waiter.fail(SFTPError(.cancelled, "cancelled while waiting for the server"))
            }
        } catch {
            throw SFTPSession.mapped(error)
        }
    }
}

extension SFTPError {
    /// A local file system failure with `errno` `code`: `disk_full` for `ENOSPC` and `EDQUOT`, else `local_io`;
    /// never a server's `failure`.
    static func local(_ message: String, errno code: Int32) -> SFTPError {
        SFTPError(code == ENOSPC || code == EDQUOT ? .diskFull : .localIO, "\(message): \(String(cString: strerror(code)))")
    }
}

/// A local file written at offsets, off the cooperative pool with ``write(_:at:)`` (NIO's thread pool runs the
/// blocking call) or on the calling thread with ``writeNow(_:at:)``.
final class LocalFile: Sendable {
    /// The largest chunk written on the calling thread: a page-cache copy of a few microseconds, cheaper than
    /// handing it to another thread.
    static let inlineWriteLimit = 32 * 1024

    private let descriptor: Int32
    private let path: String

    /// Opens (creating) `path` for positional writes; with a `length`, cuts or extends the file to it first.
    /// A symbolic link at `path` is refused (`ELOOP`): a download never writes through a link.
    init(path: String, truncateTo length: Int64?) throws(SFTPError) {
        self.path = path
        descriptor = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard descriptor >= 0 else {
            throw SFTPError.local("cannot write \(path)", errno: errno)
        }
        // Only a file of another length is cut (truncating an empty new file to 0 would make ext4 flush it on close).
        var info = stat()
        guard length.map({ fstat(descriptor, &info) == 0 && info.st_size == $0 ? 0 : ftruncate(descriptor, off_t($0)) }) ?? 0 == 0 else {
            let code = errno
            Foundation.close(descriptor)
            throw SFTPError.local("cannot prepare \(path)", errno: code)
        }
    }

    /// Writes on NIO's thread pool.
    /// - Throws: `cancelled` when the task is cancelled before the write ran (a download cancelled while a chunk
    ///   was on its way to the disk), `local_io` or `disk_full` when the write fails.
    func write(_ data: ByteBuffer, at offset: Int64) async throws(SFTPError) {
        do {
            try await NIOThreadPool.singleton.runIfActive { try self.writeNow(data, at: offset) }
        } catch let error as SFTPError {
            throw error
        } catch {
            if error is CancellationError || Task.isCancelled {
                throw SFTPError(.cancelled, "cancelled while writing \(path)")
            }
            throw SFTPError(.localIO, "cannot write \(path): \(error)")
        }
    }

    /// Writes on the calling thread.
    func writeNow(_ data: ByteBuffer, at offset: Int64) throws(SFTPError) {
        try data.withUnsafeReadableBytes { (bytes) throws(SFTPError) in
            var done = 0
            while done < bytes.count {
                let result = pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
                if result < 0 {
                    if errno == EINTR { continue }
                    throw SFTPError.local("cannot write \(path)", errno: errno)
                }
                done += result
            }
        }
    }

    /// Closes the file (a close does not wait for the disk).
    func close() {
        Foundation.close(descriptor)
    }
}
