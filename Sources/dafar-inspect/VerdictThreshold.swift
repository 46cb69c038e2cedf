import DAFAR
import Tensors
import ToolkitCore

/// Which threshold the verdicts of `dafar-inspect` use (`--threshold`).
enum VerdictThreshold: Equatable, CustomStringConvertible {
    /// The detector file's active threshold (the default).
    case active
    /// alpha = mean + z * std of clean scores.
    case alpha
    /// The threshold that gave `rate` false positives on held-out clean images (0.01, 0.05).
    case falsePositiveRate(Double)
    /// A number given by the user.
    case value(Float)

    /// Parses `active`, `alpha`, `1%`, `5%` or a non-negative number; nil for anything else.
    init?(_ text: String) {
        switch text.lowercased() {
        case "active": self = .active
        case "alpha": self = .alpha
        case "1%", "fpr1": self = .falsePositiveRate(0.01)
        case "5%", "fpr5": self = .falsePositiveRate(0.05)
        default:
            guard let number = Float(text), number.isFinite, number >= 0 else { return nil }
            self = .value(number)
        }
    }

    var description: String {
        switch self {
        case .active: return "active"
        case .alpha: return "alpha"
        case .falsePositiveRate(let rate): return "\(Int((rate * 100).rounded())) %"
        case .value(let number): return "\(number)"
        }
    }

    /// The threshold in the detector's calibration.
    /// - Throws: a data error (65) when the file holds no threshold at that rate.
    func resolve(_ calibration: AnomalyDetector.Calibration, detectorPath: String) throws -> Float {
        switch self {
        case .active: return calibration.active
        case .alpha: return calibration.alpha
        case .value(let number): return number
        case .falsePositiveRate(let rate):
            guard let threshold = calibration.thresholdsAtRate[rate] else {
                let held = calibration.thresholdsAtRate.keys.sorted().map { "\(Int(($0 * 100).rounded())) %" }
                throw InspectError(
                    "detector '\(detectorPath)' holds no threshold at \(description) false positives (it holds: \(held.isEmpty ? "none" : held.joined(separator: ", "))); use --threshold alpha or a number"
                )
            }
            return threshold
        }
    }
}

/// A problem `dafar-inspect` itself finds, with its sysexits status (65 unless said).
struct InspectError: ToolkitError {
    let description: String
    let cause: ErrorCause

    init(_ description: String, cause: ErrorCause = .invalidData) {
        self.description = description
        self.cause = cause
    }
}
