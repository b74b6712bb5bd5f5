import Foundation
import TestSupport
import Testing
@testable import KafkaSyncCore

/// Folder fsyncs as a group commit, on a real folder.
@Suite(.timeLimit(.minutes(1))) struct FolderSyncsTests {
    @Test func callersOneAfterAnotherEachGetAnFsync() async throws {
        let directory = try TemporaryDirectory()
        let syncs = FolderSyncs()
        for _ in 0..<5 { await syncs.sync(directory.path) }
        #expect(syncs.fsyncCount == 5)
    }

    @Test func concurrentCallersShareFsyncsAndAllReturn() async throws {
        let directory = try TemporaryDirectory()
        let syncs = FolderSyncs()
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<200 {
                group.addTask {
                    // As in use: a new entry in the folder, then its flush (which then has work to do).
                    _ = FileManager.default.createFile(atPath: directory.file("f\(index)"), contents: Data())
                    await syncs.sync(directory.path)
                }
            }
        }
        #expect(syncs.fsyncCount >= 1)
        #expect(syncs.fsyncCount < 200, "200 callers at once should share fsyncs")
        // Nothing is left waiting: a later caller gets its own fsync at once.
        let before = syncs.fsyncCount
        await syncs.sync(directory.path)
        #expect(syncs.fsyncCount == before + 1)
    }

    @Test func aMissingFolderDoesNotHang() async {
        let syncs = FolderSyncs()
        await syncs.sync("/nonexistent/kafkasync-\(UUID().uuidString)")
        #expect(syncs.fsyncCount == 1)
    }
}
