import Foundation

/// A horizontal bar chart drawn on the server as SVG (no script): for each group (a source, a
/// channel, a campaign) a bar per series, each bar labelled with its series' name and number, so
/// colour is never the only signal. One image for assistive technology (`role="img"` with a
/// `<title>` and an `aria-label` saying what it shows); the table beside it has every figure.
/// Text is escaped here, as the chart goes into the page unescaped.
struct BarChart {
    struct Series {
        /// What one of it is called, and several ("call", "calls").
        let one: String
        let name: String
        /// A fill of the stylesheet's palette (an attribute, not a style: the CSP allows no inline style).
        let fill: String

        /// "1 call", "4 calls".
        func count(_ value: UInt64) -> String { "\(value) " + (value == 1 ? one : name) }
    }

    struct Group {
        let label: String
        let values: [UInt64]
    }

    let title: String
    let series: [Series]
    let groups: [Group]

    private static let labelHeight = 20.0, barHeight = 16.0, barGap = 4.0, groupGap = 14.0
    /// The longest bar, as a share of the chart's width: the rest is room for its label. Bars
    /// and label positions are percentages and heights are pixels, so the chart takes the page's
    /// width and its text stays the page's size, on a phone as on a desktop.
    private static let longest = 55.0

    var svg: String {
        let peak = Double(max(1, groups.flatMap(\.values).max() ?? 1))
        var y = 0.0
        var body = ""
        for group in groups {
            y += Self.labelHeight
            body += "<text x=\"0\" y=\"\(Self.number(y - 6))\" class=\"group\">\(Self.escape(Self.shortened(group.label)))</text>"
            for (series, value) in zip(series, group.values) {
                let length = value > 0 ? max(0.5, Double(value) / peak * Self.longest) : 0
                body += "<rect x=\"0\" y=\"\(Self.number(y))\" width=\"\(Self.number(length))%\" height=\"\(Self.number(Self.barHeight))\" fill=\"\(series.fill)\"/>"
                body += "<text x=\"\(Self.number(length + 1))%\" y=\"\(Self.number(y + Self.barHeight - 4))\">\(Self.escape(series.count(value)))</text>"
                y += Self.barHeight + Self.barGap
            }
            y += Self.groupGap
        }
        let summary = title + ": " + groups.map { group in
            group.label + " " + zip(series, group.values).map { $0.count($1) }.joined(separator: ", ")
        }.joined(separator: "; ")
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" role=\"img\" width=\"100%\" height=\"\(Self.number(max(y, 1)))\" "
            + "aria-label=\"\(Self.escape(summary))\"><title>\(Self.escape(title))</title>\(body)</svg>"
    }

    /// A label that fits the chart's width (the table beside it has it whole).
    static func shortened(_ label: String) -> String { label.count > 40 ? String(label.prefix(39)) + "…" : label }

    private static func number(_ value: Double) -> String { String(format: "%.1f", value) }

    /// Text and attribute values for SVG (XML).
    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}
