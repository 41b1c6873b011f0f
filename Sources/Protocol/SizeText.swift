/// Byte counts written the short way: `512`, `64k`, `1m`, `2g` (powers of 1024; `kb`, `KiB` and
/// the like read the same), as netctl's size arguments take them.
public enum SizeText {
    /// Bytes, or nil when `text` is not such a size.
    public static func bytes(_ text: String) -> Int? {
        let lower = text.lowercased()
        let digits = lower.prefix(while: { $0.isASCII && ($0.isNumber || $0 == ".") })
        guard !digits.isEmpty, let value = Double(digits), value >= 0 else { return nil }
        let scales: [String: Double] = [
            "": 1, "b": 1,
            "k": 1024, "kb": 1024, "kib": 1024,
            "m": 1_048_576, "mb": 1_048_576, "mib": 1_048_576,
            "g": 1_073_741_824, "gb": 1_073_741_824, "gib": 1_073_741_824,
        ]
        guard let scale = scales[String(lower.dropFirst(digits.count))] else { return nil }
        let total = (value * scale).rounded()
        guard total <= Double(Int.max / 2) else { return nil }
        return Int(total)
    }

    /// `1.5 KiB`, `64 KiB`, `3.2 MiB`, `812 B`: a byte count for people.
    public static func human(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 { return "\(bytes) B" }
        let tenths = Int((value * 10).rounded())
        let text = tenths % 10 == 0 || value >= 100 ? String(Int(value.rounded())) : "\(tenths / 10).\(tenths % 10)"
        return "\(text) \(units[unit])"
    }
}
