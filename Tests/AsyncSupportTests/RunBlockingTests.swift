import AsyncSupport
import Foundation
import Testing

/// Blocking calls on threads of their own.
@Suite(.timeLimit(.minutes(1))) struct RunBlockingTests {
    struct Refused: Error, Equatable {}

    @Test func returnsTheResultAndThrowsTheTypedError() async {
        #expect(await runBlocking { 6 * 7 } == 42)
        let error = await #expect(throws: Refused.self) {
            try await runBlocking { () throws(Refused) -> Int in throw Refused() }
        }
        #expect(error == Refused())
    }

    @Test func manyBlockedCallsDoNotHoldTheCooperativePool() async {
        // More calls blocked at once than the cooperative pool has threads (one per core): each waits until all
        // have started, which only happens when they run on threads of their own (the pool has 32).
        let count = min(ProcessInfo.processInfo.activeProcessorCount + 1, 31)
        let started = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<count {
                group.addTask {
                    await runBlocking {
                        started.signal()
                        release.wait()
                    }
                }
            }
            await runBlocking {
                for _ in 0..<count { started.wait() }
                for _ in 0..<count { release.signal() }
            }
        }
    }
}
