import Foundation
import Logging
import NetdProtocol
import NetdStore

extension ConnectionManager {
    /// `server.listen` with `persist: true`: kept in the database first, then made; a listen
    /// that fails is not kept.
    func listenPersisted(_ params: ServerListenMethod.Params, context: RequestContext) async throws(NetdError) -> ServerInfo {
        let text: String
        do {
            text = String(decoding: try JSONCoding.encode(params), as: UTF8.self)
        } catch {
            throw NetdError.internalFailure("cannot keep the listen's params: \(error)")
        }
        let row: Int64
        do {
            row = try await store.persist(PersistedListen(
                ownerUID: context.peer.uid, ownerPID: context.peer.pid, label: params.label, params: text,
                createdAt: Ledger.now(), serverID: nil))
        } catch {
            throw NetdError.historyUnavailable("cannot keep the listen: \(error)")
        }
        let server: ManagedServer
        do {
            server = try await listen(params, context: context, persistedID: row)
        } catch {
            try? await store.forgetPersistedListen(row)
            throw error
        }
        try? await store.persistedListen(row, nowServedBy: server.id)
        return server.info()
    }

    /// Listens again with every kept listen, at start: each one a new server (same label, an
    /// event `restored`). One that fails is logged and recorded, and the others still start.
    func restorePersistedListens(logger: Logger) async {
        let kept: [PersistedListen]
        do {
            kept = try store.persistedListens()
        } catch {
            logger.error("cannot read the persisted listens", metadata: ["error": "\(error)"])
            return
        }
        for persisted in kept {
            guard let row = persisted.id else { continue }
            let line = #"{"jsonrpc":"2.0","id":0,"method":"server.listen","params":"# + persisted.params + "}"
            guard case .single(let call) = IncomingFrame.decode(Array(line.utf8)), case .success(let valid) = call.content,
                let params = valid.params as? ServerListenMethod.Params
            else {
                logger.error("a persisted listen's params are no longer valid; skipped", metadata: ["listen.row": "\(row)", "listen.params": "\(persisted.params)"])
                continue
            }
            var context = RequestContext(
                peer: PeerCredentials(pid: persisted.ownerPID ?? 0, uid: persisted.ownerUID, gid: persisted.ownerUID),
                connectionID: -1, logger: logger)
            context.eventLoop = group.next()
            do {
                let server = try await listen(params, context: context, persistedID: row)
                ledger.restored(server.id, owner: server.owner, from: row)
                try? await store.persistedListen(row, nowServedBy: server.id)
                logger.info("persisted listen restored", metadata: ["server.id": "\(server.id)", "listen.row": "\(row)", "server.label": "\(persisted.label ?? "")"])
            } catch {
                logger.error("a persisted listen failed to start; the others go on", metadata: [
                    "listen.row": "\(row)", "listen.params": "\(persisted.params)", "error": "\(error)",
                ])
            }
        }
    }
}
