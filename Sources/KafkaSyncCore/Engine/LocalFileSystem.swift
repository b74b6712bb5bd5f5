import Foundation

// The local file system steps of every job, as single system calls: FileManager's equivalents build attribute
// dictionaries (with owner names) and throw errors for a missing file, which costs more than the download of a
// small file.

/// `base/relative`, or `base` when `relative` is empty.
func join(_ base: String, _ relative: String) -> String {
    relative.isEmpty ? base : (base as NSString).appendingPathComponent(relative)
}

/// `root/relative` where `relative` is made of names a server listed, checked to stay inside `root`: resolved
/// (`.` and `..` taken out, and the symbolic links of the part that exists followed) it must still be `root` or
/// under it. The one way the engines join remote names to a local folder.
/// - Throws: permanent `unsafe_remote_name` when it would leave `root`.
func path(inside root: String, _ relative: String) throws(TransferFailure) -> String {
    let top = lexicallyResolved(root)
    let path = lexicallyResolved(join(root, relative))
    var existing = path
    var info = stat()
    while existing.count > top.count && lstat(existing, &info) != 0 {
        existing = (existing as NSString).deletingLastPathComponent
    }
    guard isInside(top, path), isInside(realPath(top), realPath(existing)) else {
        throw TransferFailure(.unsafeRemoteName, "\(relative.debugDescription) would be written outside \(root): the server sent a name that is a path")
    }
    return path
}

/// `path` made absolute with `.`, `..` and repeated slashes taken out, without looking at the disk.
private func lexicallyResolved(_ path: String) -> String {
    let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    var parts: [Substring] = []
    for part in absolute.split(separator: "/") where part != "." {
        if part == ".." { _ = parts.popLast() } else { parts.append(part) }
    }
    return "/" + parts.joined(separator: "/")
}

/// `path` with every symbolic link followed (`realpath(3)`), or itself when that fails.
private func realPath(_ path: String) -> String {
    guard let resolved = realpath(path, nil) else { return path }
    defer { free(resolved) }
    return String(cString: resolved)
}

/// Whether `path` is `folder` or lies under it (both resolved).
private func isInside(_ folder: String, _ path: String) -> Bool {
    path == folder || path.hasPrefix(folder == "/" ? "/" : folder + "/")
}

/// The `stat` of `path` (following links), or `nil` when it does not exist or cannot be read.
func fileStatus(_ path: String) -> stat? {
    var info = stat()
    return stat(path, &info) == 0 ? info : nil
}

/// Whether something exists at `path`.
func pathExists(_ path: String) -> Bool { fileStatus(path) != nil }

/// The size of the file at `path`, or `nil` when there is none.
func fileSize(_ path: String) -> Int64? { fileStatus(path).map { Int64($0.st_size) } }

/// Removes a file, or a folder with everything in it; a missing path is not an error. Best effort.
func removeQuietly(_ path: String) {
    if unlink(path) == 0 || errno == ENOENT { return }
    try? FileManager.default.removeItem(atPath: path)
}

/// Creates a folder and its parents (a folder that exists costs one stat).
func createFolder(_ path: String) throws(TransferFailure) {
    if let info = fileStatus(path), info.st_mode & S_IFMT == S_IFDIR { return }
    do {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    } catch {
        throw TransferFailure.local("cannot create \(path)", error: error)
    }
}

/// Sets a file's or folder's modification (and access) time; failures are ignored (a cosmetic loss).
func setModificationTime(_ path: String, _ date: Date) {
    let seconds = date.timeIntervalSince1970
    var times = [timespec(tv_sec: Int(seconds), tv_nsec: 0), timespec(tv_sec: Int(seconds), tv_nsec: 0)]
    _ = utimensat(AT_FDCWD, path, &times, 0)
}

/// Writes a new executable script (`0700`) through a descriptor that no child process inherits: a descriptor open for
/// writing that another thread's fork carries into a long-lived child would make every later exec of the script
/// fail with "Text file busy" (ETXTBSY).
/// - Throws: `local_io` when the file cannot be created or written.
func writeExecutableScript(_ path: String, _ text: String) throws(TransferFailure) {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o700)
    guard descriptor >= 0 else { throw TransferFailure.local("cannot create \(path)") }
    defer { close(descriptor) }
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        if written < 0 && errno == EINTR { continue }
        guard written > 0 else { throw TransferFailure.local("cannot write \(path)") }
        bytes = bytes.dropFirst(written)
    }
    fchmod(descriptor, 0o700)
}
