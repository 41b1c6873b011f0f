import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import NetdProtocol

/// `HOST:PORT`, `[IPv6]:PORT`, `:PORT` (every address), `PORT` or a Unix socket path, as
/// netctl's commands take them.
struct Target {
    var host: String?
    var port: Int?
    var path: String?

    /// Anything with a `/`, or ending in `.sock`, is a Unix socket path, made absolute against
    /// netctl's working directory (netd refuses relative paths: it cannot know the caller's);
    /// otherwise the port is after the last colon, and an empty host (`:8080`) is every address.
    init(parsing text: String, hostRequired: Bool) throws {
        if text.contains("/") || text.hasSuffix(".sock") {
            path = Self.absolute(text)
            return
        }
        var rest = Substring(text)
        if let colon = rest.lastIndex(of: ":") {
            var name = rest[..<colon]
            if name.hasPrefix("[") && name.hasSuffix("]") { name = name.dropFirst().dropLast() }
            if name.contains(":") && !rest.hasPrefix("[") {
                throw ValidationError("\(text): write an IPv6 address in brackets, [\(name)]:PORT")
            }
            host = name.isEmpty ? nil : String(name)
            if name.isEmpty && hostRequired { host = "localhost" }
            rest = rest[rest.index(after: colon)...]
        } else if hostRequired {
            throw ValidationError("expected HOST:PORT, :PORT or a socket path, not \(text)")
        }
        guard let port = Int(rest), (0...65535).contains(port) else {
            throw ValidationError("\(rest) is not a port (0-65535)")
        }
        self.port = port
    }

    /// The target of a forward (`server.listen`'s `forward`).
    var forward: ForwardTarget {
        path.map { ForwardTarget(path: $0) } ?? ForwardTarget(host: host, port: port)
    }

    /// `path` against the working directory, `.` and `..` resolved by their names (as the shell's
    /// `cd -L` does; nothing needs to exist yet).
    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        let base = FileManager.default.currentDirectoryPath
        var parts: [Substring] = []
        for part in (base + "/" + path).split(separator: "/") {
            switch part {
            case ".": continue
            case "..": _ = parts.popLast()
            default: parts.append(part)
            }
        }
        return "/" + parts.joined(separator: "/")
    }
}

/// A duration as people type it: `500ms`, `30s`, `2m`, `1h`, `7d`, `1h30m`; a bare number is
/// milliseconds, as in netd's `...Ms` params.
struct DurationArgument: ExpressibleByArgument {
    var milliseconds: Int

    init?(argument: String) {
        guard let value = Self.milliseconds(argument) else { return nil }
        milliseconds = value
    }

    static func milliseconds(_ text: String) -> Int? {
        if let plain = Int(text), plain >= 0 { return plain }
        return DurationText.milliseconds(text).flatMap { Int(exactly: $0) }
    }

    static var defaultCompletionKind: CompletionKind { .list(["500ms", "5s", "1m"]) }
}

/// A byte count as people type it: `512`, `64k`, `1m`, `2g` (powers of 1024).
struct SizeArgument: ExpressibleByArgument {
    var bytes: Int

    init?(argument: String) {
        guard let value = SizeText.bytes(argument) else { return nil }
        bytes = value
    }

    static var defaultCompletionKind: CompletionKind { .list(["64k", "1m"]) }
}
