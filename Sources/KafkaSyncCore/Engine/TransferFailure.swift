import Foundation
import SFTPClient

/// Why a job failed: a stable code (which says whether another attempt later may succeed) and a message for people.
public struct TransferFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable reason code: the `kafkasync-reason` header of a retry or a dead letter, the store's error class.
    /// New codes may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: Hashable, Sendable {
            case named(Name)
            case sftp(SFTPError.Code)
            case rejected(JobRejection.Reason)
        }

        private enum Name: String, Sendable {
            // The server (either engine; the codes shared with SFTP are SFTPError's).
            case wrongKind = "wrong_kind", notAFile = "not_a_file", remoteChanged = "remote_changed"
            case unsafeRemoteName = "unsafe_remote_name", tooManyEntries = "too_many_entries", tooDeep = "too_deep"
            // lftp.
            case lftpUnavailable = "lftp_unavailable", lftpFailed = "lftp_failed", unsupportedSetting = "unsupported_setting"
            // This host's disk (beyond SFTPError's disk_full and local_io).
            case fsyncFailed = "fsync_failed"
            // Verification and placement.
            case sizeMismatch = "size_mismatch", checksumMismatch = "checksum_mismatch"
            case nameConflict = "name_conflict", unsafeDestination = "unsafe_destination"
            // The pipeline.
            case unknownRemote = "unknown_remote", storeFailed = "store_failed"
            case attemptsExhausted = "attempts_exhausted", outcomeTooLarge = "outcome_too_large"
            // The upload stage.
            case unknownUpload = "unknown_upload", uploadFailed = "upload_failed", uploadDenied = "upload_denied"
            case uploadRejected = "upload_rejected"
        }

        private let value: Value
        private init(name: Name) { value = .named(name) }

        /// The code of an SFTP failure (`no_such_file`, `timed_out`, …): transient as ``SFTPError/Code/isTransient``
        /// says.
        public init(_ code: SFTPError.Code) { value = .sftp(code) }

        /// The code of a job that cannot be decoded or validated: its ``JobRejection/Reason`` (`invalid_json`,
        /// `path_traversal`, …). Permanent.
        public init(_ reason: JobRejection.Reason) { value = .rejected(reason) }

        /// The TCP connection could not be made.
        public static let connectionFailed = Code(SFTPError.Code.connectionFailed)
        /// Connecting took too long, or the server stopped answering (no progress for `stall_timeout`).
        public static let timedOut = Code(SFTPError.Code.timedOut)
        /// The connection dropped.
        public static let connectionLost = Code(SFTPError.Code.connectionLost)
        /// The server offers no algorithm the engine supports.
        public static let noCommonAlgorithm = Code(SFTPError.Code.noCommonAlgorithm)
        /// The host key is not known (strict policy).
        public static let hostKeyUnknown = Code(SFTPError.Code.hostKeyUnknown)
        /// The host key differs from the known or pinned one.
        public static let hostKeyChanged = Code(SFTPError.Code.hostKeyChanged)
        /// The host key is marked `@revoked`.
        public static let hostKeyRevoked = Code(SFTPError.Code.hostKeyRevoked)
        /// The server refused every credential offered.
        public static let authenticationFailed = Code(SFTPError.Code.authenticationFailed)
        /// A private key file cannot be read or parsed.
        public static let unreadableKey = Code(SFTPError.Code.unreadableKey)
        /// A private key is of a kind the engine cannot use.
        public static let unsupportedKey = Code(SFTPError.Code.unsupportedKey)
        /// The remote path does not exist.
        public static let noSuchFile = Code(SFTPError.Code.noSuchFile)
        /// The server refused access to the remote path.
        public static let permissionDenied = Code(SFTPError.Code.permissionDenied)
        /// The server reported a generic failure.
        public static let failure = Code(SFTPError.Code.failure)
        /// The server broke the SFTP protocol.
        public static let protocolError = Code(SFTPError.Code.protocolError)
        /// The transfer was cancelled (shutdown): nothing is wrong with the job.
        public static let cancelled = Code(SFTPError.Code.cancelled)
        /// A file is larger than announced (it grew while downloading).
        public static let sizeExceeded = Code(SFTPError.Code.sizeExceeded)
        /// The remote path is a directory and the job says file, or the other way round.
        public static let wrongKind = Code(name: .wrongKind)
        /// The remote path is neither a file nor a directory.
        public static let notAFile = Code(name: .notAFile)
        /// The remote file changed while downloading.
        public static let remoteChanged = Code(name: .remoteChanged)
        /// A name the server listed is not a plain file name (`..`, `a/b`, …).
        public static let unsafeRemoteName = Code(name: .unsafeRemoteName)
        /// A directory job lists more than `max_entries` files and folders.
        public static let tooManyEntries = Code(name: .tooManyEntries)
        /// A directory job is nested deeper than the limit.
        public static let tooDeep = Code(name: .tooDeep)
        /// lftp cannot be run.
        public static let lftpUnavailable = Code(name: .lftpUnavailable)
        /// lftp failed for a reason not recognised.
        public static let lftpFailed = Code(name: .lftpFailed)
        /// A remote setting the lftp engine cannot honour.
        public static let unsupportedSetting = Code(name: .unsupportedSetting)
        /// This host's disk (or the user's quota) is full; what was downloaded is kept and resumed.
        public static let diskFull = Code(SFTPError.Code.diskFull)
        /// Another local file system failure.
        public static let localIO = Code(SFTPError.Code.localIO)
        /// A staged file could not be flushed to disk; it is downloaded again.
        public static let fsyncFailed = Code(name: .fsyncFailed)
        /// The result's size differs from the job's.
        public static let sizeMismatch = Code(name: .sizeMismatch)
        /// The result's checksum differs from the job's.
        public static let checksumMismatch = Code(name: .checksumMismatch)
        /// A different file has the name in `completes` and the policy is `fail`.
        public static let nameConflict = Code(name: .nameConflict)
        /// The place under `completes` passes through a symbolic link.
        public static let unsafeDestination = Code(name: .unsafeDestination)
        /// The job names a remote the config does not define.
        public static let unknownRemote = Code(name: .unknownRemote)
        /// The result is in place but the store cannot record it.
        public static let storeFailed = Code(name: .storeFailed)
        /// A transient failure happened on every attempt (`max_attempts`).
        public static let attemptsExhausted = Code(name: .attemptsExhausted)
        /// The broker refused the outcome record (too large).
        public static let outcomeTooLarge = Code(name: .outcomeTooLarge)
        /// The job names an upload the configuration does not define (permanent).
        public static let unknownUpload = Code(name: .unknownUpload)
        /// The object store failed in a way another attempt may get past: 5xx, throttling, a timeout (transient).
        public static let uploadFailed = Code(name: .uploadFailed)
        /// The object store refused the credentials or the access: 403 (permanent).
        public static let uploadDenied = Code(name: .uploadDenied)
        /// The object store refused the request for good: no such bucket, too large, invalid (permanent).
        public static let uploadRejected = Code(name: .uploadRejected)

        /// Whether another attempt later may succeed: network and server trouble, a full disk, a file that
        /// changed. `attempts_exhausted` counts as transient: it is the class of the failures that ran out.
        public var isTransient: Bool {
            switch value {
            case .sftp(let code): code.isTransient
            case .rejected: false
            case .named(let name):
                switch name {
                case .remoteChanged, .lftpUnavailable, .lftpFailed, .fsyncFailed, .storeFailed, .attemptsExhausted,
                     .uploadFailed: true
                case .unknownUpload, .uploadDenied, .uploadRejected, .wrongKind, .notAFile, .unsafeRemoteName, .tooManyEntries, .tooDeep, .unsupportedSetting, .sizeMismatch,
                     .checksumMismatch, .nameConflict, .unsafeDestination, .unknownRemote, .outcomeTooLarge: false
                }
            }
        }

        /// The code as headers, logs and the store spell it, e.g. `no_such_file`.
        public var description: String {
            switch value {
            case .named(let name): name.rawValue
            case .sftp(let code): code.description
            case .rejected(let reason): reason.code
            }
        }
    }

    /// Whether to retry, as the `kafkasync-error-class` header spells it.
    public enum Class: String, Sendable, Equatable {
        /// Retried with backoff.
        case transient
        /// Dead-lettered at once.
        case permanent
    }

    /// What went wrong.
    public let code: Code
    /// What went wrong, for people; never a secret.
    public let message: String

    /// Creates a failure.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// Whether another attempt later may succeed.
    public var isTransient: Bool { code.isTransient }

    /// ``isTransient`` as a header value.
    public var errorClass: Class { isTransient ? .transient : .permanent }

    /// A job that cannot be decoded or validated.
    public init(_ rejection: JobRejection) {
        self.init(Code(rejection.reason), rejection.message)
    }

    /// A local file system failure (disk full, a folder that cannot be created): `disk_full` for `ENOSPC` and
    /// `EDQUOT` (the staged part is kept and resumed once there is room), `local_io` for anything else.
    static func local(_ message: String, errno code: Int32 = errno) -> TransferFailure {
        TransferFailure(code == ENOSPC || code == EDQUOT ? .diskFull : .localIO,
                        "\(message): \(String(cString: strerror(code)))")
    }

    /// A local failure reported by Foundation: classified by the POSIX error under it, when there is one.
    static func local(_ message: String, error: any Error) -> TransferFailure {
        let error = error as NSError
        let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError
        let posix = [underlying, error].compactMap { $0 }.first { $0.domain == NSPOSIXErrorDomain }.map { Int32($0.code) }
        let code = posix ?? (error.code == CocoaError.fileWriteOutOfSpace.rawValue ? ENOSPC : EIO)
        return TransferFailure(code == ENOSPC || code == EDQUOT ? .diskFull : .localIO,
                               "\(message): \(underlying?.localizedDescription ?? error.localizedDescription)")
    }

    public var description: String { "\(message) [\(code)]" }
}
