/// `netd.methods`: every method with a one-line summary and its params, from ``MethodRegistry``.
public enum MethodsMethod: RPCMethod {
    public static let name = "netd.methods"
    public static let summary = "List every method with a one-line summary and its params."
    public typealias Params = NoParams

    public struct Result: Codable, Hashable, Sendable {
        public var methods: [MethodDescription]

        public init(methods: [MethodDescription]) { self.methods = methods }
    }
}

public struct MethodDescription: Codable, Hashable, Sendable {
    public var name: String
    public var summary: String
    public var params: [ParamField]

    public init(name: String, summary: String, params: [ParamField]) {
        self.name = name
        self.summary = summary
        self.params = params
    }
}
