import Tensors
import XCTest
#if canImport(FoundationXML)
    import FoundationXML
#endif
@testable import Reporting
import Evaluation

final class SVGPlotTests: XCTestCase {
    /// Parses the document, fails on malformed XML or a NaN/infinite number, and returns its element names.
    @discardableResult
    private func assertWellFormed(_ svg: String, _ label: String, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        let parser = XMLParser(data: Data(svg.utf8))
        let collector = ElementCollector()
        parser.delegate = collector
        XCTAssertTrue(
            parser.parse(), "\(label): not well-formed XML: \(String(describing: parser.parserError))",
            file: file, line: line)
        for bad in ["NaN", "nan", "inf"] {
            XCTAssertFalse(svg.contains(bad), "\(label): contains \"\(bad)\"", file: file, line: line)
        }
        XCTAssertEqual(collector.elements.first, "svg", "\(label): root element", file: file, line: line)
        return collector.elements
    }

    private let series = [
        PlotSeries(name: "DAFAR", points: [0.05, 0.1, 0.2, 0.3].map { PlotPoint(x: $0, rate: Rate(Int($0 * 300), of: 100)) }),
        PlotSeries(
            name: "MagNet <&> \"quoted\"",
            points: [
                PlotPoint(x: 0.05, y: 0.4), PlotPoint(x: 0.1, y: 0.5), PlotPoint(x: 0.15, y: .nan),
                PlotPoint(x: 0.2, y: 0.7), PlotPoint(x: 0.3, y: 0.9)
            ], dashed: true)
    ]

    func testLineChartIsWellFormedAndEscapesText() {
        let chart = LineChart(
            title: "Detection vs ε <FGSM>", xLabel: "ε", yLabel: "detection rate", series: series,
            yRange: 0...1, yFormat: .percent)
        let svg = chart.svg()
        let elements = assertWellFormed(svg, "line chart")
        XCTAssertTrue(svg.contains("MagNet &lt;&amp;&gt; &quot;quoted&quot;"), "series names are escaped")
        XCTAssertEqual(elements.filter { $0 == "polyline" }.count, 3, "the NaN point splits the second line in two")
        XCTAssertTrue(svg.contains(">100 %<"), "percent ticks")
    }

    func testLineChartEdgeCases() {
        let cases: [(String, [PlotSeries])] = [
            ("no series", []),
            ("empty series", [PlotSeries(name: "empty", points: [])]),
            ("one point", [PlotSeries(name: "single", points: [PlotPoint(x: 0.3, y: 0.5)], showsMarkers: false)]),
            ("all equal", [PlotSeries(name: "flat", points: (0..<5).map { _ in PlotPoint(x: 2, y: 2) })]),
            ("zeros", [PlotSeries(name: "zero", points: [PlotPoint(x: 0, y: 0), PlotPoint(x: 0, y: 0)])]),
            ("only non-finite", [PlotSeries(name: "gaps", points: [PlotPoint(x: .nan, y: 1), PlotPoint(x: 1, y: .infinity)])]),
            ("empty rates", [PlotSeries(name: "0/0", points: [PlotPoint(x: 1, rate: Rate(0, of: 0))])]),
            ("huge", [PlotSeries(name: "big", points: [PlotPoint(x: 1e9, y: 1e12), PlotPoint(x: 2e9, y: 3e12)])])
        ]
        for (label, series) in cases {
            let svg = LineChart(title: label, xLabel: "x", yLabel: "y", series: series).svg()
            let elements = assertWellFormed(svg, label)
            if label == "one point" {
                XCTAssertTrue(elements.contains("circle"), "a lone point gets a marker even without markers")
            }
        }
        assertWellFormed(
            LineChart(title: "bad range", xLabel: "x", yLabel: "y", series: series, xRange: 1...1).svg(),
            "degenerate fixed range")
    }

    func testROCChartHasDiagonalAndAUCInLegend() throws {
        let curve = try XCTUnwrap(ROCCurve(cleanScores: [1.0, 2, 3], adversarialScores: [2.0, 3, 4]))
        let svg = LineChart.roc(title: "ROC", curves: [(name: "DAFAR", curve: curve)]).svg()
        assertWellFormed(svg, "roc")
        XCTAssertTrue(svg.contains("DAFAR (AUC 0.778)"))
        XCTAssertTrue(svg.contains("stroke-dasharray=\"4 4\""), "chance diagonal")
    }

    func testDensityChartWithThresholdAndEdgeCases() {
        var generator = SeededGenerator(seed: 5)
        let clean = (0..<200).map { _ in Double(generator.next() % 100) / 10 }
        let attacked = (0..<200).map { _ in 30 + Double(generator.next() % 100) / 10 }
        let full = DensityChart(
            title: "Anomaly scores", xLabel: "score",
            series: [
                DensitySeries(name: "clean", samples: clean),
                DensitySeries(name: "FGSM ε=0.3", samples: attacked)
            ],
            thresholds: [ReferenceLine(x: 23.3, label: "threshold 23.3")])
        let svg = full.svg()
        assertWellFormed(svg, "density")
        XCTAssertTrue(svg.contains("threshold 23.3") && svg.contains("clean (n=200)"))
        XCTAssertEqual(full.lineChart.series[0].points.count, 256)
        let edgeCases: [(String, [DensitySeries], [ReferenceLine])] = [
            ("no series", [], []),
            ("empty samples", [DensitySeries(name: "none", samples: [Double]())], [ReferenceLine(x: 1, label: "t")]),
            ("one sample", [DensitySeries(name: "one", samples: [2.0])], []),
            ("identical", [DensitySeries(name: "same", samples: [Float](repeating: 0, count: 10))], [ReferenceLine(x: 0, label: "t")])
        ]
        for (label, series, thresholds) in edgeCases {
            assertWellFormed(DensityChart(title: label, xLabel: "score", series: series, thresholds: thresholds).svg(), label)
        }
    }

