import Foundation
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Runs a suite inside one moto server (TestSupport's ``S3Fixture``, started before its first test, stopped after
/// its last): starting one takes seconds. Its tests read moto's own address (not the fault proxy's) from
/// ``MotoServer/endpoint`` and make their own buckets.
struct MotoServerTrait: SuiteTrait, TestScoping {
    var isRecursive: Bool { false }

    func provideScope(for test: Test, testCase: Test.Case?,
                      performing function: @Sendable () async throws -> Void) async throws {
        try await withS3Fixture { s3 in
            try await MotoServer.$endpoint.withValue(URL(string: s3.directEndpoint)!) { try await function() }
        }
    }
}

extension Trait where Self == MotoServerTrait {
    /// One moto server for the whole suite.
    static var motoServer: Self { Self() }
}

/// The moto server of the running suite.
enum MotoServer {
    /// Its endpoint (``MotoServerTrait``).
    @TaskLocal static var endpoint: URL?

    struct StartFailure: Error, CustomStringConvertible {
        var description: String
    }
}

/// A loopback TCP socket that listens but never accepts or answers: the kernel completes connections, so requests
/// are sent and then wait forever.
final class SilentListener {
    let port: Int
    private let fd: CInt

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                bind(fd, address, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, address, &length) == 0
            }
        }
        guard fd >= 0, ok else {
            close(fd)
            throw MotoServer.StartFailure(description: "listen failed: \(errno)")
        }
        self.fd = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }
}
