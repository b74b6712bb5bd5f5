import Foundation

/// A small file system mounted for one test (tests run as root, in CI too): a tmpfs of a given size, to fill a
/// disk for real, or an exFAT image through FUSE, a file system without hard links. ``unmount()`` removes it.
public struct TemporaryMount: Sendable {
    /// The mount point.
    public let path: String
    private let directory: TemporaryDirectory
    private let loopDevice: String?

    /// Mounts a tmpfs of `bytes` bytes.
    /// - Throws: ``FixtureUnavailable`` when mounting is not permitted (not root, or a container without it).
    public static func tmpfs(bytes: Int) async throws -> TemporaryMount {
        let directory = try TemporaryDirectory(prefix: "kafkasync-tmpfs")
        let mount = try await run("mount", ["-t", "tmpfs", "-o", "size=\(bytes),mode=0755", "tmpfs", directory.path])
        guard mount.status == 0 else {
            directory.remove()
            throw FixtureUnavailable(what: "a tmpfs mount (tests run as root): \(mount.stderr)")
        }
        return TemporaryMount(path: directory.path, directory: directory, loopDevice: nil)
    }

    /// Mounts a fresh exFAT file system of `bytes` bytes (an image file on a loop device, mounted by exfat-fuse):
    /// `link(2)` there fails with `EPERM` and `renameat2` knows no flags, as on vfat, exFAT and some NFS servers.
    /// - Throws: ``FixtureUnavailable`` when exfatprogs, exfat-fuse or a loop device is missing.
    public static func exfat(bytes: Int) async throws -> TemporaryMount {
        let directory = try TemporaryDirectory(prefix: "kafkasync-exfat")
        let image = directory.file("disk.img")
        let point = directory.file("mnt")
        var device: String?
        do {
            try FileManager.default.createDirectory(atPath: point, withIntermediateDirectories: true)
            try require(try await run("truncate", ["-s", "\(bytes)", image]), "truncate")
            try require(try await run("mkfs.exfat", [image]), "mkfs.exfat (exfatprogs)")
            let loop = try await run("losetup", ["-f", "--show", image])
            try require(loop, "a loop device (losetup)")
            device = loop.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            // The FUSE daemon stays in the background: started with posix_spawn (Foundation's `Process` waits
            // forever for a child whose grandchild lives on), its output in a file, so no pipe waits for it.
            let log = directory.file("mount.log")
            let mounter = try BackgroundProcess(try executable("sh"), ["-c", "\"$0\" \"$1\" \"$2\" >\"$3\" 2>&1",
                                                                      try executable("mount.exfat-fuse"), device!, point, log])
            let deadline = ContinuousClock.now + .seconds(20)
            while mounter.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            let status = await mounter.stop(signal: SIGKILL)
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            try require(ProcessResult(status: status, stdout: "", stderr: output), "mount.exfat-fuse (exfat-fuse)")
        } catch {
            if let device { _ = try? await run("losetup", ["-d", device]) }
            directory.remove()
            throw error
        }
        return TemporaryMount(path: point, directory: directory, loopDevice: device)
    }

    /// The path of `name` on the mounted file system.
    public func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    /// Runs `body`, then unmounts, whether `body` threw or not.
    public func unmount<T>(after body: () async throws -> T) async throws -> T {
        do {
            let result = try await body()
            await unmount()
            return result
        } catch {
            await unmount()
            throw error
        }
    }

    /// Unmounts (lazily, so a file still open does not keep it) and removes the mount point.
    public func unmount() async {
        _ = try? await Self.run("umount", ["-l", path])
        if let loopDevice { _ = try? await Self.run("losetup", ["-d", loopDevice]) }
        directory.remove()
    }

    private static func run(_ program: String, _ arguments: [String]) async throws -> ProcessResult {
        do {
            return try await runProcess(try executable(program), arguments)
        } catch {
            throw FixtureUnavailable(what: "\(program): \(error) (run scripts/bootstrap)")
        }
    }

    /// Mount tools live in sbin, which a PATH may lack.
    private static func executable(_ program: String) throws -> String {
        guard let path = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map({ "\($0)/\(program)" })
            .first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw FixtureUnavailable(what: "\(program) is not installed (run scripts/bootstrap)")
        }
        return path
    }

    private static func require(_ result: ProcessResult, _ what: String) throws {
        guard result.status == 0 else { throw FixtureUnavailable(what: "\(what) failed: \(result.stderr)") }
    }
}
