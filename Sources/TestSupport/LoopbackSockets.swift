import Foundation

/// Runs `body` with `127.0.0.1:port` as a socket address (and its length, which `getsockname` may update).
func withLoopbackAddress<T>(port: Int, _ body: (UnsafeMutablePointer<sockaddr>, inout socklen_t) -> T) -> (T, port: Int) {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let result = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, &length) } }
    return (result, Int(UInt16(bigEndian: address.sin_port)))
}

/// A TCP socket bound to 127.0.0.1 on a port the system picks, listening (with a backlog of 16) when `listening`.
/// - Returns: its descriptor (the caller closes it) and port.
public func boundLoopbackSocket(listening: Bool) throws -> (fd: Int32, port: Int) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw FixtureUnavailable(what: "no socket: \(String(cString: strerror(errno)))") }
    let (bound, port) = withLoopbackAddress(port: 0) { address, length in
        bind(fd, address, length) == 0 && (!listening || listen(fd, 16) == 0) && getsockname(fd, address, &length) == 0
    }
    guard bound else {
        close(fd)
        throw FixtureUnavailable(what: "cannot bind a loopback port: \(String(cString: strerror(errno)))")
    }
    return (fd, port)
}

/// A TCP port on 127.0.0.1 that nothing listens on now (the system picks it; another process may take it before
/// the caller binds it, so use it at once).
public func freeLoopbackPort() throws -> Int {
    let (fd, port) = try boundLoopbackSocket(listening: false)
    close(fd)
    return port
}

/// Whether something accepts TCP connections on `127.0.0.1:port`.
public func acceptsConnections(onLoopbackPort port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    return withLoopbackAddress(port: port) { address, length in connect(fd, address, length) == 0 }.0
}
