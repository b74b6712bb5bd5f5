import FuzzSupport
import NIOCore
@testable import SFTPClient

/// The server's byte stream into `SFTPPacketParser`, whole and in fragments: it never traps, and the
/// fragments give the same responses (or the same failure) as the whole.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = bytes(data, size)
    // The first byte picks the fragment sizes (1…16 bytes, cycling), the rest is the stream.
    guard let first = input.first else { return 0 }
    let stream = Array(input.dropFirst())
    let whole = parse([stream[...]])
    var fragments: [ArraySlice<UInt8>] = []
    var offset = 0, step = Int(first % 16) + 1
    while offset < stream.count {
        let end = min(stream.count, offset + step)
        fragments.append(stream[offset..<end])
        offset = end
        step = step % 16 + 1
    }
    let fragmented = parse(fragments)
    if whole != fragmented { violated("fragments parse differently: \(whole) vs \(fragmented)") }
    return 0
}

/// What the parser made of the stream: the responses, then how it stopped.
private func parse(_ fragments: [ArraySlice<UInt8>]) -> [String] {
    var parser = SFTPPacketParser()
    var results: [String] = []
    for fragment in fragments {
        parser.append(ByteBuffer(bytes: fragment))
        do {
            while let response = try parser.nextResponse() {
                results.append(String(describing: response))
                if case .extendedReply(_, let data) = response { _ = try? SFTPPacketParser.limits(data) }
            }
        } catch {
            results.append("error: \(error.reason)")
            return results
        }
    }
    return results
}

@_cdecl("FuzzSFTPPackets_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, testOneInput)
}
