import Crypto
import Foundation
import TestSupport
import Testing
@testable import SFTPClient

/// The SFTP client against a server that lies (``ScriptedSFTPServer``): names that are paths, huge listings, short,
/// long and growing reads. Every byte from a server is hostile.
@Suite(.serialized, .timeLimit(.minutes(2))) struct HostileServerTests {
    let logger = KafkaFixtures.logger("kafkasync.test.hostile")

    func connect(_ server: ScriptedSFTPServer) async throws -> (SSHConnection, SFTPSession) {
        let connection = try await SSHConnection.connect(try server.connectionConfiguration(), logger: logger)
        return (connection, try await connection.openSFTP())
    }

    /// (`.` and `..` are dropped, as every real server lists them: see the next test.)
    static let unsafeNames = ["../../escape", "../", "a/b", "/etc", "a\\b", "nul\0byte", "", String(repeating: "n", count: 256)]

    @Test func aListedNameThatIsAPathIsAProtocolError() async throws {
        // Each unsafe name comes after a good one, in a listing with the `.` and `..` every real server sends.
        var script = SFTPServerScript()
        for (index, name) in Self.unsafeNames.enumerated() {
            script.dirs["/evil\(index)"] = .init([.init("fine.txt"), .init(name)], dots: true)
        }
        try await withScriptedSFTPServer(script) { server in
            let (connection, session) = try await connect(server)
            for index in Self.unsafeNames.indices {
                await #expect("\(Self.unsafeNames[index].debugDescription)") {
                    _ = try await session.listDirectory("/evil\(index)")
                } throws: { error in
                    guard let error = error as? SFTPError else { return false }
                    return error.code == .protocolError && !error.isTransient && error.message.contains("unsafe_remote_name")
                        && !error.message.contains("\0")
                }
            }
            await connection.close()
        }
    }

    @Test func theDotEntriesOfARealListingAreDroppedAndLongNamesUpTo255BytesPass() async throws {
        let longest = String(repeating: "é", count: 127) + "x"  // 255 bytes
        let script = SFTPServerScript(dirs: ["/fine": .init([.init("a.txt"), .init(longest)], dots: true)])
        try await withScriptedSFTPServer(script) { server in
            let (connection, session) = try await connect(server)
            #expect(try await session.listDirectory("/fine").map(\.name) == ["a.txt", longest])
            await connection.close()
        }
    }

    @Test func aListingStopsOnceItHoldsMoreThanItsLimit() async throws {
        let script = SFTPServerScript(dirs: ["/huge": .init(generate: .init(count: 5_000), perReply: 250)])
        try await withScriptedSFTPServer(script) { server in
            let (connection, session) = try await connect(server)
            #expect(try await session.listDirectory("/huge", limit: 300).count == 301, "one more than the limit, no more")
            #expect(try await session.listDirectory("/huge").count == 5_000)
            await connection.close()
        }
    }

    /// A first READ answered with half its bytes, the next ones in full, then the connection dropped before the
    /// rest of the first is asked again: the local file must hold only a contiguous prefix, so resuming from its
    /// size against an honest server gives the source exactly.
    @Test func aShortReadNeverLeavesAHoleToResumeOver() async throws {
        let contents = Data((0..<1_000_000).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ $0 >> 9) })
        let script = SFTPServerScript(files: ["/data.bin": .init(times: 1, firstRead: 0, then: .goOn, dropAfter: 100_000)])
        try await withScriptedSFTPServer(script) { server in
            let remote = try server.serve("data.bin", contents)
            let local = server.directory.file("data.partial")
            let (connection, session) = try await connect(server)
            let file = try #require(try await session.lookUp(remote).file)
            let reported = ProgressLog()
            await #expect {
                _ = try await session.download(file, to: local) { reported.record($0) }
            } throws: { ($0 as? SFTPError)?.isTransient == true }
            await connection.close()
            let partial = try #require(FileManager.default.contents(atPath: local))
            #expect(partial.count < 32_768, "only the half answer is contiguous, the answers after the gap were held")
            #expect(partial == contents.prefix(partial.count), "the partial file is a prefix of the source")
            #expect(Int64(partial.count) == reported.last ?? 0, "progress counted only the prefix")

            let (again, honest) = try await connect(server)
            let resumed = try #require(try await honest.lookUp(remote).file)
            #expect(try await honest.download(resumed, to: local, offset: Int64(partial.count)) == 1_000_000)
            let result = try #require(FileManager.default.contents(atPath: local))
            #expect(SHA256.hash(data: result) == SHA256.hash(data: contents))
            await again.close()
        }
    }

    @Test func aShortReadInARangeIsFilledBeforeLaterBytesCount() async throws {
        let contents = Data((0..<600_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 11) })
        let script = SFTPServerScript(files: ["/range.bin": .init(firstRead: 1000)])  // every OPEN: first READ short
        try await withScriptedSFTPServer(script) { server in
            let remote = try server.serve("range.bin", contents)
            let local = server.directory.file("range.out")
            #expect(FileManager.default.createFile(atPath: local, contents: Data(count: 600_000)))
            let (connection, session) = try await connect(server)
            let reported = ProgressLog()
            #expect(try await session.download(remote, to: local, range: 100_000..<500_000) { reported.record($0) } == 500_000)
            let result = try #require(FileManager.default.contents(atPath: local))
            #expect(result[100_000..<500_000] == contents[100_000..<500_000])
            #expect(reported.all == reported.all.sorted(), "progress only grows")
            #expect(reported.last == 400_000)
            await connection.close()
        }
    }

    @Test func dataLongerThanAskedIsRejected() async throws {
        let script = SFTPServerScript(files: ["/long.bin": .init(extra: 10)])
        try await withScriptedSFTPServer(script) { server in
            let remote = try server.serve("long.bin", Data(count: 100_000))
            let (connection, session) = try await connect(server)
            let file = try #require(try await session.lookUp(remote).file)
            await #expect {
                _ = try await session.download(file, to: server.directory.file("long.out"))
            } throws: { ($0 as? SFTPError)?.code == .protocolError }
            await connection.close()
        }
    }

    /// Without a size from the listing the file is read until the server says it ends: never past what FSTAT or
    /// the caller announced.
    @Test func aFileThatGrowsPastItsAnnouncedSizeIsAnError() async throws {
        let unsized = SFTPFileAttributes(size: nil, permissions: nil, modificationTime: nil, isDirectory: false,
                                         isRegularFile: true)
        let script = SFTPServerScript(files: ["/fstat.bin": .init(statSize: 50_000),
                                              "/endless.bin": .init(grow: 50_000_000)])
        try await withScriptedSFTPServer(script) { server in
            let fstat = try server.serve("fstat.bin", Data(count: 200_000))
            let endless = try server.serve("endless.bin", Data(count: 1000))
            let (connection, session) = try await connect(server)
            await #expect {
                _ = try await session.download(try await session.open(fstat, attributes: unsized),
                                               to: server.directory.file("fstat.out"))
            } throws: { ($0 as? SFTPError)?.code == .sizeExceeded && ($0 as! SFTPError).isTransient }
            #expect(fileSize(server.directory.file("fstat.out")) <= 50_000)

            // FSTAT says the truth (1000 bytes) for the endless file, which reads on: the FSTAT size bounds it.
            await #expect {
                _ = try await session.download(try await session.open(endless, attributes: unsized),
                                               to: server.directory.file("endless.out"))
            } throws: { ($0 as? SFTPError)?.code == .sizeExceeded }
            #expect(fileSize(server.directory.file("endless.out")) <= 1000)
            await connection.close()
        }
    }

    func fileSize(_ path: String) -> Int {
        (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? -1
    }
}
