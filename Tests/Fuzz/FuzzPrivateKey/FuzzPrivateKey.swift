import Foundation
import FuzzSupport
import SFTPClient

/// `OpenSSHPrivateKey.parse` on any key file: it returns a key or throws an `SFTPError`, never traps.
/// An input starting with `0x00` is an `openssh-key-v1` blob that the target armors itself, so the fuzzer
/// mutates the binary format directly instead of its base64.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = bytes(data, size)
    let text: String
    if input.first == 0 {
        text = "-----BEGIN OPENSSH PRIVATE KEY-----\n"
            + Data(input.dropFirst()).base64EncodedString(options: .lineLength76Characters)
            + "\n-----END OPENSSH PRIVATE KEY-----\n"
    } else {
        text = String(decoding: input, as: UTF8.self)
    }
    _ = try? OpenSSHPrivateKey.parse(text, name: "fuzz")
    return 0
}

@_cdecl("FuzzPrivateKey_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, testOneInput)
}
