/// Every method netd serves. The dispatcher refuses to start unless it has a handler for each,
/// and `netd.methods` is generated from this list.
public enum MethodRegistry {
    public static let all: [any RPCMethod.Type] = [
        PingMethod.self,
        StatusMethod.self,
        MethodsMethod.self,
        NetdReplaceMethod.self,
        SocketConnectMethod.self,
        SocketWriteMethod.self,
        SocketReadMethod.self,
        SocketEndMethod.self,
        SocketCloseMethod.self,
        SocketConfigureMethod.self,
        SocketGetMethod.self,
        SocketListMethod.self,
        SocketAttachMethod.self,
        SocketPipeMethod.self,
        SocketHandoffMethod.self,
        ServerListenMethod.self,
        ServerAcceptMethod.self,
        ServerCloseMethod.self,
        ServerHandoffMethod.self,
        ServerGetMethod.self,
        ServerListMethod.self,
        FaultAddMethod.self,
        FaultRemoveMethod.self,
        FaultListMethod.self,
        EventsSubscribeMethod.self,
        EventsUnsubscribeMethod.self,
        HistoryQueryMethod.self,
        HistoryGetMethod.self,
        HistoryPruneMethod.self,
        HistoryStatsMethod.self,
    ]

    /// Every method's name, in registry order.
    public static let names: [String] = descriptions.map(\.name)

    private static let byName: [String: any RPCMethod.Type] = Dictionary(
        uniqueKeysWithValues: zip(names, all).map { ($0, $1) }
    )

    /// The methods whose params are ``NoParams``, by name.
    static let takingNoParams: [String: any RPCMethod.Type] = byName.filter { entry in
        let method: any RPCMethod.Type = entry.value
        return takesNoParams(method)
    }

    private static func takesNoParams<M: RPCMethod>(_ method: M.Type) -> Bool {
        M.Params.self == NoParams.self
    }

    public static func method(named name: String) -> (any RPCMethod.Type)? {
        byName[name]
    }

    /// What `netd.methods` answers.
    public static var descriptions: [MethodDescription] {
        all.map { describe($0) }
    }

    private static func describe<M: RPCMethod>(_ method: M.Type) -> MethodDescription {
        MethodDescription(name: M.name, summary: M.summary, params: M.Params.fields)
    }
}
