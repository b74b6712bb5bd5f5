import Foundation
import Synchronization

/// Keeps two deliveries of one job (a duplicate publish, a replayed dead letter, a partition revoked and assigned
/// back) off the same staging path at the same time: within this process by a table of held paths, across the
/// processes of one machine by `flock` on a lock file beside the path (`<staged path>.lock`).
///
/// A second delivery waits until the first is done with the path; it then finds the first one's result (and is
/// skipped as a duplicate) or resumes what it left. The lock file is removed on release; a waiter that locked a
/// file removed meanwhile notices (its inode is no longer the path's) and locks the new one.
final class StagingLocks: Sendable {
    /// A held lock; ``release()`` it exactly once.
    struct Held: Sendable {
        fileprivate let path: String
        fileprivate let descriptor: Int32
        fileprivate let owner: StagingLocks

        /// Removes the lock file and lets the next waiter in.
        func release() {
            unlink(StagingLocks.lockFile(path))
            close(descriptor)
            owner.releaseInProcess(path)
        }
    }

    private struct Waiter {
        let id: Int
        let continuation: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var held: Set<String> = []
        var waiters: [String: [Waiter]] = [:]
        var cancelled: Set<Int> = []
        var nextID = 0
    }

    private let state = Mutex(State())
    /// How often a lock another process holds is tried again.
    private let pollInterval: Duration

    init(pollInterval: Duration = .milliseconds(100)) {
        self.pollInterval = pollInterval
    }

    /// The lock file of a staged path.
    static func lockFile(_ path: String) -> String { path + ".lock" }

    /// Waits for the staging path to be free and takes it.
    /// - Parameter onWait: called once if the path is busy (to log that this delivery waits).
    /// - Returns: the held lock, or `nil` when the task was cancelled while waiting.
    /// - Throws: `local_io` when the lock file cannot be created (its folder must exist).
    func lock(_ path: String, onWait: @Sendable () -> Void = {}) async throws(TransferFailure) -> Held? {
        var waited = state.withLock { $0.held.contains(path) }
        if waited { onWait() }
        guard await lockInProcess(path) else { return nil }
        do {
            while true {
                if let descriptor = try Self.tryFileLock(path) {
                    return Held(path: path, descriptor: descriptor, owner: self)
                }
                if !waited {
                    waited = true
                    onWait()
                }
                try await Task.sleep(for: pollInterval)
            }
        } catch let error as TransferFailure {
            releaseInProcess(path)
            throw error
        } catch {
            // Cancelled while another process held it.
            releaseInProcess(path)
            return nil
        }
    }

    /// One non-blocking attempt at the lock file: its descriptor when locked, `nil` when another holds it.
    private static func tryFileLock(_ path: String) throws(TransferFailure) -> Int32? {
        let file = lockFile(path)
        while true {
            let descriptor = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard descriptor >= 0 else { throw TransferFailure.local("cannot create the lock file \(file)") }
            guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
                let code = errno
                close(descriptor)
                if code == EWOULDBLOCK || code == EINTR { return nil }
                throw TransferFailure.local("cannot lock \(file)", errno: code)
            }
            // The holder before us removes the file on release: ours must still be the one at the path.
            var opened = stat()
            var current = stat()
            if fstat(descriptor, &opened) == 0, stat(file, &current) == 0,
               opened.st_dev == current.st_dev, opened.st_ino == current.st_ino {
                return descriptor
            }
            close(descriptor)
        }
    }

    /// Waits for the path among this process's deliveries.
    /// - Returns: `false` when cancelled while waiting.
    private func lockInProcess(_ path: String) async -> Bool {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        defer { state.withLock { _ = $0.cancelled.remove(id) } }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let now: Bool? = state.withLock { state in
                    if state.cancelled.remove(id) != nil { return false }
                    if state.held.insert(path).inserted { return true }
                    state.waiters[path, default: []].append(Waiter(id: id, continuation: continuation))
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                guard let index = state.waiters[path]?.firstIndex(where: { $0.id == id }) else {
                    state.cancelled.insert(id)  // not queued yet (or already woken): the body sees it
                    return nil
                }
                return state.waiters[path]!.remove(at: index)
            }
            waiter?.continuation.resume(returning: false)
        }
    }

    /// Hands the path to the next waiter, or frees it.
    fileprivate func releaseInProcess(_ path: String) {
        let next = state.withLock { state -> Waiter? in
            guard var queue = state.waiters[path], !queue.isEmpty else {
                state.held.remove(path)
                state.waiters[path] = nil
                return nil
            }
            let next = queue.removeFirst()
            state.waiters[path] = queue.isEmpty ? nil : queue
            return next
        }
        next?.continuation.resume(returning: true)
    }
}
