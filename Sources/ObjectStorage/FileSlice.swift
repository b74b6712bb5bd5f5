import Crypto
import Foundation
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A byte range of a local file, read with `pread` on NIO's blocking thread pool (never on Swift's cooperative
/// threads), in chunks of ``chunkSize``: uploading it twice over (once to hash, once to send) holds one chunk at a
/// time, whatever its length.
struct FileSlice: Sendable {
    static let chunkSize = 1 << 20

    let file: ReadOnlyFile
    let offset: Int64
    let length: Int64

    /// Opens `path` and checks that `[offset, offset + length)` lies inside it; `length` `nil` means "to the end".
    static func open(path: String, offset: Int64, length: Int64?) async throws -> FileSlice {
        try await NIOThreadPool.singleton.runIfActive {
            let file = try ReadOnlyFile(path: path)
            let size = try file.size()
            let length = length ?? max(0, size - offset)
            guard offset >= 0, length >= 0, offset + length <= size else {
                throw S3Error(status: nil, code: "LocalFile",
                              message: "\(path) has \(size) bytes, fewer than \(length) from offset \(offset)")
            }
            return FileSlice(file: file, offset: offset, length: length)
        }
    }

    /// The lowercase hex SHA-256 of the range (the SigV4 payload hash) and its `algorithm` checksum (base64).
    func digest(checksum algorithm: S3ChecksumAlgorithm) async throws -> (payloadHash: String, checksum: String?) {
        try await NIOThreadPool.singleton.runIfActive { [self] in
            var sha = SHA256()
            var crc = CRC32C()
            var buffer = ByteBufferAllocator().buffer(capacity: Self.chunkSize)
            var position = offset
            while position < offset + length {
                let count = Int(min(Int64(Self.chunkSize), offset + length - position))
                buffer.clear()
                try file.read(into: &buffer, offset: position, count: count)
                buffer.withUnsafeReadableBytes { bytes in
                    sha.update(bufferPointer: bytes)
                    if algorithm == .crc32c { crc.update(bytes) }
                }
                position += Int64(count)
            }
            let digest = sha.finalize()
            let checksum: String? = switch algorithm {
            case .sha256: Data(digest).base64EncodedString()
            case .crc32c: crc.base64
            default: nil
            }
            return (SigV4Signer.hex(digest), checksum)
        }
    }

    /// The range as a sequence of chunks, read as the HTTP client asks for them.
    var chunks: Chunks { Chunks(file: file, start: offset, end: offset + length) }

    struct Chunks: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        let file: ReadOnlyFile
        let start: Int64
        let end: Int64

        func makeAsyncIterator() -> Iterator { Iterator(file: file, position: start, end: end) }

        struct Iterator: AsyncIteratorProtocol {
            let file: ReadOnlyFile
            var position: Int64
            let end: Int64

            mutating func next() async throws -> ByteBuffer? {
                guard position < end else { return nil }
                let count = Int(Swift.min(Int64(FileSlice.chunkSize), end - position))
                let (file, offset) = (self.file, position)
                let buffer = try await NIOThreadPool.singleton.runIfActive {
                    var buffer = ByteBufferAllocator().buffer(capacity: count)
                    try file.read(into: &buffer, offset: offset, count: count)
                    return buffer
                }
                position += Int64(count)
                return buffer
            }
        }
    }
}

/// An open read-only file descriptor, closed when the last reference goes.
///
/// `Sendable`: the descriptor never changes, and `pread` takes its offset as an argument instead of moving the
/// descriptor's shared one, so reads from several threads do not disturb each other.
final class ReadOnlyFile: Sendable {
    let descriptor: CInt
    let path: String

    /// Opens `path` for reading. Blocking.
    init(path: String) throws {
        #if canImport(Glibc)
        let descriptor = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        #elseif canImport(Musl)
        let descriptor = Musl.open(path, O_RDONLY | O_CLOEXEC)
        #else
        let descriptor = Darwin.open(path, O_RDONLY | O_CLOEXEC)
        #endif
        guard descriptor >= 0 else {
            throw S3Error(status: nil, code: "LocalFile", message: "cannot open \(path): \(Self.errorText(errno))")
        }
        self.descriptor = descriptor
        self.path = path
    }

    deinit { close(descriptor) }

    /// The file's size. Blocking.
    func size() throws -> Int64 {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            throw S3Error(status: nil, code: "LocalFile", message: "cannot stat \(path): \(Self.errorText(errno))")
        }
        return Int64(info.st_size)
    }

    /// Appends exactly `count` bytes read at `offset` to `buffer`. Blocking.
    func read(into buffer: inout ByteBuffer, offset: Int64, count: Int) throws {
        var done = 0
        while done < count {
            var result = 0
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count - done) { pointer in
                result = pread(descriptor, pointer.baseAddress, count - done, off_t(offset + Int64(done)))
                return max(result, 0)
            }
            if result < 0 {
                if errno == EINTR { continue }
                throw S3Error(status: nil, code: "LocalFile", message: "cannot read \(path): \(Self.errorText(errno))")
            }
            guard result > 0 else {
                throw S3Error(status: nil, code: "LocalFile",
                              message: "\(path) ended at \(offset + Int64(done)), before \(offset + Int64(count))")
            }
            done += result
        }
    }

    private static func errorText(_ code: CInt) -> String { String(cString: strerror(code)) }
}
