#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import NetdProtocol

/// Colour for people at a terminal: never into a pipe or a file, never when `NO_COLOR` is set to
/// anything but the empty string (no-color.org), nor with `TERM=dumb`.
enum Style {
    static let enabled: Bool = {
        if let noColor = getenv("NO_COLOR"), noColor.pointee != 0 { return false }
        if let term = getenv("TERM"), String(cString: term) == "dumb" { return false }
        return isatty(STDOUT_FILENO) == 1
    }()

    static func bold(_ text: String) -> String { paint(text, "1") }
    static func dim(_ text: String) -> String { paint(text, "2") }
    static func red(_ text: String) -> String { paint(text, "31") }
    static func green(_ text: String) -> String { paint(text, "32") }
    static func yellow(_ text: String) -> String { paint(text, "33") }

    private static func paint(_ text: String, _ code: String) -> String {
        enabled && !text.isEmpty ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }

    /// A state or an outcome in its colour: open green, closed dim, an error code red.
    static func state(_ text: String) -> String {
        switch text {
        case "open", "listening", "ok": green(text)
        case "closed", "-": dim(text)
        case "opening", "readOnly", "writeOnly": yellow(text)
        default: text.hasPrefix("E") || text.hasPrefix("ERR_") ? red(text) : text
        }
    }
}

/// Columns padded to their widest cell, the header bold and the cells of the columns named in
/// `states` coloured as ``Style/state(_:)`` says (padding counts the text, not the colour codes).
func table(_ rows: [[String]], states: Set<String> = ["STATE", "END"]) -> String {
    let widths = (0..<(rows.first?.count ?? 0)).map { column in rows.map { $0[column].count }.max() ?? 0 }
    let painted = Set((rows.first ?? []).indices.filter { states.contains(rows[0][$0]) })
    return rows.enumerated().map { index, row in
        var cells = zip(row, widths).enumerated().map { column, pair in
            let (text, width) = pair
            let padding = String(repeating: " ", count: max(0, width - text.count))
            let shown = index == 0 ? Style.bold(text) : painted.contains(column) ? Style.state(text) : text
            return (shown, padding)
        }
        // No trailing blanks after the last non-empty cell.
        while let last = cells.last, last.0.isEmpty { cells.removeLast() }
        return cells.enumerated().map { column, cell in column == cells.count - 1 ? cell.0 : cell.0 + cell.1 }
            .joined(separator: "  ")
    }.joined(separator: "\n")
}

/// A byte count for people: `812 B`, `64 KiB`, `3.2 MiB`.
func bytes(_ count: Int64) -> String { SizeText.human(count) }
func bytes(_ count: Int) -> String { SizeText.human(Int64(count)) }

/// An ISO time as when it was, both ways: `2026-12-08 10:04:31 (3m ago)`; UTC, as netd keeps it.
func when(_ iso: String, now: Date = Date()) -> String {
    guard let date = Timestamp.parse(iso) else { return iso }
    return shortTime(iso) + " (" + ago(date, now: now) + ")"
}

/// How long ago an ISO time was; `?` when it is not one.
func ago(_ iso: String) -> String {
    Timestamp.parse(iso).map { ago($0) } ?? "?"
}

/// `just now`, `42s ago`, `3m ago`, `2h ago`, `5d ago`.
func ago(_ date: Date, now: Date = Date()) -> String {
    let seconds = Int(now.timeIntervalSince(date))
    switch seconds {
    case ..<1: return "just now"
    case ..<60: return "\(seconds)s ago"
    case ..<3600: return "\(seconds / 60)m ago"
    case ..<86_400: return "\(seconds / 3600)h ago"
    default: return "\(seconds / 86_400)d ago"
    }
}
