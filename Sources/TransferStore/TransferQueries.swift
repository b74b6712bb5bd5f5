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

    /// Creates a query; the newest transfers come first.
    public init(statuses: Set<TransferStatus> = [], since: Date? = nil, until: Date? = nil,
                nameContains: String? = nil, limit: Int = 50, offset: Int = 0) {
        self.statuses = statuses
        self.since = since
        self.until = until
        self.nameContains = nameContains
        self.limit = limit
        self.offset = offset
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
