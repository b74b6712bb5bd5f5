import Logging
import NIOCore
import NIOPosix
import NIOSSH
import Synchronization

/// One way of proving who we are.
public enum SSHCredential: Sendable {
    /// A password (never logged, never in an error).
    case password(String)
    /// A private key, with the path it was read from (for messages).
    case privateKey(NIOSSHPrivateKey, path: String)

    var methodName: String {
        switch self {
        case .password: "password"
        case .privateKey(_, let path): "public key \(path)"
        }
    }
}

/// Where and how to connect.
public struct SSHConnectionConfiguration: Sendable {
    /// Host name or address.
    public var host: String
    /// Port (default 22).
    public var port: Int
    /// Login user.
    public var username: String
    /// Credentials, tried in order (keys first is usual).
    public var credentials: [SSHCredential]
    /// Checks the server's host key before any credential is sent.
    public var hostKeyVerifier: HostKeyVerifier
    /// Limit for the TCP connection.
    public var connectTimeout: Duration
    /// Limit for key exchange and authentication.
    public var handshakeTimeout: Duration
    /// How long the server may stay silent while a request waits for its answer (a download without progress):
    /// then everything waiting fails with `timedOut` and the connection is closed.
    public var stallTimeout: Duration

    /// Creates a configuration.
    public init(host: String, port: Int = 22, username: String, credentials: [SSHCredential],
                hostKeyVerifier: HostKeyVerifier, connectTimeout: Duration = .seconds(10),
                handshakeTimeout: Duration = .seconds(20), stallTimeout: Duration = .seconds(60)) {
        self.host = host
        self.port = port
        self.username = username
        self.credentials = credentials
        self.hostKeyVerifier = hostKeyVerifier
        self.connectTimeout = connectTimeout
        self.handshakeTimeout = handshakeTimeout
        self.stallTimeout = stallTimeout
    }
}

/// An authenticated SSH connection (swift-nio-ssh) on which SFTP sessions are opened.
public final class SSHConnection: Sendable {
    private let channel: any Channel
    private let sshHandler: NIOLoopBound<NIOSSHHandler>
    private let logger: Logger
    private let stallTimeout: Duration

    private init(channel: any Channel, sshHandler: NIOLoopBound<NIOSSHHandler>, logger: Logger, stallTimeout: Duration) {
        self.channel = channel
        self.sshHandler = sshHandler
        self.logger = logger
        self.stallTimeout = stallTimeout
    }

