import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// systemd's readiness protocol (sd_notify(3)): one datagram of `NAME=VALUE` lines to the socket
/// in `$NOTIFY_SOCKET`, when systemd started netd with `Type=notify`. Nothing happens without it.
///
/// netd says `READY=1` once it serves; across `netd --replace` the replaced netd says
/// `MAINPID=` of the new one before it exits, so that a unit with `NotifyAccess=all` follows
/// netd to its new process instead of taking the old one's exit for the service's end.
public enum SystemdNotify {
    /// Sends `state` (lines such as `READY=1`); false when there is no socket or the send failed.
    @discardableResult
    public static func send(_ state: String) -> Bool {
        guard let path = ProcessInfo.processInfo.environment["NOTIFY_SOCKET"], !path.isEmpty, path.utf8.count < 108 else { return false }
        let fd = socket(AF_UNIX, CInt(SOCK_DGRAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        // A leading @ names a socket in the abstract namespace.
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            if bytes.first == UInt8(ascii: "@") { raw[0] = 0 }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (bytes.first == UInt8(ascii: "@") ? 0 : 1))
        let message = Array(state.utf8)
        let sent = message.withUnsafeBytes { payload in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, payload.baseAddress, payload.count, CInt(MSG_NOSIGNAL), $0, length) }
            }
        }
        return sent == message.count
    }
}
