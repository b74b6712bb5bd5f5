import Logging
import SFTPClient

/// What `kafkasync config check --probe` finds out about one remote by connecting to it: what the server offers
/// (read before any login), which engine serves the remote and why (the same choice ``AutoEngine`` makes), and
/// whether that engine logs in, with the host key verified as it would be for a transfer. Nothing is downloaded.
public struct RemoteProbe: Sendable {
    /// The remote's name.
    public var remote: String
    /// host:port, or the ssh_config Host.
    public var address: String
    /// What the server offers; `nil` for a remote reached through an ssh_config Host (ssh knows its address).
    public var offer: Result<SSHServerOffer, TransferFailure>?
    /// The engine that serves the remote: native or lftp.
    public var engine: TransferEngineKind
    /// Why lftp, when it is.
    public var reason: String?
    /// What the login showed, or why it failed.
    public var login: Result<String, TransferFailure>

    /// Whether the remote can be served as configured.
    public var succeeded: Bool { if case .success = login { true } else { false } }

    /// Probes `remote`, logging in through `lftp` when that is the engine for it.
    public static func run(_ remote: RemoteConfig, lftp: LftpEngine, logger: Logger) async -> RemoteProbe {
        var probe = RemoteProbe(remote: remote.name, address: remote.sshConfigHost.map { "ssh_config Host \($0)" }
                                    ?? "\(remote.host):\(remote.port)",
                                offer: nil, engine: remote.engine == .lftp ? .lftp : .native, reason: nil,
                                login: .failure(TransferFailure(.failure, "not tried")))
        if remote.sshConfigHost == nil {
            do throws(SFTPError) {
                probe.offer = .success(try await SSHServerOffer.read(host: remote.host, port: remote.port))
            } catch {
                probe.offer = .failure(TransferFailure(error))
                probe.login = .failure(TransferFailure(error))
                return probe
            }
        }
        if remote.engine == .lftp {
            probe.reason = #"engine = "lftp""#
        } else if remote.engine == .auto {
            if remote.needsOpenSSH {
                probe.engine = .lftp
                probe.reason = "\(remote.sshConfigHost != nil ? "ssh_config_host" : "identity_agent") needs the OpenSSH client"
            } else if case .success(let offer)? = probe.offer, case .failure(let none) = offer.nativeMatch,
                      LftpEngine.locate() != nil, remote.hostKeyFingerprint == nil {
                probe.engine = .lftp
                probe.reason = none.description
            }
        }
        if probe.engine == .native {
            do throws(TransferFailure) {
                probe.login = .success(try await loginNatively(remote, logger: logger))
                return probe
            } catch where remote.engine == .auto && AutoEngine.nativeCannotServe(error) && LftpEngine.locate() != nil
                && remote.hostKeyFingerprint == nil
            {
                probe.engine = .lftp
                probe.reason = error.message
            } catch {
                probe.login = .failure(error)
                return probe
            }
        }
        do throws(TransferFailure) {
            try await lftp.probe(remote)
            probe.login = .success("logged in through lftp; OpenSSH verified the host key against \(remote.knownHosts ?? "~/.ssh/known_hosts")")
        } catch {
            probe.login = .failure(error)
        }
        return probe
    }

    /// Connects with the native engine, verifies the host key, logs in and opens SFTP.
    private static func loginNatively(_ remote: RemoteConfig, logger: Logger) async throws(TransferFailure) -> String {
        do throws(SFTPError) {
            let connection = try await SSHConnection.connect(try remote.connectionConfiguration(), logger: logger)
            do throws(SFTPError) {
                let session = try await connection.openSFTP()
                let home = try await session.realPath(".")
                await session.close()
                await connection.close()
                let verified = remote.hostKeyFingerprint.map { "the pinned fingerprint \($0)" }
                    ?? (remote.knownHosts ?? "~/.ssh/known_hosts")
                return "logged in as \(remote.username), SFTP home \(home); host key verified against \(verified)"
            } catch {
                await connection.close()
                throw error
            }
        } catch {
            throw TransferFailure(error)
        }
    }

    /// The report, a few lines under the remote's name.
    public var lines: [String] {
        var lines = ["remote \(remote) (\(address)):"]
        switch offer {
        case .success(let offer)?:
            lines.append("  server       \(offer.version)")
            lines.append("  key exchange \(offer.keyExchange.joined(separator: ", "))")
            lines.append("  host keys    \(offer.hostKeys.joined(separator: ", "))")
            lines.append("  ciphers      \(offer.ciphers.joined(separator: ", "))")
            lines.append("  MACs         \(offer.macs.joined(separator: ", "))")
            if case .success(let match) = offer.nativeMatch {
                lines.append("  native       \(match.keyExchange), \(match.hostKey), \(match.cipher)")
            }
        case .failure?, nil:
            break
        }
        lines.append("  engine       \(engine.rawValue)\(reason.map { " (\($0))" } ?? "")")
        switch login {
        case .success(let text): lines.append("  ok           \(text)")
        case .failure(let failure): lines.append("  FAILED       \(failure.code): \(failure.message)")
        }
        return lines
    }
}
