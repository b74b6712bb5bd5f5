import Foundation

/// A filter over the transfer history.
public struct TransferQuery: Sendable, Equatable {
    /// Only these statuses (empty: all).
    public var statuses: Set<TransferStatus>
    /// Only transfers received at or after this time.
    public var since: Date?
    /// Only transfers received before this time.
    public var until: Date?
    /// Only names containing this text (case-insensitive for ASCII).
    public var nameContains: String?
    /// Page size.
    public var limit: Int
    /// Records to skip (paging).
    public var offset: Int
    /// Only records after this one in the list's order (keyset paging: a page's last record).
    public var after: TransferCursor?

    /// Creates a query; the newest transfers come first.
    public init(statuses: Set<TransferStatus> = [], since: Date? = nil, until: Date? = nil,
                nameContains: String? = nil, limit: Int = 50, offset: Int = 0, after: TransferCursor? = nil) {
        self.statuses = statuses
        self.since = since
        self.until = until
        self.nameContains = nameContains
        self.limit = limit
        self.offset = offset
        self.after = after
    }
}

/// A position in the history's order (newest received first, then job id): where the next page starts.
public struct TransferCursor: Sendable, Equatable {
    /// The last listed record's receive time.
    public var receivedAt: Date
    /// The last listed record's job id.
    public var jobID: String

    /// The position just after `record`.
    public init(after record: TransferRecord) {
        receivedAt = record.receivedAt
        jobID = record.jobID
    }

    /// A position from its parts (``token``).
    public init(receivedAt: Date, jobID: String) {
        self.receivedAt = receivedAt.roundedToMilliseconds
        self.jobID = jobID
    }

    /// An opaque text form for a URL (`<milliseconds>.<job id>` in base64url).
    public var token: String {
        Data("\(receivedAt.milliseconds).\(jobID)".utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Reads ``token``; nil when it is not one.
    public init?(token: String) {
        var base64 = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        guard token.count <= 2048, let data = Data(base64Encoded: base64) else { return nil }
        let text = String(decoding: data, as: UTF8.self)
        guard let dot = text.firstIndex(of: "."), let milliseconds = Int64(text[..<dot]) else { return nil }
        self.init(receivedAt: Date(milliseconds: milliseconds), jobID: String(text[text.index(after: dot)...]))
    }
}

/// One attempt of a transfer, as its lineage lists it.
public struct TransferAttempt: Sendable, Equatable {
    /// 1 for the first.
    public var attempt: Int
    /// How it ended (`running` while it runs; `retrying` when it failed transiently).
    public var outcome: TransferStatus
    public var startedAt: Date?
    public var finishedAt: Date?
    /// The consumer host that ran it.
    public var workerHost: String?
    /// The failure's code and message, when it failed.
    public var errorClass: String?
    public var errorMessage: String?

    public init(attempt: Int, outcome: TransferStatus, startedAt: Date? = nil, finishedAt: Date? = nil,
                workerHost: String? = nil, errorClass: String? = nil, errorMessage: String? = nil) {
        self.attempt = attempt
        self.outcome = outcome
        self.startedAt = startedAt?.roundedToMilliseconds
        self.finishedAt = finishedAt?.roundedToMilliseconds
        self.workerHost = workerHost
        self.errorClass = errorClass
        self.errorMessage = errorMessage
    }
}

/// Completed transfers in one time bucket.
public struct ActivityBucket: Sendable, Equatable {
    /// The bucket's start.
    public var start: Date
    /// Transfers completed in it.
    public var files: Int
    /// Bytes they moved.
    public var bytes: Int64
}

/// How often one kind of failure happened.
public struct FailureReason: Sendable, Equatable {
    /// The error class.
    public var errorClass: String
    /// How many transfers ended (or are waiting) with it.
    public var count: Int
    /// When it last happened.
    public var lastSeen: Date
}
