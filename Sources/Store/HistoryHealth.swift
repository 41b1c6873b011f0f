import Foundation

extension HistoryWriter {
    /// What ``health`` reports.
    public struct Health: Sendable, Hashable {
        public var healthy: Bool
        public var queued: Int
        public var failures: Int
        public var lastFailure: String?
        public var lastFailureAt: Date?
        public var lastCommitAt: Date?
        public var dropped: Int
        public var rejected: Int
    }
}
