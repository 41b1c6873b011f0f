import GRDB

/// The history database's schema, as named migrations. A migration never changes once shipped:
/// a new schema version is a new migration appended here, and docs/SCHEMA.md says what it did.
enum Schema {
    /// `PRAGMA application_id` of a netd database: "netd" in ASCII. A file with tables and another id is not ours.
    static let applicationID: Int32 = 0x6E65_7464

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-connections-and-events") { db in
            try db.execute(sql: """
                CREATE TABLE connections (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    role TEXT NOT NULL CHECK (role IN ('client', 'accepted', 'server')),
                    kind TEXT NOT NULL CHECK (kind IN ('tcp', 'unix')),
                    state TEXT NOT NULL,
                    label TEXT,
                    host TEXT,
                    local_address TEXT,
                    local_port INTEGER,
                    local_path TEXT,
                    remote_address TEXT,
                    remote_port INTEGER,
                    remote_path TEXT,
                    server_id INTEGER,
                    owner_uid INTEGER NOT NULL,
                    owner_pid INTEGER,
                    opened_at TEXT NOT NULL,
                    closed_at TEXT,
                    last_activity_at TEXT,
                    bytes_read INTEGER NOT NULL DEFAULT 0,
                    bytes_written INTEGER NOT NULL DEFAULT 0,
                    error_code TEXT,
                    error_message TEXT,
                    backlog INTEGER,
                    max_connections INTEGER,
                    accepted INTEGER
                );
                CREATE INDEX connections_opened_at ON connections(opened_at);
                CREATE INDEX connections_open ON connections(id) WHERE closed_at IS NULL;
                CREATE INDEX connections_server ON connections(server_id) WHERE server_id IS NOT NULL;
                CREATE TABLE events (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    connection_id INTEGER NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
                    at TEXT NOT NULL,
                    type TEXT NOT NULL,
                    detail TEXT
                );
                CREATE INDEX events_connection ON events(connection_id, id);
                PRAGMA application_id = \(applicationID);
                """)
        }
        migrator.registerMigration("v2-history-indexes") { db in
            // Every filter of history.query is answered from an index that also orders by id, so
            // a page of the newest matches is read without sorting, however large the table.
            // (The expressions are spelled out: this migration must never change.)
            try db.execute(sql: """
                DROP INDEX connections_server;
                CREATE INDEX connections_server ON connections(server_id, id) WHERE server_id IS NOT NULL;
                CREATE INDEX connections_owner ON connections(owner_uid, id);
                CREATE INDEX connections_role ON connections(role, id);
                CREATE INDEX connections_kind ON connections(kind, id);
                CREATE INDEX connections_label ON connections(label, id) WHERE label IS NOT NULL;
                CREATE INDEX connections_host ON connections((COALESCE(host, remote_address)), id);
                CREATE INDEX connections_port ON connections((CASE role WHEN 'server' THEN local_port ELSE remote_port END), id);
                CREATE INDEX connections_path ON connections((CASE role WHEN 'client' THEN remote_path ELSE local_path END), id);
                CREATE INDEX connections_closed_at ON connections(closed_at) WHERE closed_at IS NOT NULL;
                """)
        }
        migrator.registerMigration("v3-pairs-forwards-persisted-listens") { db in
            // Part two: a relayed socket names the other socket of its pair; a forwarding server
            // keeps its target (JSON); persisted listens are made again at every start.
            try db.execute(sql: """
                ALTER TABLE connections ADD COLUMN peer_id INTEGER;
                ALTER TABLE connections ADD COLUMN forward TEXT;
                CREATE TABLE persisted_listens (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    owner_uid INTEGER NOT NULL,
                    owner_pid INTEGER,
                    label TEXT,
                    params TEXT NOT NULL,
                    created_at TEXT NOT NULL,
                    server_id INTEGER
                );
                """)
        }
        return migrator
    }

    // Queries spell these exactly as the v2 indexes do, so that SQLite uses them.

    /// The host a record is known by: the name asked for, else the peer's address.
    static let hostExpression = "(COALESCE(host, remote_address))"

    /// The port a record is known by: the remote port of a socket, the local port of a server.
    static let portExpression = "(CASE role WHEN 'server' THEN local_port ELSE remote_port END)"

    /// The Unix path a record is known by: the peer's for a client, the server's otherwise.
    static let pathExpression = "(CASE role WHEN 'client' THEN remote_path ELSE local_path END)"
}
