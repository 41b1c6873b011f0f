/// Whether a record is a socket netd opened, one a netd server accepted, or a server.
public enum Role: String, Codable, Sendable, CaseIterable {
    case client, accepted, server
}

public enum Kind: String, Codable, Sendable, CaseIterable {
    case tcp, unix
}

/// Node's `readyState`, plus `closed`.
public enum SocketState: String, Codable, Sendable, CaseIterable {
    case opening, open, readOnly, writeOnly, closed
}

public enum ServerState: String, Codable, Sendable, CaseIterable {
    case listening, closed
}

/// How bytes travel inside JSON.
public enum DataEncoding: String, Codable, Sendable, CaseIterable {
    case utf8, base64, hex
}

/// One end of a connection: `{"address","port","family"}` for TCP, `{"path"}` for Unix sockets.
public struct Endpoint: Codable, Hashable, Sendable {
    // In key order: the encoder writes them so, with nothing to sort.
    public var address: String?
    /// `IPv4` or `IPv6`.
    public var family: String?
    public var path: String?
    public var port: Int?

    public init(address: String? = nil, port: Int? = nil, family: String? = nil, path: String? = nil) {
        self.address = address
        self.port = port
        self.family = family
        self.path = path
    }

    public static func tcp(_ address: String, _ port: Int) -> Endpoint {
        Endpoint(address: address, port: port, family: address.contains(":") ? "IPv6" : "IPv4")
    }

    public static func unix(_ path: String) -> Endpoint {
        Endpoint(path: path)
    }
}

/// Who opened a socket or server: the kernel's word on the RPC client that asked.
public struct Owner: Codable, Hashable, Sendable {
    public var pid: Int32
    public var uid: UInt32

    public init(uid: UInt32, pid: Int32) {
        self.uid = uid
        self.pid = pid
    }
}

/// How a socket or server failed, Node-style: `{"code":"ECONNRESET","message":"read ECONNRESET"}`.
public struct SocketFailure: Codable, Hashable, Sendable {
    public var code: String
    public var message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }
}

/// A socket as contract section 3 describes it. Absent values are written as null, never left out.
public struct SocketInfo: Codable, Hashable, Sendable {
    // What never changes about a socket; its members may be encoded once (``identity``).
    public var id: Int64 { didSet { identity = nil } }
    public var role: Role { didSet { identity = nil } }
    public var kind: Kind { didSet { identity = nil } }
    public var local: Endpoint? { didSet { identity = nil } }
    public var remote: Endpoint? { didSet { identity = nil } }
    public var host: String? { didSet { identity = nil } }
    public var server: Int64? { didSet { identity = nil } }
    public var label: String? { didSet { identity = nil } }
    public var owner: Owner { didSet { identity = nil } }
    public var openedAt: String { didSet { identity = nil } }
    /// Part two: the other socket of a pipe or forward pair (set once, when the pair is joined).
    public var peer: Int64? { didSet { identity = nil } }
    // What changes.
    public var state: SocketState
    public var bytesRead: Int64
    public var bytesWritten: Int64
    public var buffered: Int
    public var closedAt: String?
    public var error: SocketFailure?
    /// Part two: an RPC connection carries this socket's bytes (`socket.attach`). Written only when true.
    public var attached: Bool?
    /// Part two: who took the socket's descriptor (`socket.handoff`). Written only when set.
    public var handedOff: Owner?
    /// The members above that never change, encoded once (``withIdentityEncoded()``); changing any
    /// of them drops it. Not part of the value: equality and hashing leave it out.
    public private(set) var identity: JSONCoding.EncodedMembers?

