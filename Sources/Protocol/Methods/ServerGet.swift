/// `server.get`: one server, listening or closed.
public enum ServerGetMethod: RPCMethod {
    public static let name = "server.get"
    public static let summary = "Get one server by id."
    public typealias Params = IDParams
    public typealias Result = ServerInfo
}