    /// Connects, verifies the host key, and authenticates.
    /// - Throws: ``SFTPError``: `connectionFailed`/`timedOut` (transient), `hostKeyUnknown`/`hostKeyChanged`/
    ///   `hostKeyRevoked`, `authenticationFailed` (naming each method tried and why), `noCommonAlgorithm`.
    public static func connect(_ configuration: SSHConnectionConfiguration, logger: Logger,
                               group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton)
        async throws(SFTPError) -> SSHConnection
    {
        let outcome = HandshakeOutcome()
        let address = "\(configuration.host):\(configuration.port)"
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(TimeAmount(configuration.connectTimeout))
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    let userAuth = UserAuthDelegate(username: configuration.username,
                                                    credentials: configuration.credentials, outcome: outcome)
                    let serverAuth = ServerAuthDelegate(verifier: configuration.hostKeyVerifier, outcome: outcome)
                    try sync.addHandler(NIOSSHHandler(
                        role: .client(.init(userAuthDelegate: userAuth, serverAuthDelegate: serverAuth,
                                            transportProtectionSchemes: transportProtectionSchemes)),
                        allocator: channel.allocator, inboundChildChannelInitializer: nil))
                    try sync.addHandler(HandshakeWatcher(outcome: outcome))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: configuration.host, port: configuration.port).get()
        } catch {
            if case ChannelError.connectTimeout = error {
                throw SFTPError(.timedOut, "connecting to \(address) timed out after \(configuration.connectTimeout)")
            }
            throw SFTPError(.connectionFailed, "cannot connect to \(address): \(error)")
        }
        do {
            try await withTimeout(configuration.handshakeTimeout, onTimeout: {
                outcome.markTimedOut()
                outcome.fail(HandshakeTimedOut())
                channel.close(promise: nil)
            }) {
                try await outcome.authenticated(on: channel.eventLoop).get()
            }
        } catch {
            channel.close(promise: nil)
            throw outcome.describe(error, address: address, timeout: configuration.handshakeTimeout)
        }
        let handler = try? await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: NIOSSHHandler.self), eventLoop: channel.eventLoop)
        }.get()
        guard let handler else {
            channel.close(promise: nil)
            throw SFTPError(.connectionLost, "the connection to \(address) closed during set-up")
        }
        logger.debug("SSH connection established", metadata: ["kafkasync.remote": "\(address)"])
        return SSHConnection(channel: channel, sshHandler: handler, logger: logger, stallTimeout: configuration.stallTimeout)
    }

    /// Opens a session channel running the `sftp` subsystem and initializes SFTP. A server silent for the
    /// configuration's `stallTimeout` meanwhile fails it with `timedOut`.
    public func openSFTP() async throws(SFTPError) -> SFTPSession {
        let eventLoop = channel.eventLoop
        let childPromise = eventLoop.makePromise(of: (any Channel).self)
        let (sshHandler, stallTimeout) = (self.sshHandler, self.stallTimeout)
        do {
            let child = try await eventLoop.flatSubmit { () -> EventLoopFuture<any Channel> in
                sshHandler.value.createChannel(childPromise, channelType: .session) { child, _ in
                    child.eventLoop.makeCompletedFuture {
                        try child.pipeline.syncOperations.addHandler(SFTPChannelHandler(stallTimeout: stallTimeout))
                    }
                }
                return childPromise.futureResult
            }.get()
            return try await SFTPSession.start(on: child, logger: logger)
        } catch let error as SFTPError {
            throw error
        } catch {
            throw SFTPError(.connectionLost, "cannot open an SFTP session: \(error)")
        }
    }

    /// Whether the connection is still open.
    public var isActive: Bool { channel.isActive }

    /// Closes the connection and every session on it.
    public func close() async {
        try? await channel.close()
    }
}

/// What happened during the handshake, for an error that says which step failed and why.
final class HandshakeOutcome: Sendable {
    private struct State {
        var hostKeyError: SFTPError?
        var triedMethods: [String] = []
        var serverMethods = ""
        var timedOut = false
        var result: Result<Void, any Error>?
        var promise: EventLoopPromise<Void>?
    }
    private let state = Mutex(State())

    /// Completes when authentication succeeded or the handshake failed, even if that happened already.
    func authenticated(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        state.withLock { state in
            if let result = state.result { return eventLoop.makeCompletedFuture(result) }
            if let promise = state.promise { return promise.futureResult }
            let promise = eventLoop.makePromise(of: Void.self)
            state.promise = promise
            return promise.futureResult
        }
    }

    func succeed() { complete(.success(())) }
    func fail(_ error: any Error) { complete(.failure(error)) }

    private func complete(_ result: Result<Void, any Error>) {
        let promise = state.withLock { state -> EventLoopPromise<Void>? in
            guard state.result == nil else { return nil }
            state.result = result
            return state.promise
        }
        promise?.completeWith(result)
    }
    func hostKeyRejected(_ error: SFTPError) { state.withLock { $0.hostKeyError = error } }
    func markTimedOut() { state.withLock { $0.timedOut = true } }
    func tried(_ method: String, serverOffers: String) {
        state.withLock {
            $0.triedMethods.append(method)
            $0.serverMethods = serverOffers
        }
    }

    /// The error to report for a failed handshake.
    func describe(_ error: any Error, address: String, timeout: Duration) -> SFTPError {
        let snapshot = state.withLock { $0 }
        if let hostKeyError = snapshot.hostKeyError { return hostKeyError }
        if let error = error as? SFTPError { return error }
        if let error = error as? NIOSSHError, error.type == .keyExchangeNegotiationFailure {
            return SFTPError(.noCommonAlgorithm, """
                \(address) offers no key exchange, host key or cipher algorithm the native engine supports \
                (it supports ed25519 and ECDSA host keys, curve25519/ECDH key exchange, AES-GCM, AES-CTR with HMAC-SHA-256): \(error). \
                Set engine = "lftp" for this remote
                """)
        }
        if snapshot.timedOut || error is HandshakeTimedOut {
            return SFTPError(.timedOut, "the SSH handshake with \(address) did not finish within \(timeout)")
        }
        if !snapshot.triedMethods.isEmpty {
            return SFTPError(.authenticationFailed, """
                \(address) refused authentication: tried \(snapshot.triedMethods.joined(separator: ", ")); \
                the server accepts \(snapshot.serverMethods)
                """)
        }
        return SFTPError(.connectionLost, "the SSH handshake with \(address) failed: \(error)")
    }
}

