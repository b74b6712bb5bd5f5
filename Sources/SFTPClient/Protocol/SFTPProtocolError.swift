/// The server sent something that is not valid SFTP v3. Never a crash, never an unbounded allocation.
struct SFTPProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    let reason: String
    var description: String { "malformed SFTP packet: \(reason)" }
}
