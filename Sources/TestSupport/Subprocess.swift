import Foundation
import Subprocess
import SystemPackage

/// What a finished subprocess left behind.
public struct ProcessResult: Sendable {
    /// The exit status (or the signal number for a process killed by a signal).
    public let status: Int32
    /// Everything it wrote to standard output.
    public let stdout: String
    /// Everything it wrote to standard error.
    public let stderr: String
}

/// Runs a program to completion, feeding `stdin` (then closing it; `nil` gives it /dev/null) and reading its
/// standard output and error concurrently (swift-subprocess), up to 64 MiB each. Cancelling the task kills it.
/// - Parameters:
///   - executable: an absolute path, or a name looked up on `PATH`.
///   - environment: added to (and overriding) this process's environment.
public func runProcess(_ executable: String, _ arguments: [String], stdin: String? = nil,
                       environment: [String: String] = [:], currentDirectory: String? = nil) async throws -> ProcessResult {
    let configuration = Subprocess.Configuration(
        executable: .path(FilePath(try resolveExecutable(executable))), arguments: Arguments(arguments),
        environment: .inherit.updating(Dictionary(uniqueKeysWithValues: environment.map { (Environment.Key(stringLiteral: $0.key), $0.value) })),
        workingDirectory: currentDirectory.map { FilePath($0) })
    let limit = 64 << 20
    let result = if let stdin {
        try await Subprocess.run(configuration, input: .string(stdin), output: .string(limit: limit), error: .string(limit: limit))
    } else {
        try await Subprocess.run(configuration, input: .none, output: .string(limit: limit), error: .string(limit: limit))
    }
    let status: Int32 = switch result.terminationStatus {
    case .exited(let code): code
    case .signaled(let signal): signal
    }
    return ProcessResult(status: status, stdout: result.standardOutput, stderr: result.standardError)
}

/// A long-running child process (a broker, a daemon) whose output lines can be awaited.
///
/// Started with `posix_spawn`, not Foundation's `Process`: daemons such as sshd close every inherited file
/// descriptor at start, which Foundation's process monitor on Linux mistakes for an exit and then blocks on,
/// stalling every other `Process` of the test run.
public final class BackgroundProcess: Sendable {
    private let pid: pid_t
    private let lines: AsyncStream<String>
    private let errorOutput: ErrorCollector
    private let exitStatus = Mutex<Int32?>(nil)

    /// Starts the program with its standard input from /dev/null.
    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        let path = try resolveExecutable(executable)
        var output: [Int32] = [0, 0], errors: [Int32] = [0, 0]
        guard pipe(&output) == 0, pipe(&errors) == 0 else {
            throw FixtureUnavailable(what: "pipe: \(String(cString: strerror(errno)))")
        }
        // Only the dup2'ed copies reach the child.
        for fd in output + errors { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errors[1], 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The spawning thread may block signals (dispatch workers do): start the child with a clean slate.
        var noSignals = sigset_t(), defaults = sigset_t()
        sigemptyset(&noSignals)
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGPIPE, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let env = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + env).forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, path, &actions, &attributes, argv, env)
        close(output[1])
        close(errors[1])
        guard spawned == 0 else {
            close(output[0])
            close(errors[0])
            throw FixtureUnavailable(what: "cannot start \(path): \(String(cString: strerror(spawned)))")
        }
        self.pid = pid
        let (lines, sink) = AsyncStream.makeStream(of: String.self)
        let collector = ErrorCollector()
        let (outputFD, errorFD) = (output[0], errors[0])
        // Threads of their own for the blocking reads: dispatch's worker threads also run Swift's tasks and
        // swift-subprocess's I/O on Linux, and a test run with dozens of fixtures would pin them all.
        Thread {
            var pending = Data()
            readUntilEOF(outputFD) { chunk in
                pending.append(chunk)
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    sink.yield(String(decoding: pending[..<newline], as: UTF8.self))
                    pending.removeSubrange(...newline)
                }
            }
            sink.finish()
        }.start()
        Thread { readUntilEOF(errorFD) { collector.append($0) } }.start()
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

    /// The child's process id.
    public var processIdentifier: pid_t { pid }

    /// Whether the process still runs.
    public var isRunning: Bool {
        exitStatus.withLock { status in
            if status != nil { return false }
            var raw: Int32 = 0
            guard waitpid(pid, &raw, WNOHANG) == pid else { return true }
            status = Self.decode(raw)
            return false
        }
    }

    /// Sends a signal (default SIGTERM) and waits for the exit status (the signal number if killed by one).
    public func stop(signal: Int32 = SIGTERM) async -> Int32 {
        if isRunning { kill(pid, signal) }
        return await withCheckedContinuation { continuation in
            // The wait is not under the lock: `isRunning` (called from tasks) must never wait for the exit.
            Thread {
                var raw: Int32 = 0
                var reaped: pid_t
                repeat { reaped = waitpid(self.pid, &raw, 0) } while reaped == -1 && errno == EINTR
                let status = self.exitStatus.withLock { status in
                    // -1 (ECHILD): `isRunning` reaped it first and recorded the status.
                    if status == nil && reaped == self.pid { status = Self.decode(raw) }
                    return status ?? -1
                }
                continuation.resume(returning: status)
            }.start()
        }
    }

    /// Exit code, or the signal number for a process killed by a signal.
    private static func decode(_ raw: Int32) -> Int32 {
        let signal = raw & 0x7f
        return signal == 0 ? (raw >> 8) & 0xff : signal
    }

    deinit {
        if isRunning {
            kill(pid, SIGKILL)
            var raw: Int32 = 0
            waitpid(pid, &raw, 0)
        }
    }
}

/// Reads a file descriptor to its end, handing each chunk over, then closes it.
private func readUntilEOF(_ fd: Int32, _ handle: (Data) -> Void) {
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
        let count = read(fd, &buffer, buffer.count)
        if count > 0 {
            handle(Data(buffer[0..<count]))
        } else if count == 0 || errno != EINTR {
            break
        }
    }
    close(fd)
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

/// The folder that holds this package's Package.swift, found from a source file's path (`#filePath`).
public func packageRoot(filePath: String = #filePath) -> String {
    var root = URL(fileURLWithPath: filePath)
    while root.path != "/" && !FileManager.default.fileExists(atPath: root.appendingPathComponent("Package.swift").path) {
        root.deleteLastPathComponent()
    }
    return root.path
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
        directory = packageRoot(filePath: filePath) + "/.build/debug"
    }
    let candidate = (directory as NSString).appendingPathComponent(name)
    guard FileManager.default.isExecutableFile(atPath: candidate) else { throw MissingProgram(name: candidate) }
    return candidate
}
