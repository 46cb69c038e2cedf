import Foundation

/// How axis tick labels are written.
public enum AxisFormat: Sendable {
    /// Plain numbers with as many decimals as the tick step needs.
    case number
    /// Fractions shown as percentages (`0.25` -> `25 %`).
    case percent
}

/// Colours and marker shapes of the plots: the Okabe-Ito palette, safe for the
/// common forms of colour blindness; every series also gets its own marker shape.
public enum PlotPalette {
    /// Okabe-Ito colours, in the order series use them (yellow, the weakest on white, last).
    public static let colors = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442"]
    /// Colour of series number `index` (cycles).
    public static func color(_ index: Int) -> String { colors[index % colors.count] }
    /// Colour of threshold and reference lines (reddish purple, like the paper's violet line).
    static let reference = "#CC79A7"
}

/// A linear axis: its range and its tick values at "nice" steps (1, 2 or 5 × 10^k).
struct AxisScale {
    let lower: Double
    let upper: Double
    let ticks: [Double]
    let step: Double

    /// A range that covers the data and ends on nice ticks (Heckbert, Graphics Gems 1990).
    /// Empty or non-finite data gives `0...1`; identical values are widened.
    init(covering values: [Double], including extra: [Double] = [], targetTicks: Int = 6) {
        let finite = (values + extra).filter(\.isFinite)
        var low = finite.min() ?? 0, high = finite.max() ?? 1
        if high - low <= 1e-12 * max(abs(low), abs(high)) {
            let pad = low == 0 ? 1 : abs(low) * 0.1
            (low, high) = (low - pad, high + pad)
        }
        let step = AxisScale.niceNumber(AxisScale.niceNumber(high - low, round: false) / Double(targetTicks - 1), round: true)
        self.init(fixed: (floor(low / step) * step)...(ceil(high / step) * step), step: step)
    }

    /// Exactly `range`, with nice ticks inside it (`range` widened when empty).
    init(fixed range: ClosedRange<Double>, targetTicks: Int = 6) {
        guard range.lowerBound.isFinite, range.upperBound.isFinite, range.upperBound > range.lowerBound else {
            self.init(covering: [range.lowerBound, range.upperBound], targetTicks: targetTicks)
            return
        }
        let span = range.upperBound - range.lowerBound
        self.init(
            fixed: range,
            step: AxisScale.niceNumber(
                AxisScale.niceNumber(span, round: false)
                    / Double(targetTicks - 1), round: true))
    }

    private init(fixed range: ClosedRange<Double>, step: Double) {
        lower = range.lowerBound
        upper = range.upperBound
        self.step = step
        let first = ceil(lower / step - 1e-9), last = floor(upper / step + 1e-9)
        if step > 0, step.isFinite, last - first < 100 {
            ticks = stride(from: first, through: last, by: 1).map { $0 * step == 0 ? 0 : $0 * step }
        } else {
            ticks = [lower, upper]
        }
    }

    /// The nice number (1, 2, 5 or 10 × 10^k) close to `x`, rounded or at least `x`.
    static func niceNumber(_ x: Double, round: Bool) -> Double {
        guard x > 0, x.isFinite else { return 1 }
        let exponent = floor(log10(x))
        let fraction = x / pow(10, exponent)
        let nice: Double
        if round {
            nice = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10
        } else {
            nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10
        }
        return nice * pow(10, exponent)
    }

    /// A tick label with the decimals the step needs.
    func label(_ value: Double, format: AxisFormat) -> String {
        let scaled = format == .percent ? value * 100 : value
        let scaledStep = format == .percent ? step * 100 : step
        let suffix = format == .percent ? " %" : ""
        if abs(scaled) >= 1e6 || (scaled != 0 && abs(scaled) < 1e-4) { return String(format: "%.3g", scaled) + suffix }
        let decimals = max(0, min(6, Int(-floor(log10(scaledStep) + 1e-9))))
        return String(format: "%.\(decimals)f", scaled) + suffix
    }
}

/// Builds the text of one SVG document: escaped text, finite coordinates only.
struct SVGCanvas {
    let width: Double
    let height: Double
    private(set) var body: [String] = []

    init(width: Double, height: Double) {
        self.width = width
        self.height = height
    }