struct HandshakeTimedOut: Error {}

/// Every credential was tried and refused.
struct CredentialsExhausted: Error {}

/// Offers each credential once, in order, as long as the server accepts its method.
final class UserAuthDelegate: NIOSSHClientUserAuthenticationDelegate, @unchecked Sendable {
    // @unchecked: NIOSSH calls this delegate only on its channel's event loop, one call at a time;
    // `remaining` is never touched elsewhere.
    private let username: String
    private var remaining: [SSHCredential]
    private let outcome: HandshakeOutcome

    init(username: String, credentials: [SSHCredential], outcome: HandshakeOutcome) {
        self.username = username
        self.remaining = credentials
        self.outcome = outcome
    }

    func nextAuthenticationType(availableMethods: NIOSSHAvailableUserAuthenticationMethods,
                                nextChallengePromise: EventLoopPromise<NIOSSHUserAuthenticationOffer?>) {
        let offered = [availableMethods.contains(.publicKey) ? "publickey" : nil,
                       availableMethods.contains(.password) ? "password" : nil].compactMap { $0 }.joined(separator: ", ")
        while !remaining.isEmpty {
            let credential = remaining.removeFirst()
            switch credential {
            case .password(let password) where availableMethods.contains(.password):
                outcome.tried(credential.methodName, serverOffers: offered.isEmpty ? "nothing we can use" : offered)
                nextChallengePromise.succeed(.init(username: username, serviceName: "",
                                                   offer: .password(.init(password: password))))
                return
            case .privateKey(let key, _) where availableMethods.contains(.publicKey):
                outcome.tried(credential.methodName, serverOffers: offered.isEmpty ? "nothing we can use" : offered)
                nextChallengePromise.succeed(.init(username: username, serviceName: "",
                                                   offer: .privateKey(.init(privateKey: key))))
                return
            default:
                outcome.tried("\(credential.methodName) (not offered by the server)",
                              serverOffers: offered.isEmpty ? "nothing we can use" : offered)
            }
        }
        // No credential left: failing the promise ends the handshake (NIOSSH's documented way).
        nextChallengePromise.fail(CredentialsExhausted())
    }
}

/// Verifies the host key with the ``HostKeyVerifier`` before any credential is sent.
final class ServerAuthDelegate: NIOSSHClientServerAuthenticationDelegate, Sendable {
    private let verifier: HostKeyVerifier
    private let outcome: HandshakeOutcome

    init(verifier: HostKeyVerifier, outcome: HandshakeOutcome) {
        self.verifier = verifier
        self.outcome = outcome
    }

    func validateHostKey(hostKey: NIOSSHPublicKey, validationCompletePromise: EventLoopPromise<Void>) {
        do {
            try verifier.verify(hostKey)
            validationCompletePromise.succeed()
        } catch {
            outcome.hostKeyRejected(error)
            validationCompletePromise.fail(error)
        }
    }
}

/// Completes the handshake outcome on `UserAuthSuccessEvent`, fails it on errors or a closed connection.
final class HandshakeWatcher: ChannelInboundHandler, Sendable {
    typealias InboundIn = Any
    private let outcome: HandshakeOutcome

    init(outcome: HandshakeOutcome) { self.outcome = outcome }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is UserAuthSuccessEvent { outcome.succeed() }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        outcome.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        outcome.fail(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }
}

/// Runs `body`; after `limit`, runs `onTimeout` (which must make `body` end, e.g. by closing its channel)
/// and fails with ``HandshakeTimedOut``.
func withTimeout<T: Sendable>(_ limit: Duration, onTimeout: @escaping @Sendable () -> Void,
                              _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            onTimeout()
            throw HandshakeTimedOut()
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}
