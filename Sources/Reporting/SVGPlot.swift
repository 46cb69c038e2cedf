import Foundation

/// A chart that renders itself as a standalone SVG document.
public protocol SVGChart: Sendable {
    /// The chart's title (also the SVG `<title>`).
    var title: String { get }
    /// The complete SVG document: well-formed XML, finite coordinates only.
    func svg() -> String
}

/// One data point of a line chart, optionally with an interval drawn as an error bar.
public struct PlotPoint: Equatable, Sendable {
    /// Horizontal value (e.g. attack intensity, false-positive rate).
    public var x: Double
    /// Vertical value; a non-finite value leaves a gap in the line.
    public var y: Double
    /// Optional vertical interval (e.g. a Wilson 95 % interval).
    public var yInterval: ClosedRange<Double>?

    /// A point with an optional error bar.
    public init(x: Double, y: Double, yInterval: ClosedRange<Double>? = nil) {
        self.x = x
        self.y = y
        self.yInterval = yInterval
    }

    /// A rate at `x` with its Wilson 95 % interval as the error bar (an empty rate leaves a gap).
    public init(x: Double, rate: Rate) {
        self.init(x: x, y: rate.value, yInterval: rate.isEmpty ? nil : rate.wilson95)
    }
}

/// A named series of a line chart.
public struct PlotSeries: Equatable, Sendable {
    /// Legend name.
    public var name: String
    /// Points in drawing order.
    public var points: [PlotPoint]
    /// Draw a marker at every point (off for dense curves such as densities and ROC).
    public var showsMarkers: Bool
    /// Draw the line dashed.
    public var dashed: Bool
    /// Palette entry of the colour; nil: the series' position (give two series the same
    /// index to pair them, e.g. a solid attack line and its dashed control).
    public var colorIndex: Int?

    /// A series; markers on by default.
    public init(name: String, points: [PlotPoint], showsMarkers: Bool = true, dashed: Bool = false, colorIndex: Int? = nil) {
        self.name = name
        self.points = points
        self.showsMarkers = showsMarkers
        self.dashed = dashed
        self.colorIndex = colorIndex
    }
}

/// A labelled vertical line (a threshold on a density plot).
public struct ReferenceLine: Equatable, Sendable {
    /// Position on the x axis.
    public var x: Double
    /// Legend label (e.g. `threshold 23.3`).
    public var label: String

    /// A vertical line at `x`.
    public init(x: Double, label: String) {
        self.x = x
        self.label = label
    }
}

/// Line chart with several named series, markers, optional error bars, a legend,
/// optional vertical reference lines and an optional diagonal (for ROC curves).
/// Used for detection rate or accuracy versus attack intensity (Fig. 6, 8) and ROC curves.
public struct LineChart: SVGChart, Sendable {
    /// Chart title.
    public var title: String
    /// Label of the horizontal axis.
    public var xLabel: String
    /// Label of the vertical axis.
    public var yLabel: String
    /// The series, drawn in order with colours and markers from `PlotPalette`.
    public var series: [PlotSeries]
    /// Fixed horizontal range; default: covers the data with nice ticks.
    public var xRange: ClosedRange<Double>?
    /// Fixed vertical range; default: covers the data with nice ticks.
    public var yRange: ClosedRange<Double>?
    /// Tick format of the horizontal axis.
    public var xFormat: AxisFormat
    /// Tick format of the vertical axis.
    public var yFormat: AxisFormat
    /// Draw the dashed diagonal y = x (chance level of a ROC curve).
    public var showsDiagonal: Bool
    /// Vertical reference lines, drawn dashed and listed in the legend.
    public var referenceLines: [ReferenceLine]

