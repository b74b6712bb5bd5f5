// Starts libFuzzer's driver for a fuzz target (see scripts/fuzz).
//
// A fuzz target is an executable target whose `LLVMFuzzerTestOneInput` is a `@_cdecl` function. SwiftPM links
// every executable with `--defsym main=<module>_main`, so each target also defines that symbol and calls
// ``runFuzzer(_:_:_:)``, which hands the command line to libFuzzer (`LLVMFuzzerRunDriver`, compiler-rt).

@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// Runs libFuzzer with the process's arguments (`-max_total_time=10 corpus/`, …), calling `testOneInput` for
/// each input; returns its exit status.
public func runFuzzer(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                      _ testOneInput: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, testOneInput)
}

/// The input as an array (libFuzzer passes a null pointer for the empty input).
public func bytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
    guard let data, size > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: size))
}

/// Stops the run with a message libFuzzer reports as a crash (an invariant of the code under test broke).
public func violated(_ what: String) -> Never {
    fatalError("fuzz invariant violated: \(what)")
}