    /// XML-escapes text for element content and attribute values.
    static func escape(_ text: String) -> String {
        var escaped = ""
        for character in text.unicodeScalars {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&apos;"
            // Control characters other than tab/newline are not allowed in XML 1.0.
            case _ where character.value < 0x20 && character != "\t" && character != "\n": escaped += " "
            default: escaped.unicodeScalars.append(character)
            }
        }
        return escaped
    }

    /// A coordinate with two decimals; a non-finite value (never expected) becomes 0.
    static func number(_ value: Double) -> String {
        value.isFinite ? String(format: "%.2f", value) : "0"
    }

    mutating func append(_ element: String) { body.append(element) }

    mutating func line(
        _ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String,
        width: Double = 1, dash: String? = nil
    ) {
        let n = SVGCanvas.number
        let dashAttribute = dash.map { " stroke-dasharray=\"\($0)\"" } ?? ""
        append(
            "<line x1=\"\(n(x1))\" y1=\"\(n(y1))\" x2=\"\(n(x2))\" y2=\"\(n(y2))\" stroke=\"\(stroke)\" "
                + "stroke-width=\"\(n(width))\"\(dashAttribute)/>")
    }

    mutating func rect(
        _ x: Double, _ y: Double, _ width: Double, _ height: Double, fill: String,
        stroke: String = "none", extra: String = ""
    ) {
        let n = SVGCanvas.number
        append(
            "<rect x=\"\(n(x))\" y=\"\(n(y))\" width=\"\(n(max(0, width)))\" height=\"\(n(max(0, height)))\" "
                + "fill=\"\(fill)\" stroke=\"\(stroke)\"\(extra)/>")
    }

    mutating func text(
        _ content: String, x: Double, y: Double, anchor: String = "middle", size: Double = 12,
        weight: String = "normal", rotate: Bool = false
    ) {
        let n = SVGCanvas.number
        let transform = rotate ? " transform=\"rotate(-90 \(n(x)) \(n(y)))\"" : ""
        append(
            "<text x=\"\(n(x))\" y=\"\(n(y))\" text-anchor=\"\(anchor)\" font-size=\"\(n(size))\" "
                + "font-weight=\"\(weight)\"\(transform)>\(SVGCanvas.escape(content))</text>")
    }

    mutating func polyline(
        _ points: [(Double, Double)], stroke: String, width: Double = 2, dash: String? = nil,
        clip: String? = nil
    ) {
        guard points.count > 1 else { return }
        let list = points.map { "\(SVGCanvas.number($0.0)),\(SVGCanvas.number($0.1))" }.joined(separator: " ")
        let dashAttribute = dash.map { " stroke-dasharray=\"\($0)\"" } ?? ""
        let clipAttribute = clip.map { " clip-path=\"url(#\($0))\"" } ?? ""
        append(
            "<polyline points=\"\(list)\" fill=\"none\" stroke=\"\(stroke)\" stroke-width=\"\(SVGCanvas.number(width))\" "
                + "stroke-linejoin=\"round\"\(dashAttribute)\(clipAttribute)/>")
    }

    /// Marker shape `shape` (circle, square, triangle, diamond, cycling) centred at (x, y).
    mutating func marker(shape: Int, x: Double, y: Double, color: String, size: Double = 4) {
        let n = SVGCanvas.number
        let style = "fill=\"\(color)\" stroke=\"white\" stroke-width=\"0.8\""
        switch shape % 4 {
        case 0: append("<circle cx=\"\(n(x))\" cy=\"\(n(y))\" r=\"\(n(size))\" \(style)/>")
        case 1: rect(x - size, y - size, 2 * size, 2 * size, fill: color, extra: " stroke-width=\"0.8\"")
        case 2:
            append(
                "<polygon points=\"\(n(x)),\(n(y - size * 1.2)) \(n(x - size * 1.1)),\(n(y + size * 0.9)) "
                    + "\(n(x + size * 1.1)),\(n(y + size * 0.9))\" \(style)/>")
        default:
            append(
                "<polygon points=\"\(n(x)),\(n(y - size * 1.3)) \(n(x + size * 1.3)),\(n(y)) "
                    + "\(n(x)),\(n(y + size * 1.3)) \(n(x - size * 1.3)),\(n(y))\" \(style)/>")
        }
    }

    /// The complete document, with a white background and a `<title>`.
    func document(title: String) -> String {
        let n = SVGCanvas.number
        return """
            <?xml version="1.0" encoding="UTF-8"?>
            <svg xmlns="http://www.w3.org/2000/svg" width="\(n(width))" height="\(n(height))" \
            viewBox="0 0 \(n(width)) \(n(height))" font-family="Helvetica, Arial, sans-serif">
            <title>\(SVGCanvas.escape(title))</title>
            <rect x="0" y="0" width="\(n(width))" height="\(n(height))" fill="white"/>
            \(body.joined(separator: "\n"))
            </svg>

            """
    }
}

