/// The version netd and netctl report (`netd.ping`, `netd.status`, `--version`).
public enum NetdVersion {
    public static let current = "0.1.0"
}