    /// A line chart; every option after `series` has a default.
    public init(
        title: String, xLabel: String, yLabel: String, series: [PlotSeries],
        xRange: ClosedRange<Double>? = nil, yRange: ClosedRange<Double>? = nil,
        xFormat: AxisFormat = .number, yFormat: AxisFormat = .number,
        showsDiagonal: Bool = false, referenceLines: [ReferenceLine] = []
    ) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
        self.xRange = xRange
        self.yRange = yRange
        self.xFormat = xFormat
        self.yFormat = yFormat
        self.showsDiagonal = showsDiagonal
        self.referenceLines = referenceLines
    }

    /// The SVG document.
    public func svg() -> String {
        let finite = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        let intervals = finite.compactMap(\.yInterval).flatMap { [$0.lowerBound, $0.upperBound] }
        let xScale =
            xRange.map { AxisScale(fixed: $0) }
            ?? AxisScale(covering: finite.map(\.x), including: referenceLines.map(\.x))
        let yScale = yRange.map { AxisScale(fixed: $0) } ?? AxisScale(covering: finite.map(\.y), including: intervals)
        let hasLegend = !series.isEmpty || !referenceLines.isEmpty
        let frame = PlotFrame(x: xScale, y: yScale, legend: hasLegend)
        var canvas = SVGCanvas(width: PlotFrame.width, height: PlotFrame.height)
        frame.drawFrame(on: &canvas, title: title, xLabel: xLabel, yLabel: yLabel, xFormat: xFormat, yFormat: yFormat)
        let clip = " clip-path=\"url(#\(PlotFrame.clipID))\""
        canvas.append("<g\(clip)>")
        if showsDiagonal {
            canvas.line(
                frame.px(xScale.lower), frame.py(xScale.lower), frame.px(xScale.upper), frame.py(xScale.upper),
                stroke: "#888888", dash: "4 4")
        }
        for line in referenceLines where line.x.isFinite {
            canvas.line(
                frame.px(line.x), frame.py(yScale.lower), frame.px(line.x), frame.py(yScale.upper),
                stroke: PlotPalette.reference, width: 2, dash: "6 3")
        }
        for (index, item) in series.enumerated() {
            let color = PlotPalette.color(item.colorIndex ?? index)
            // A non-finite point splits the line into separate pieces.
            var pieces: [[(Double, Double)]] = [[]]
            for point in item.points {
                if point.x.isFinite && point.y.isFinite {
                    pieces[pieces.count - 1].append((frame.px(point.x), frame.py(point.y)))
                } else if !pieces[pieces.count - 1].isEmpty {
                    pieces.append([])
                }
            }
            for piece in pieces { canvas.polyline(piece, stroke: color, dash: item.dashed ? "7 4" : nil) }
            for point in item.points where point.x.isFinite && point.y.isFinite {
                if let interval = point.yInterval, interval.lowerBound.isFinite, interval.upperBound.isFinite {
                    let (x, low, high) = (frame.px(point.x), frame.py(interval.lowerBound), frame.py(interval.upperBound))
                    canvas.line(x, low, x, high, stroke: color, width: 1.2)
                    canvas.line(x - 3, low, x + 3, low, stroke: color, width: 1.2)
                    canvas.line(x - 3, high, x + 3, high, stroke: color, width: 1.2)
                }
                // A lone point is invisible without a marker, so it always gets one.
                if item.showsMarkers || item.points.count == 1 {
                    canvas.marker(shape: index, x: frame.px(point.x), y: frame.py(point.y), color: color)
                }
            }
        }
        canvas.append("</g>")
        let entries =
            series.enumerated().map { index, item in
                (
                    name: item.name,
                    style: LegendStyle.line(
                        color: PlotPalette.color(item.colorIndex ?? index),
                        marker: item.showsMarkers ? index : nil,
                        dash: item.dashed ? "7 4" : nil)
                )
            }
            + referenceLines.map {
                (
                    name: $0.label,
                    style: LegendStyle.line(
                        color: PlotPalette.reference, marker: nil,
                        dash: "6 3")
                )
            }
        frame.drawLegend(on: &canvas, entries: entries)
        return canvas.document(title: title)
    }
}

/// Score samples of one group (clean inputs, or one attack at one intensity) for a density chart.
public struct DensitySeries: Equatable, Sendable {
    /// Legend name (e.g. `clean`, `FGSM ε=0.1`).
    public var name: String
    /// The scores.
    public var samples: [Double]

    /// A named sample set.
    public init<T: BinaryFloatingPoint>(name: String, samples: [T]) {
        self.name = name
        self.samples = samples.map(Double.init)
    }
}

/// Proportion-density curves of several score distributions with threshold lines,
/// like the paper's Fig. 4 (reconstruction distances) and Fig. 5 (anomaly scores).
/// Each curve is a Gaussian KDE (`KernelDensity`, Silverman bandwidth) on a shared grid.
public struct DensityChart: SVGChart, Sendable {
    /// Chart title.
    public var title: String
    /// Label of the horizontal axis (the score).
    public var xLabel: String
    /// The distributions.
    public var series: [DensitySeries]
    /// Thresholds drawn as vertical lines.
    public var thresholds: [ReferenceLine]
    /// Number of grid points per curve.
    public var gridPoints: Int

    /// A density chart.
    public init(
        title: String, xLabel: String, series: [DensitySeries], thresholds: [ReferenceLine] = [],
        gridPoints: Int = 256
    ) {
        precondition(gridPoints > 1, "DensityChart: gridPoints must be > 1, got \(gridPoints)")
        self.title = title
        self.xLabel = xLabel
        self.series = series
        self.thresholds = thresholds
        self.gridPoints = gridPoints
    }

    /// The curves as a line chart (grid shared by all series, covering the thresholds).
    public var lineChart: LineChart {
        let estimates = series.map { KernelDensity(samples: $0.samples) }
        var grid = KernelDensity.grid(covering: estimates, count: gridPoints)
        let finiteThresholds = thresholds.map(\.x).filter(\.isFinite)
        if !estimates.allSatisfy({ $0.samples.isEmpty }), let low = grid.first, let high = grid.last {
            grid = KernelDensity.grid(
                from: min(low, finiteThresholds.min() ?? low),
                to: max(high, finiteThresholds.max() ?? high), count: gridPoints)
        }
        let curves = zip(series, estimates).map { item, estimate in
            PlotSeries(
                name: "\(item.name) (n=\(estimate.samples.count))",
                points: estimate.samples.isEmpty
                    ? []
                    : zip(grid, estimate.evaluate(on: grid)).map {
                        PlotPoint(x: $0, y: $1)
                    },
                showsMarkers: false)
        }
        let peak = curves.flatMap(\.points).map(\.y).max() ?? 0
        return LineChart(
            title: title, xLabel: xLabel, yLabel: "proportion density", series: curves,
            yRange: peak > 0 && peak.isFinite ? 0...(peak * 1.05) : nil, referenceLines: thresholds)
    }

    /// The SVG document.
    public func svg() -> String { lineChart.svg() }
}
