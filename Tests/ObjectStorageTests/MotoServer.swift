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
}

/// A loopback TCP socket that listens but never accepts or answers: the kernel completes connections, so requests
/// are sent and then wait forever.
final class SilentListener {
    let port: Int
    private let fd: CInt

    init() throws {
        (fd, port) = try boundLoopbackSocket(listening: true)
    }

    deinit { close(fd) }
}