/// The plot area of a chart with its two scales and the frame around it
/// (title, axes, ticks, grid lines, axis labels and a legend on the right).
struct PlotFrame {
    static let width = 760.0, height = 440.0
    static let left = 76.0, top = 44.0, bottom = 60.0
    let right: Double
    let x: AxisScale
    let y: AxisScale

    init(x: AxisScale, y: AxisScale, legend: Bool) {
        self.x = x
        self.y = y
        right = legend ? 200 : 24
    }

    var plotWidth: Double { PlotFrame.width - PlotFrame.left - right }
    var plotHeight: Double { PlotFrame.height - PlotFrame.top - PlotFrame.bottom }
    static let clipID = "plot-area"

    /// Pixel column of data value `value`.
    func px(_ value: Double) -> Double {
        PlotFrame.left + (value - x.lower) / (x.upper - x.lower) * plotWidth
    }

    /// Pixel row of data value `value` (y grows upwards in data, downwards in SVG).
    func py(_ value: Double) -> Double {
        PlotFrame.top + plotHeight - (value - y.lower) / (y.upper - y.lower) * plotHeight
    }

    /// Title, clip path, grid, ticks, y tick labels and axis labels; x tick labels
    /// unless `categoryAxis` (bar charts label their groups instead).
    func drawFrame(
        on canvas: inout SVGCanvas, title: String, xLabel: String, yLabel: String,
        xFormat: AxisFormat, yFormat: AxisFormat, categoryAxis: Bool = false
    ) {
        let (left, top) = (PlotFrame.left, PlotFrame.top)
        let bottomY = top + plotHeight
        // The clip area extends a marker's size beyond the frame, so points on the border stay whole.
        let pad = 7.0
        canvas.append(
            "<defs><clipPath id=\"\(PlotFrame.clipID)\"><rect x=\"\(SVGCanvas.number(left - pad))\" "
                + "y=\"\(SVGCanvas.number(top - pad))\" width=\"\(SVGCanvas.number(plotWidth + 2 * pad))\" "
                + "height=\"\(SVGCanvas.number(plotHeight + 2 * pad))\"/></clipPath></defs>")
        canvas.text(title, x: left + plotWidth / 2, y: 26, size: 15, weight: "bold")
        for tick in y.ticks {
            canvas.line(left, py(tick), left + plotWidth, py(tick), stroke: "#dddddd")
            canvas.text(y.label(tick, format: yFormat), x: left - 8, y: py(tick) + 4, anchor: "end", size: 11)
        }
        if !categoryAxis {
            for tick in x.ticks {
                canvas.line(px(tick), top, px(tick), bottomY, stroke: "#eeeeee")
                canvas.line(px(tick), bottomY, px(tick), bottomY + 5, stroke: "#333333")
                canvas.text(x.label(tick, format: xFormat), x: px(tick), y: bottomY + 18, size: 11)
            }
        }
        canvas.rect(left, top, plotWidth, plotHeight, fill: "none", stroke: "#333333")
        canvas.text(xLabel, x: left + plotWidth / 2, y: PlotFrame.height - 14, size: 13)
        canvas.text(yLabel, x: 20, y: top + plotHeight / 2, size: 13, rotate: true)
    }

    /// Legend entries to the right of the plot: a line with a marker, or a filled box.
    func drawLegend(on canvas: inout SVGCanvas, entries: [(name: String, style: LegendStyle)]) {
        let x = PlotFrame.left + plotWidth + 16
        for (index, entry) in entries.enumerated() {
            let y = PlotFrame.top + 12 + Double(index) * 20
            switch entry.style {
            case .line(let color, let marker, let dash):
                canvas.line(x, y, x + 26, y, stroke: color, width: 2, dash: dash)
                if let marker { canvas.marker(shape: marker, x: x + 13, y: y, color: color) }
            case .box(let color):
                canvas.rect(x + 4, y - 6, 18, 12, fill: color)
            }
            canvas.text(entry.name, x: x + 34, y: y + 4, anchor: "start", size: 12)
        }
    }
}

/// How a legend entry is drawn.
enum LegendStyle {
    case line(color: String, marker: Int?, dash: String?)
    case box(color: String)
}