    public init(
        id: Int64, role: Role, kind: Kind, state: SocketState, local: Endpoint?, remote: Endpoint?,
        host: String?, server: Int64?, label: String?, owner: Owner, bytesRead: Int64, bytesWritten: Int64,
        buffered: Int, openedAt: String, closedAt: String?, error: SocketFailure?, peer: Int64? = nil, attached: Bool? = nil
    ) {
        self.id = id
        self.peer = peer
        self.attached = attached
        self.role = role
        self.kind = kind
        self.state = state
        self.local = local
        self.remote = remote
        self.host = host
        self.server = server
        self.label = label
        self.owner = owner
        self.bytesRead = bytesRead
        self.bytesWritten = bytesWritten
        self.buffered = buffered
        self.openedAt = openedAt
        self.closedAt = closedAt
        self.error = error
    }

    /// This socket with its never-changing members encoded once, for a holder that describes the
    /// same socket again and again (netd's `socket.get`, `socket.list`): copy it and set what changes.
    public func withIdentityEncoded() throws -> SocketInfo {
        var copy = self
        copy.identity = try JSONCoding.EncodedMembers(membersOf: Identity(socket: self))
        return copy
    }

    /// A copy of this socket's identity with the changing members given; the identity stays encoded.
    public func with(
        state: SocketState, bytesRead: Int64, bytesWritten: Int64, buffered: Int, closedAt: String?, error: SocketFailure?,
        attached: Bool? = nil
    ) -> SocketInfo {
        var copy = self
        copy.attached = attached
        copy.state = state
        copy.bytesRead = bytesRead
        copy.bytesWritten = bytesWritten
        copy.buffered = buffered
        copy.closedAt = closedAt
        copy.error = error
        return copy
    }

    fileprivate enum CodingKeys: String, CodingKey {
        case id, role, kind, state, local, remote, host, server, label, owner, bytesRead, bytesWritten
        case buffered, openedAt, closedAt, error, peer, attached, handedOff
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        if attached == true { try container.encode(true, forKey: .attached) }
        try container.encode(buffered, forKey: .buffered)
        try container.encode(bytesRead, forKey: .bytesRead)
        try container.encode(bytesWritten, forKey: .bytesWritten)
        try container.encodeOrNull(closedAt, forKey: .closedAt)
        try container.encodeOrNull(error, forKey: .error)
        if let handedOff { try container.encode(handedOff, forKey: .handedOff) }
        try container.encode(members: identity, encoder: encoder) { try Identity(socket: self).encode(into: &$0) }
        try container.encode(raw: state, forKey: .state)
    }

    public static func == (left: SocketInfo, right: SocketInfo) -> Bool {
        Identity(socket: left) == Identity(socket: right) && left.state == right.state && left.bytesRead == right.bytesRead
            && left.bytesWritten == right.bytesWritten && left.buffered == right.buffered && left.closedAt == right.closedAt
            && left.error == right.error && (left.attached == true) == (right.attached == true) && left.handedOff == right.handedOff
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(Identity(socket: self))
        hasher.combine(state)
        hasher.combine(bytesRead)
        hasher.combine(bytesWritten)
        hasher.combine(buffered)
        hasher.combine(closedAt)
        hasher.combine(error)
        hasher.combine(attached == true)
        hasher.combine(handedOff)
    }

    /// The members that never change, in key order between `error` and `state`: one list, for
    /// encoding them once and for encoding them each time.
    private struct Identity: Encodable, Hashable {
        var host: String?
        var id: Int64
        var kind: Kind
        var label: String?
        var local: Endpoint?
        var openedAt: String
        var owner: Owner
        var peer: Int64?
        var remote: Endpoint?
        var role: Role
        var server: Int64?

        init(socket: SocketInfo) {
            (host, id, kind, label, local) = (socket.host, socket.id, socket.kind, socket.label, socket.local)
            (openedAt, owner, remote, role, server) = (socket.openedAt, socket.owner, socket.remote, socket.role, socket.server)
            peer = socket.peer
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try encode(into: &container)
        }

