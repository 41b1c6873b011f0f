import Foundation
import NetdProtocol
import NetdRelay

/// Everything one netd hands to the next (`netd --replace`, contract section 13), as one JSON
/// document sent on the private socket ahead of the descriptors it numbers. Descriptors are
/// referred to by their position in the order they follow the document.
struct Handover: Codable, Sendable {
    /// The document's format; a netd refuses a format it does not know, and the old one keeps serving.
    static let currentFormat = 1

    var format = Handover.currentFormat
    /// The handing netd's version and process, for the log.
    var version: String
    var pid: Int32
    /// The next record id the handing netd would have given: the new one continues from there.
    var nextID: Int64
    /// netd's own RPC listening socket.
    var listener: Int
    /// Whether systemd made that socket (socket activation): then no netd ever removes its file.
    var listenerActivated: Bool? = nil
    var servers: [CarriedServer]
    var sockets: [CarriedSocket]
    var pairs: [CarriedPair]
    /// The faults (contract section 12), with their draws so far, and the next fault id.
    var faults: [FaultInfo] = []
    var nextFaultID: Int64 = 1
    /// How many descriptors follow the document.
    var descriptors: Int
}

/// A listening server: what `server.listen` made it, and what it has done since.
struct CarriedServer: Codable, Sendable {
    var id: Int64
    var kind: Kind
    var owner: Owner
    var label: String?
    var openedAt: String
    var backlog: Int
    var maxConnections: Int?
    var options: ManagedServer.AcceptedOptions
    var forward: ForwardTarget?
    var persistedID: Int64?
    var local: Endpoint?
    /// The socket file of a Unix server, removed by whichever netd closes the server.
    var socketPath: String?
    var accepted: Int64
    var live: Int
    /// Accepted sockets waiting for `server.accept`, oldest first.
    var pending: [Int64]
    var descriptor: Int
}

/// A socket, open or (for its unread bytes alone) closed.
struct CarriedSocket: Codable, Sendable {
    var id: Int64
    var role: Role
    var kind: Kind
    var owner: Owner
    var host: String?
    var server: Int64?
    var label: String?
    var openedAt: String
    var local: Endpoint?
    var remote: Endpoint?
    var bytesRead: Int64
    var bytesWritten: Int64
    /// Received and not read yet, base64.
    var unread: String
    var inputEnded: Bool
    var outputEnded: Bool
    var eofDelivered: Bool
    var failure: SocketFailure?
    var allowHalfOpen: Bool
    var idleTimeoutMs: Int?
    var peer: Int64?
    /// Closed, kept for its unread bytes (no descriptor then).
    var closed: Bool
    var closedAt: String?
    var descriptor: Int?
}

/// A relayed pair (a pipe, a forwarded connection, or an attached stream) with what was in
/// flight between its sides when it was taken out of the relay.
struct CarriedPair: Codable, Sendable {
    /// The socket on each side; nil for the RPC connection of an attached stream.
    var sockets: [Int64?]
    /// The RPC connection's descriptor, for an attached stream.
    var client: Int?
    /// Bytes bound for each side, base64: read from the other side and not yet written.
    var bound: [String]
    var outputEnded: [Bool]
    var endsWhenInputEnds: [Bool]
    var resetPropagates: Bool
    /// The faults acting on the pair, each with the connection number it drew.
    var faults: [CarriedFaultUse] = []
    /// Fault timers still running, with the time each had left.
    var timers: [PairTimer] = []

    var isAttached: Bool { sockets.contains(nil) }
}

/// A fault acting on a carried pair: which, and the connection number it drew (its jitter and
/// slice sizes come from it).
struct CarriedFaultUse: Codable, Sendable {
    var fault: Int64
    var ordinal: Int
}
