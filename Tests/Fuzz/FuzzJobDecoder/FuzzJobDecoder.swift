import FuzzSupport
import KafkaSyncCore

/// `TransferJob.decode` on any bytes a producer could publish: it throws a rejection or returns a job whose
/// paths are safe as the file system reads them (checked here on bytes, independently of the validation) and
/// whose own encoding decodes to the same job.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let job = try? TransferJob.decode(bytes(data, size)) else { return 0 }
    checkRelative(job.name, "name")
    if let destination = job.destination { checkRelative(destination, "destination") }
    if components(job.location).contains(dotDot) { violated("location has a .. component") }
    let again: TransferJob
    do {
        again = try TransferJob.decode(job.encodedJSON())
    } catch {
        violated("a decoded job's encoding is rejected: \(error)")
    }
    if again != job { violated("a job does not round-trip through its encoding") }
    return 0
}

private let dotDot: ArraySlice<UInt8> = [0x2E, 0x2E]

/// A path's components as bytes split at `/` and `\`.
private func components(_ path: String) -> [ArraySlice<UInt8>] {
    Array(path.utf8).split(omittingEmptySubsequences: false, whereSeparator: { $0 == 0x2F || $0 == 0x5C })
}

/// A path that stays below the folder it is joined to: not absolute, no `..`, `.` or empty component (but a
/// trailing separator).
private func checkRelative(_ path: String, _ field: String) {
    let bytes = Array(path.utf8)
    if bytes.first == 0x2F || bytes.first == 0x5C { violated("\(field) is absolute") }
    var parts = components(path)
    if parts.count > 1 && parts.last?.isEmpty == true { parts.removeLast() }
    if parts.contains(dotDot) { violated("\(field) has a .. component") }
    if parts.contains(where: { $0.isEmpty || $0 == [0x2E] }) { violated("\(field) has an empty or . component") }
}

@_cdecl("FuzzJobDecoder_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, testOneInput)
}
