import NIOPosix

/// Runs a blocking call (a librdkafka request with a timeout, a commit, a flush; an fsync, a file hash, a read of
/// standard input) on a thread of its own and resumes the caller with its result.
///
/// Not on `DispatchQueue.global()`: on Linux its threads also run Swift's tasks, so every fsync held one of the
/// few threads that run everything else. With 16 jobs in flight, a job's placement waited ~2 ms for such a thread;
/// on threads of their own, end-to-end small files were faster in each of 8 alternating `bench/run` rounds
/// (median 17%).
public func runBlocking<T: Sendable, E: Error>(_ body: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
    let result: Result<T, E> = await withCheckedContinuation { continuation in
        // The pool is never shut down, so the work always runs (its state is always `.active`).
        blockingThreads.submit { _ in
            continuation.resume(returning: Result { () throws(E) -> T in try body() })
        }
    }
    return try result.get()
}

/// Threads for ``runBlocking(_:)`` (and blocking group commits): enough for a disk's worth of fsyncs at once; idle
/// ones cost only their stacks.
let blockingThreads: NIOThreadPool = {
    let pool = NIOThreadPool(numberOfThreads: 32)
    pool.start()
    return pool
}()
