import AsyncSupport
import Foundation

/// Flushes folders' entries to disk for many renames at once (a group commit per folder): a caller waits for an
/// fsync of the folder that *starts* after its call, and every caller that arrives while one fsync runs shares the
/// next. With many small files landing in one folder, most of them need no fsync of their own.
final class FolderSyncs: Sendable {
    private let commits = KeyedGroupCommit<String, Void, Never> { path, _ in
        FolderSyncs.fsyncFolder(path)
        return .success(())
    }

    /// How many fsyncs ran (for tests).
    var fsyncCount: Int { commits.writeCount }

    /// Returns once an fsync of `path` that began after this call has ended (best effort: failures are ignored,
    /// as a folder that cannot be opened has nothing of ours to flush).
    func sync(_ path: String) async {
        await commits.submit((), to: path)
    }

    private static func fsyncFolder(_ path: String) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }
}
