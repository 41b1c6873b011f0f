/// `socket.get`: one socket, live or closed.
public enum SocketGetMethod: RPCMethod {
    public static let name = "socket.get"
    public static let summary = "Get one socket by id."
    public typealias Params = IDParams
    public typealias Result = SocketInfo
}
