import Foundation

/// The height of one bar, optionally with an interval drawn as an error bar.
public struct BarValue: Equatable, Sendable {
    /// Bar height; a non-finite value draws no bar.
    public var value: Double
    /// Optional interval (e.g. a Wilson 95 % interval).
    public var interval: ClosedRange<Double>?

    /// A bar with an optional error bar.
    public init(_ value: Double, interval: ClosedRange<Double>? = nil) {
        self.value = value
        self.interval = interval
    }

    /// A rate with its Wilson 95 % interval (an empty rate draws no bar).
    public init(_ rate: Rate) {
        self.init(rate.value, interval: rate.isEmpty ? nil : rate.wilson95)
    }
}

/// One series of a grouped bar chart (e.g. one detector), keyed by category name
/// so that values cannot drift out of step with the categories.
public struct BarSeries: Equatable, Sendable {
    /// Legend name.
    public var name: String
    /// Bar per category name; a missing category draws no bar.
    public var values: [String: BarValue]

    /// A named series.
    public init(name: String, values: [String: BarValue]) {
        self.name = name
        self.values = values
    }
}

/// Grouped bar chart: one group per category (e.g. attack), one bar per series
/// (e.g. detector) inside each group, like the paper's Fig. 7.
public struct BarChart: SVGChart, Sendable {
    /// Chart title.
    public var title: String
    /// Label under the groups (e.g. `attack`).
    public var xLabel: String
    /// Label of the value axis.
    public var yLabel: String
    /// Group names, left to right.
    public var categories: [String]
    /// Series, drawn in order inside each group with colours from `PlotPalette`.
    public var series: [BarSeries]
    /// Fixed value range; default: from 0 (or the smallest negative value) to the largest value.
    public var yRange: ClosedRange<Double>?
    /// Tick format of the value axis.
    public var yFormat: AxisFormat

    /// A grouped bar chart.
    public init(
        title: String, xLabel: String, yLabel: String, categories: [String], series: [BarSeries],
        yRange: ClosedRange<Double>? = nil, yFormat: AxisFormat = .number
    ) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.categories = categories
        self.series = series
        self.yRange = yRange
        self.yFormat = yFormat
    }

    /// The SVG document.
    public func svg() -> String {
        let bars = series.flatMap { $0.values.values }.filter(\.value.isFinite)
        let extents = bars.map(\.value) + bars.compactMap(\.interval).flatMap { [$0.lowerBound, $0.upperBound] }
        let yScale = yRange.map { AxisScale(fixed: $0) } ?? AxisScale(covering: extents, including: [0])
        let frame = PlotFrame(
            x: AxisScale(fixed: 0...Double(max(categories.count, 1))), y: yScale,
            legend: !series.isEmpty)
        var canvas = SVGCanvas(width: PlotFrame.width, height: PlotFrame.height)
        frame.drawFrame(
            on: &canvas, title: title, xLabel: xLabel, yLabel: yLabel, xFormat: .number,
            yFormat: yFormat, categoryAxis: true)
        let baseline = frame.py(min(max(0, yScale.lower), yScale.upper))
        let groupWidth = frame.plotWidth / Double(max(categories.count, 1))
        let barWidth = groupWidth * 0.8 / Double(max(series.count, 1))
        let bottomY = PlotFrame.top + frame.plotHeight
        canvas.append("<g clip-path=\"url(#\(PlotFrame.clipID))\">")
        for (group, category) in categories.enumerated() {
            let groupLeft = PlotFrame.left + Double(group) * groupWidth + groupWidth * 0.1
            for (index, item) in series.enumerated() {
                guard let bar = item.values[category], bar.value.isFinite else { continue }
                let x = groupLeft + Double(index) * barWidth
                let top = frame.py(bar.value)
                canvas.rect(x + 1, min(top, baseline), barWidth - 2, abs(baseline - top), fill: PlotPalette.color(index))
                if let interval = bar.interval, interval.lowerBound.isFinite, interval.upperBound.isFinite {
                    let (center, low, high) = (x + barWidth / 2, frame.py(interval.lowerBound), frame.py(interval.upperBound))
                    canvas.line(center, low, center, high, stroke: "#333333", width: 1.2)
                    canvas.line(center - 3, low, center + 3, low, stroke: "#333333", width: 1.2)
                    canvas.line(center - 3, high, center + 3, high, stroke: "#333333", width: 1.2)
                }
            }
        }
        canvas.append("</g>")
        for (group, category) in categories.enumerated() {
            canvas.text(category, x: PlotFrame.left + (Double(group) + 0.5) * groupWidth, y: bottomY + 18, size: 11)
        }
        frame.drawLegend(
            on: &canvas,
            entries: series.enumerated().map { index, item in
                (name: item.name, style: LegendStyle.box(color: PlotPalette.color(index)))
            })
        return canvas.document(title: title)
    }
}
