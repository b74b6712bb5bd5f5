import FuzzSupport
import KafkaSyncCore

/// `config.toml` text of any bytes through the loader: a configuration or a `ConfigError`, never a trap.
/// Relative paths resolve under a folder that does not exist, and no environment variable is set.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: bytes(data, size), as: UTF8.self)
    _ = try? KafkaSyncConfig.parse(toml: text, configFile: "/nonexistent/kafkasync-fuzz/config.toml", environment: [:])
    return 0
}

@_cdecl("FuzzConfigLoader_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, testOneInput)
}
