import Dispatch

/// Runs a blocking call (a librdkafka request with a timeout, a commit, a flush; an fsync or a file hash) off the
/// cooperative pool, on a dispatch queue, and resumes the caller with its result.
public func runBlocking<T: Sendable, E: Error>(_ body: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
    let result: Result<T, E> = await withCheckedContinuation { continuation in
        DispatchQueue.global().async {
            do throws(E) {
                continuation.resume(returning: .success(try body()))
            } catch {
                continuation.resume(returning: .failure(error))
            }
        }
    }
    return try result.get()
}