        func encode(into container: inout KeyedEncodingContainer<CodingKeys>) throws {
            try container.encodeOrNull(host, forKey: .host)
            try container.encode(id, forKey: .id)
            try container.encode(raw: kind, forKey: .kind)
            try container.encodeOrNull(label, forKey: .label)
            try container.encodeOrNull(local, forKey: .local)
            try container.encode(openedAt, forKey: .openedAt)
            try container.encode(owner, forKey: .owner)
            // Only sockets of a pair have it, so a client of part one sees no new member.
            if let peer { try container.encode(peer, forKey: .peer) }
            try container.encodeOrNull(remote, forKey: .remote)
            try container.encode(raw: role, forKey: .role)
            try container.encodeOrNull(server, forKey: .server)
        }
    }
}

/// A server as contract section 3 describes it. Absent values are written as null.
public struct ServerInfo: Codable, Hashable, Sendable {
    public var id: Int64
    public var role: Role
    public var kind: Kind
    public var state: ServerState
    public var local: Endpoint?
    public var backlog: Int
    /// Live accepted sockets.
    public var connections: Int
    /// Accepted in total.
    public var accepted: Int64
    /// Accepted and not yet claimed by `server.accept`.
    public var pending: Int
    public var maxConnections: Int?
    public var label: String?
    public var owner: Owner
    public var openedAt: String
    public var closedAt: String?
    public var error: SocketFailure?
    /// Part two: where a forwarding server relays its connections. Written only when set.
    public var forward: ForwardTarget?
    /// Part two: the listen is kept in the database and made again at every start. Written only when true.
    public var persist: Bool?
    /// Part two: who took the server's descriptor (`server.handoff`). Written only when set.
    public var handedOff: Owner?
    /// Extension: `server.accept` calls waiting for a connection (workers in a loop). Written only when some wait.
    public var waiting: Int?

    public init(
        id: Int64, kind: Kind, state: ServerState, local: Endpoint?, backlog: Int, connections: Int,
        accepted: Int64, pending: Int, maxConnections: Int?, label: String?, owner: Owner, openedAt: String,
        closedAt: String?, error: SocketFailure?, forward: ForwardTarget? = nil, persist: Bool? = nil, handedOff: Owner? = nil,
        waiting: Int? = nil
    ) {
        self.waiting = waiting
        self.handedOff = handedOff
        self.forward = forward
        self.persist = persist
        self.id = id
        self.role = .server
        self.kind = kind
        self.state = state
        self.local = local
        self.backlog = backlog
        self.connections = connections
        self.accepted = accepted
        self.pending = pending
        self.maxConnections = maxConnections
        self.label = label
        self.owner = owner
        self.openedAt = openedAt
        self.closedAt = closedAt
        self.error = error
    }

    private enum CodingKeys: String, CodingKey {
        case id, role, kind, state, local, backlog, connections, accepted, pending, maxConnections, label, owner
        case openedAt, closedAt, error, forward, persist, handedOff, waiting
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(accepted, forKey: .accepted)
        try container.encode(backlog, forKey: .backlog)
        try container.encodeOrNull(closedAt, forKey: .closedAt)
        try container.encode(connections, forKey: .connections)
        try container.encodeOrNull(error, forKey: .error)
        if let forward { try container.encode(forward, forKey: .forward) }
        if let handedOff { try container.encode(handedOff, forKey: .handedOff) }
        try container.encode(id, forKey: .id)
        try container.encode(raw: kind, forKey: .kind)
        try container.encodeOrNull(label, forKey: .label)
        try container.encodeOrNull(local, forKey: .local)
        try container.encodeOrNull(maxConnections, forKey: .maxConnections)
        try container.encode(openedAt, forKey: .openedAt)
        try container.encode(owner, forKey: .owner)
        try container.encode(pending, forKey: .pending)
        if persist == true { try container.encode(true, forKey: .persist) }
        try container.encode(raw: role, forKey: .role)
        try container.encode(raw: state, forKey: .state)
        if let waiting, waiting > 0 { try container.encode(waiting, forKey: .waiting) }
    }
}
