import FuzzSupport
@testable import SFTPClient

/// A known_hosts file of any bytes (not UTF-8, hashed entries with broken base64, long wildcard runs):
/// parsing and matching never trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    for entry in HostKeyVerifier.entries(bytes(data, size)) {
        _ = entry.matches("[127.0.0.1]:2222")
        _ = entry.matches("sftp.example.com")
    }
    return 0
}

@_cdecl("FuzzKnownHosts_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, testOneInput)
}
