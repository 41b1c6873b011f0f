/// A record of history: a socket or a server in the shape of contract section 3.
public enum HistoryRecord: Codable, Hashable, Sendable {
    case socket(SocketInfo)
    case server(ServerInfo)

    public var id: Int64 {
        switch self {
        case .socket(let socket): socket.id
        case .server(let server): server.id
        }
    }

    public var openedAt: String {
        switch self {
        case .socket(let socket): socket.openedAt
        case .server(let server): server.openedAt
        }
    }

    public var closedAt: String? {
        switch self {
        case .socket(let socket): socket.closedAt
        case .server(let server): server.closedAt
        }
    }

    public var error: SocketFailure? {
        switch self {
        case .socket(let socket): socket.error
        case .server(let server): server.error
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyCodingKey.self)
        let role = try container.decode(Role.self, forKey: AnyCodingKey("role"))
        self = role == .server ? .server(try ServerInfo(from: decoder)) : .socket(try SocketInfo(from: decoder))
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .socket(let socket): try socket.encode(to: encoder)
        case .server(let server): try server.encode(to: encoder)
        }
    }
}

/// One event of a record, as `history.get` answers it.
public struct HistoryEvent: Codable, Hashable, Sendable {
    public var at: String
    public var type: String
    /// The event's details (a JSON object), or null.
    public var detail: JSONValue?

    public init(at: String, type: String, detail: JSONValue?) {
        self.at = at
        self.type = type
        self.detail = detail
    }

    private enum CodingKeys: String, CodingKey { case at, type, detail }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(at, forKey: .at)
        try container.encode(type, forKey: .type)
        try container.encode(detail, forKey: .detail)
    }
}
