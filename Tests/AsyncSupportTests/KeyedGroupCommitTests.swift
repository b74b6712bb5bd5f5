import AsyncSupport
import Foundation
import Synchronization
import TestSupport
import Testing

/// Group commits by key: one key's writes do not wait for another's.
@Suite(.timeLimit(.minutes(1))) struct KeyedGroupCommitTests {
    @Test func keysWriteSideBySide() async throws {
        let writes = Mutex<[String]>([]), gate = DispatchSemaphore(value: 0)
        let commits = KeyedGroupCommit<String, Int, Never> { key, batch in
            if key == "slow" { gate.wait() }
            writes.withLock { $0.append("\(key) \(batch)") }
            return .success(())
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await commits.submit(1, to: "slow") }
            try await waitUntil("the slow write to start") { commits.writeCount == 1 }
            await commits.submit(2, to: "fast")
            #expect(writes.withLock { $0 } == ["fast [2]"], "written while the slow key's write waits")
            gate.signal()
            try await group.waitForAll()
        }
        #expect(writes.withLock { $0 } == ["fast [2]", "slow [1]"])
        #expect(commits.writeCount == 2)
    }
}
