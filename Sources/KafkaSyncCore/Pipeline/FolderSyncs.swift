import AsyncSupport
import Foundation
import Synchronization

/// Flushes folders' entries to disk for many renames at once (a group commit): a caller waits for an fsync of the
/// folder that *starts* after its call, and every caller that arrives while one fsync runs shares the next. With
/// many small files landing in one folder, most of them need no fsync of their own.
final class FolderSyncs: Sendable {
    /// A folder being flushed (it has an entry exactly while an fsync of it runs).
    private struct Folder {
        /// The number of fsyncs started.
        var started = 1
        /// Callers and the fsync (by number) that covers them.
        var waiters: [(covered: Int, continuation: CheckedContinuation<Void, Never>)]
    }

    private let folders = Mutex<[String: Folder]>([:])
    private let fsyncs = Atomic<Int>(0)

    /// How many fsyncs ran (for tests).
    var fsyncCount: Int { fsyncs.load(ordering: .relaxed) }

    /// Returns once an fsync of `path` that began after this call has ended (best effort: failures are ignored,
    /// as a folder that cannot be opened has nothing of ours to flush).
    func sync(_ path: String) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let start = folders.withLock { folders in
                guard folders[path] != nil else {
                    folders[path] = Folder(waiters: [(1, continuation)])
                    return true
                }
                // One is running already: the next one covers this caller.
                folders[path]!.waiters.append((folders[path]!.started + 1, continuation))
                return false
            }
            if start { Task { await runBlocking { self.run(path, number: 1) } } }
        }
    }

    /// Runs fsyncs of `path` (a blocking loop: on ``runBlocking(_:)``'s threads) until nobody waits.
    private func run(_ path: String, number: Int) {
        var number = number
        while true {
            Self.fsyncFolder(path)
            fsyncs.add(1, ordering: .relaxed)
            let (done, next) = folders.withLock { folders -> ([CheckedContinuation<Void, Never>], Int?) in
                guard var folder = folders[path] else { return ([], nil) }
                let done = folder.waiters.filter { $0.covered <= number }.map(\.continuation)
                folder.waiters.removeAll { $0.covered <= number }
                if folder.waiters.isEmpty {
                    folders[path] = nil
                    return (done, nil)
                }
                folder.started += 1
                folders[path] = folder
                return (done, folder.started)
            }
            for continuation in done { continuation.resume() }
            guard let next else { return }
            number = next
        }
    }

    private static func fsyncFolder(_ path: String) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }
}
