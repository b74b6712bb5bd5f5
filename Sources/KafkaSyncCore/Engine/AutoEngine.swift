import Logging
import Synchronization

/// `engine = "auto"` (the default): the native engine wherever it can serve the remote, else lftp, which runs the
/// OpenSSH client: when the server offers nothing the native engine speaks (an RSA-only host key, ciphers it
/// lacks: `no_common_algorithm`) or the user key is one it cannot use (RSA, passphrase-protected:
/// `unsupported_key`). Both show before anything is downloaded. The choice is made on a remote's first such
/// failure, kept for the process and logged once; host keys stay verified on both paths (lftp's ssh gets
/// `StrictHostKeyChecking` and the remote's known_hosts).
public final class AutoEngine: TransferEngine {
    private let native: any TransferEngine
    private let lftp: any TransferEngine
    private let lftpInstalled: Bool
    private let lftpRemotes = Mutex<Set<String>>([])
    private let logger: Logger

    /// An engine choosing between `native` and `lftp` (their owner shuts them down).
    /// - Parameter lftpInstalled: whether lftp can run (without it, native failures are reported as they are).
    public init(native: any TransferEngine, lftp: any TransferEngine, lftpInstalled: Bool = LftpEngine.locate() != nil,
                logger: Logger) {
        self.native = native
        self.lftp = lftp
        self.lftpInstalled = lftpInstalled
        self.logger = logger
    }

    /// The engine each remote uses so far (remotes not listed use the native engine).
    public var remotesOnLftp: Set<String> { lftpRemotes.withLock { $0 } }

    public func transfer(_ request: TransferRequest, progress: @escaping @Sendable (TransferProgress) -> Void)
        async throws(TransferFailure) -> StagedTransfer
    {
        let remote = request.remote.name
        if lftpRemotes.withLock({ $0.contains(remote) }) { return try await lftp.transfer(request, progress: progress) }
        if request.remote.needsOpenSSH {
            if lftpRemotes.withLock({ $0.insert(remote).inserted }) {
                logger.notice("remote \(remote) uses lftp from now on: \(request.remote.sshConfigHost != nil ? "ssh_config_host" : "identity_agent") needs the OpenSSH client",
                              metadata: ["remote": "\(remote)"])
            }
            return try await lftp.transfer(request, progress: progress)
        }
        do {
            return try await native.transfer(request, progress: progress)
        } catch where Self.nativeCannotServe(error) {
            // lftp cannot check a host_key_fingerprint (only known_hosts): then there is no other way.
            guard lftpInstalled, request.remote.hostKeyFingerprint == nil else { throw error }
            let first = lftpRemotes.withLock { $0.insert(remote).inserted }
            if first {
                logger.notice("remote \(remote) uses lftp from now on: the native engine cannot serve it",
                              metadata: ["remote": "\(remote)", "reason": "\(error.code)", "error": "\(error.message)"])
            }
            return try await lftp.transfer(request, progress: progress)
        }
    }

    /// The failures lftp can get past: the server's or the key's algorithms.
    static func nativeCannotServe(_ failure: TransferFailure) -> Bool {
        failure.code == .noCommonAlgorithm || failure.code == .unsupportedKey
    }

    /// Nothing of its own: the native and lftp engines are shut down by their owner.
    public func shutdown() async {}
}
