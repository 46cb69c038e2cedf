import Foundation

/// Metrics, distributions, plots and reports for DAFAR and its baselines.
///
/// The module follows the reporting practice of Carlini & Wagner (2017) and
/// Carlini et al. ("On evaluating adversarial robustness"): every rate carries
/// its counts and a Wilson 95 % interval (`Rate`), detection is counted
/// separately on successful and failed adversarial examples, detectors are
/// compared at a false-positive rate fixed on clean data (`OperatingPoint`) and
/// by ROC-AUC (`ROCCurve`). The convention throughout is that a higher score is
/// more anomalous and an input is flagged when `score > threshold`.
///
/// Reports (`Report`) are written as `report.md`, `results.json` and SVG
/// figures (`LineChart`, `DensityChart`, `BarChart`), each file atomically.
public enum EvaluationFormat {
    /// Version of the `results.json` layout written by `Report`.
    public static let version = "1"
}

/// An error a user of the evaluation layer can act on.
public enum EvaluationError: Error, Equatable, LocalizedError {
    /// A figure or output file name is not a plain file name with the expected extension.
    case invalidFileName(String, reason: String)
    /// Two figures in one report would be written to the same file.
    case duplicateFileName(String)
    /// A file could not be written.
    case writeFailed(path: String, reason: String)

    /// A sentence that says what went wrong and what to do.
    public var errorDescription: String? {
        switch self {
        case .invalidFileName(let name, let reason):
            return "The file name \"\(name)\" cannot be used: \(reason)."
        case .duplicateFileName(let name):
            return "Two figures of the report are named \"\(name)\"; give each figure its own file name."
        case .writeFailed(let path, let reason):
            return "Could not write \(path): \(reason)."
        }
    }
}
