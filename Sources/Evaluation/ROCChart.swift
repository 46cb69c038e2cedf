import Foundation
import Reporting

extension LineChart {
    /// ROC curves of several detectors on the unit square with the chance diagonal;
    /// each legend entry carries its AUC.
    public static func roc(title: String, curves: [(name: String, curve: ROCCurve)]) -> LineChart {
        let series = curves.map { name, curve in
            PlotSeries(
                name: "\(name) (AUC \(String(format: "%.3f", curve.auc)))",
                points: curve.points.map { PlotPoint(x: $0.falsePositiveRate, y: $0.truePositiveRate) },
                showsMarkers: false)
        }
        return LineChart(
            title: title, xLabel: "false-positive rate", yLabel: "true-positive rate", series: series,
            xRange: 0...1, yRange: 0...1, showsDiagonal: true)
    }
}
