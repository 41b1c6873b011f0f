import CNetdRelay

#if canImport(Glibc)
import Glibc
#endif

/// Passing descriptors over a Unix stream socket with SCM_RIGHTS, which SwiftNIO's stream
/// channels cannot do (contract section 11): one descriptor attached to the first byte of the
/// bytes sent with it, so a reader that reads that byte with recvmsg receives it.
public enum DescriptorPassing {
    /// What one send did.
    public enum Sent: Equatable, Sendable {
        /// This many bytes went (at least one: the descriptor went with the first).
        case bytes(Int)
        /// Nothing went: the socket's buffer is full; try again when it drains.
        case wouldBlock
        /// The socket failed (errno); nothing went.
        case failed(CInt)
    }

    /// Sends `bytes` with `descriptor` attached to the first; never blocks. The caller keeps its
    /// own `descriptor` (the receiver gets a new one) and closes it when it is done with it.
    public static func send(_ bytes: [UInt8], with descriptor: CInt, on socket: CInt) -> Sent {
        precondition(!bytes.isEmpty, "a descriptor travels with at least one byte")
        while true {
            let count = bytes.withUnsafeBytes { netd_send_with_descriptor(socket, $0.baseAddress, UInt($0.count), descriptor) }
            if count >= 0 { return .bytes(count) }
            switch errno {
            case EINTR: continue
            case EAGAIN: return .wouldBlock
            case let code: return .failed(code)
            }
        }
    }

    /// Reads up to `capacity` bytes (blocking as the socket does) and the descriptor that came
    /// with them, if any (close-on-exec; the caller owns it). Nil bytes at end of stream.
    public static func receive(on socket: CInt, capacity: Int = 65536) throws(ReceiveError) -> (bytes: [UInt8], descriptor: CInt?) {
        var buffer = [UInt8](repeating: 0, count: capacity)
        var descriptor: CInt = -1
        while true {
            let count = buffer.withUnsafeMutableBytes { netd_receive_with_descriptor(socket, $0.baseAddress, UInt($0.count), &descriptor) }
            if count < 0 {
                if errno == EINTR { continue }
                throw ReceiveError(code: errno)
            }
            return (Array(buffer[0..<count]), descriptor >= 0 ? descriptor : nil)
        }
    }

    /// What `socket` has sent that its reader has not read yet, as the kernel counts it (SIOCOUTQ:
    /// for a Unix socket, the memory those bytes take, not their number): 0 once everything is
    /// read; nil if the kernel will not say. netd sends a descriptor only once this is 0, so that
    /// the reader's recvmsg that takes it begins with the first byte of its line.
    public static func unread(on socket: CInt) -> Int? {
        let value = netd_unread_bytes(socket)
        return value < 0 ? nil : Int(value)
    }

    public struct ReceiveError: Error, CustomStringConvertible, Sendable {
        public let code: CInt
        public var description: String { "recvmsg: \(String(cString: strerror(code)))" }
    }
}