    func testGroupedBarChartAndEdgeCases() {
        let detectors = [
            BarSeries(
                name: "DAFAR",
                values: [
                    "FGSM": BarValue(Rate(99, of: 100)), "PGD": BarValue(Rate(97, of: 100)),
                    "CW2": BarValue(Rate(0, of: 0))
                ]),
            BarSeries(name: "Feature Squeezing", values: ["FGSM": BarValue(0.6), "JSMA": BarValue(0.8)])
        ]
        let chart = BarChart(
            title: "Detection per attack", xLabel: "attack", yLabel: "detection rate",
            categories: ["FGSM", "PGD", "CW2", "JSMA"], series: detectors, yRange: 0...1, yFormat: .percent)
        let elements = assertWellFormed(chart.svg(), "bars")
        // 4 bars + 2 legend boxes + background + frame + clip rect.
        XCTAssertEqual(elements.filter { $0 == "rect" }.count, 9)
        let edgeCases: [(String, [String], [BarSeries])] = [
            ("nothing", [], []),
            ("no series", ["FGSM"], []),
            ("one bar", ["FGSM"], [BarSeries(name: "d", values: ["FGSM": BarValue(0.5)])]),
            ("all zero", ["a", "b"], [BarSeries(name: "d", values: ["a": BarValue(0), "b": BarValue(0)])]),
            ("negative and undefined", ["a", "b"], [BarSeries(name: "d", values: ["a": BarValue(-2), "b": BarValue(.nan)])])
        ]
        for (label, categories, series) in edgeCases {
            assertWellFormed(BarChart(title: label, xLabel: "x", yLabel: "y", categories: categories, series: series).svg(), label)
        }
    }

    func testNiceTicks() {
        let scale = AxisScale(covering: [0.03, 0.97])
        XCTAssertEqual(scale.lower, 0)
        XCTAssertEqual(scale.upper, 1)
        XCTAssertEqual(scale.ticks.count, 6)
        for (tick, expected) in zip(scale.ticks, [0, 0.2, 0.4, 0.6, 0.8, 1]) { XCTAssertEqual(tick, expected, accuracy: 1e-12) }
        XCTAssertEqual(scale.ticks.map { scale.label($0, format: .number) }, ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"])
        XCTAssertEqual(scale.label(0.4, format: .percent), "40 %")
        let flat = AxisScale(covering: [5, 5])
        XCTAssertLessThan(flat.lower, 5)
        XCTAssertGreaterThan(flat.upper, 5)
        XCTAssertEqual(AxisScale(covering: []).ticks.first, 0)
    }
}

private final class ElementCollector: NSObject, XMLParserDelegate {
    var elements: [String] = []
    func parser(
        _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
        qualifiedName: String?, attributes: [String: String] = [:]
    ) {
        elements.append(elementName)
    }
}

/// The image grid draws every pixel in its colour, with the most common colour as one background.
final class ImageGridTests: XCTestCase {
    func testPixelsBackgroundAndSignedImages() throws {
        let grey = GridImage(channels: 1, height: 2, width: 2, pixels: [0, 0, 0, 1])
        let rgb = GridImage(channels: 3, height: 1, width: 2, pixels: [1, 0, 0, 0.5, 0, 0])
        let signed = GridImage(channels: 1, height: 1, width: 2, pixels: [-1, 0], signed: true)
        XCTAssertEqual(grey.color(y: 1, x: 1), "#ffffff")
        XCTAssertEqual(rgb.color(y: 0, x: 0), "#ff0000")
        XCTAssertEqual(rgb.color(y: 0, x: 1), "#008000")
        XCTAssertEqual(signed.color(y: 0, x: 0), "#000000")
        XCTAssertEqual(signed.color(y: 0, x: 1), "#808080")
        let svg = ImageGrid(title: "grid <&>", columns: ["a", "b"], rows: [(caption: "row", images: [grey, grey])]).svg()
        XCTAssertTrue(svg.contains("grid &lt;&amp;&gt;"), "the title is escaped")
        XCTAssertEqual(svg.components(separatedBy: "fill=\"#ffffff\"").count - 1, 2, "one white pixel per image, drawn over its background")
        XCTAssertEqual(svg.components(separatedBy: "fill=\"#000000\"").count - 1, 2, "one black background per image")
        let document = try XMLDocument(data: Data(svg.utf8))
        XCTAssertEqual(document.rootElement()?.name, "svg")
    }
}
