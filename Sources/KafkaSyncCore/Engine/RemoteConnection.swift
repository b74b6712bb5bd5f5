import Foundation
import SFTPClient

extension RemoteConfig {
    /// The SSH settings of this remote for the native engine: its key (read now) and password as credentials,
    /// its known_hosts file, pinned fingerprint and policy for the host key, and its `stall_timeout`.
    /// - Throws: ``SFTPError`` `unreadableKey`/`unsupportedKey` for a key the engine cannot use.
    public func connectionConfiguration() throws(SFTPError) -> SSHConnectionConfiguration {
        var credentials: [SSHCredential] = []
        if let privateKey {
            guard let text = try? String(contentsOfFile: privateKey, encoding: .utf8) else {
                throw SFTPError(.unreadableKey, "cannot read the private key \(privateKey)")
            }
            credentials.append(.privateKey(try OpenSSHPrivateKey.parse(text, name: privateKey), path: privateKey))
        }
        if let password { credentials.append(.password(password.revealed)) }
        let verifier = HostKeyVerifier(host: host, port: port, knownHosts: knownHosts,
                                       pinnedFingerprint: hostKeyFingerprint,
                                       trust: hostKeyPolicy == .acceptNew ? .acceptNew : .strict)
        return SSHConnectionConfiguration(host: host, port: port, username: username, credentials: credentials,
                                          hostKeyVerifier: verifier, stallTimeout: stallTimeout)
    }
}
