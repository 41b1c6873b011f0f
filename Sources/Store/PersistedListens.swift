import GRDB

/// A `server.listen` kept with `persist: true` (contract section 10): netd listens again with
/// its params at every start, until `server.close` removes it.
public struct PersistedListen: Codable, Sendable, Hashable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "persisted_listens"

    public var id: Int64?
    public var ownerUID: UInt32
    public var ownerPID: Int32?
    public var label: String?
    /// The listen's params as JSON, exactly as `server.listen` takes them.
    public var params: String
    public var createdAt: String
    /// The server listening with them now (a new id at every start).
    public var serverID: Int64?

    public init(ownerUID: UInt32, ownerPID: Int32?, label: String?, params: String, createdAt: String, serverID: Int64?) {
        self.ownerUID = ownerUID
        self.ownerPID = ownerPID
        self.label = label
        self.params = params
        self.createdAt = createdAt
        self.serverID = serverID
    }

    enum CodingKeys: String, CodingKey {
        case id, ownerUID = "owner_uid", ownerPID = "owner_pid", label, params, createdAt = "created_at", serverID = "server_id"
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) {
        id = inserted.rowID
    }
}

extension HistoryStore {
    /// Keeps a listen; returns its row id. Written at once (not by the batching writer): a
    /// persisted listen must survive a crash right after `server.listen` answers.
    public func persist(_ listen: PersistedListen) async throws -> Int64 {
        try await pool.write { db in
            var listen = listen
            try listen.insert(db)
            return listen.id ?? 0
        }
    }

    /// Every kept listen, oldest first.
    public func persistedListens() throws -> [PersistedListen] {
        try pool.read { db in try PersistedListen.order(Column("id")).fetchAll(db) }
    }

    /// The server that listens for a kept listen now.
    public func persistedListen(_ id: Int64, nowServedBy serverID: Int64?) async throws {
        try await pool.write { db in
            try db.execute(sql: "UPDATE persisted_listens SET server_id = ? WHERE id = ?", arguments: [serverID, id])
        }
    }

    /// Forgets a kept listen (its server's `server.close`).
    public func forgetPersistedListen(_ id: Int64) async throws {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM persisted_listens WHERE id = ?", arguments: [id])
        }
    }
}
