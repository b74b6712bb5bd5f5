import Foundation

/// What a finished subprocess left behind.
public struct ProcessResult: Sendable {
    /// The exit status (or the signal number for a process killed by a signal).
    public let status: Int32
    /// Everything it wrote to standard output.
    public let stdout: String
    /// Everything it wrote to standard error.
    public let stderr: String
}

/// Runs a program to completion off the cooperative pool, feeding `stdin` (then closing it).
/// - Parameters:
///   - executable: an absolute path, or a name looked up on `PATH`.
///   - environment: added to (and overriding) this process's environment.
public func runProcess(_ executable: String, _ arguments: [String], stdin: String? = nil,
                       environment: [String: String] = [:], currentDirectory: String? = nil) async throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try resolveExecutable(executable))
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
    let input = Pipe(), output = Pipe(), errors = Pipe()
    process.standardInput = input
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    return try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            // Drain both pipes concurrently so neither can fill up and stall the child. `out` and `err` are
            // each written by one block and read only after `group.wait()`, so they are never shared unsafely.
            let group = DispatchGroup()
            nonisolated(unsafe) var out = Data()
            nonisolated(unsafe) var err = Data()
            DispatchQueue.global().async(group: group) { out = output.fileHandleForReading.readDataToEndOfFile() }
            DispatchQueue.global().async(group: group) { err = errors.fileHandleForReading.readDataToEndOfFile() }
            if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
            try? input.fileHandleForWriting.close()
            group.wait()
            process.waitUntilExit()
            continuation.resume(returning: ProcessResult(status: process.terminationStatus,
                                                         stdout: String(decoding: out, as: UTF8.self),
                                                         stderr: String(decoding: err, as: UTF8.self)))
        }
    }
}

/// A long-running child process (a broker, a daemon) whose output lines can be awaited.
public final class BackgroundProcess: Sendable {
    private let process: Process
    private let lines: AsyncStream<String>
    private let errorOutput: ErrorCollector

    /// Starts the program with its standard input closed.
    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try resolveExecutable(executable))
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardInput = FileHandle.nullDevice
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        let (lines, sink) = AsyncStream.makeStream(of: String.self)
        let collector = ErrorCollector()
        try process.run()
        DispatchQueue.global().async {
            var pending = Data()
            while case let chunk = output.fileHandleForReading.availableData, !chunk.isEmpty {
                pending.append(chunk)
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    sink.yield(String(decoding: pending[..<newline], as: UTF8.self))
                    pending.removeSubrange(...newline)
                }
            }
            sink.finish()
        }
        DispatchQueue.global().async {
            while case let chunk = errors.fileHandleForReading.availableData, !chunk.isEmpty {
                collector.append(chunk)
            }
        }
        self.process = process
        self.lines = lines
        self.errorOutput = collector
    }

    /// The next line of standard output, or `nil` once it is closed.
    public func nextLine() async -> String? {
        var iterator = lines.makeAsyncIterator()
        return await iterator.next()
    }

    /// Everything written to standard error so far.
    public var stderr: String { errorOutput.text }

    /// Sends a signal (default SIGTERM) and waits for the exit status.
    public func stop(signal: Int32 = SIGTERM) async -> Int32 {
        kill(process.processIdentifier, signal)
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                self.process.waitUntilExit()
                continuation.resume(returning: self.process.terminationStatus)
            }
        }
    }

    deinit {
        if process.isRunning { process.terminate() }
    }
}

/// Collects a child's standard error.
final class ErrorCollector: Sendable {
    private let data = LockedData()
    func append(_ chunk: Data) { data.append(chunk) }
    var text: String { String(decoding: data.value, as: UTF8.self) }
}

import Synchronization

final class LockedData: Sendable {
    private let storage = Mutex(Data())
    func append(_ chunk: Data) { storage.withLock { $0.append(chunk) } }
    var value: Data { storage.withLock { $0 } }
}

/// Finds a program: an absolute path as it is, a bare name on `PATH`.
func resolveExecutable(_ name: String) throws -> String {
    if name.hasPrefix("/") { return name }
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for directory in path.split(separator: ":") {
        let candidate = "\(directory)/\(name)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    throw MissingProgram(name: name)
}

/// A program the tests need is not installed (`scripts/bootstrap` installs it).
public struct MissingProgram: Error, CustomStringConvertible {
    /// The program's name.
    public let name: String
    public var description: String { "\(name) is not installed; run scripts/bootstrap" }
}

/// The `kafkasync` executable built by `swift build`.
public func kafkasyncExecutable(filePath: String = #filePath) throws -> String {
    try builtExecutable("kafkasync", filePath: filePath)
}

/// An executable of this package built by `swift build`: in `KAFKASYNC_BIN_PATH` (what
/// `swift build --show-bin-path` prints; `scripts/test` sets it), else in `<package>/.build/debug`.
public func builtExecutable(_ name: String, filePath: String = #filePath) throws -> String {
    let directory: String
    if let path = ProcessInfo.processInfo.environment["KAFKASYNC_BIN_PATH"] {
        directory = path
    } else {
        // Sources/TestSupport/<file>.swift → the package root, which holds Package.swift.
        var root = URL(fileURLWithPath: filePath)
        while root.path != "/" && !FileManager.default.fileExists(atPath: root.appendingPathComponent("Package.swift").path) {
            root.deleteLastPathComponent()
        }
        directory = root.appendingPathComponent(".build/debug").path
    }
    let candidate = (directory as NSString).appendingPathComponent(name)
    guard FileManager.default.isExecutableFile(atPath: candidate) else { throw MissingProgram(name: candidate) }
    return candidate
}
