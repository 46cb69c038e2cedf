import CommandSupport
import Foundation

/// The verdict on one image, as `dafar-inspect` prints it.
struct InspectionRecord {
    /// The file the image came from, as given on the command line.
    var file: String
    /// Position of that file among the command's arguments.
    var filePosition: Int
    /// Position of the image in its file (0 for a PNG).
    var index: Int
    /// F(E(x)).
    var predictedClass: Int
    /// softmax(logits)[predictedClass].
    var probability: Float
    /// The detector file's score (the paper's residual score unless it defines another kind).
    var score: Float
    /// The threshold the verdict used.
    var threshold: Float
    /// score > threshold.
    var adversarial: Bool

    /// One JSON object on one line: file, index, predicted_class, probability, score, threshold, adversarial.
    var jsonLine: String {
        "{\"file\":\(jsonString(file)),\"index\":\(index),\"predicted_class\":\(predictedClass),"
            + "\"probability\":\(jsonNumber(probability)),\"score\":\(jsonNumber(score)),"
            + "\"threshold\":\(jsonNumber(threshold)),\"adversarial\":\(adversarial)}"
    }
}

/// Output formats of `dafar-inspect`.
enum OutputFormat: String, CaseIterable {
    /// One JSON object per image (JSON Lines).
    case json
    /// An aligned table for people.
    case table
}

/// softmax(logits)[k] for one row of logits, computed in Double with the maximum subtracted.
func softmaxProbability(_ logits: ArraySlice<Float>, at k: Int) -> Float {
    let peak = Double(logits.max() ?? 0)
    let total = logits.reduce(0.0) { $0 + exp(Double($1) - peak) }
    return Float(exp(Double(logits[logits.startIndex + k]) - peak) / total)
}

/// The rows of `--format table`: a header, one aligned line per image, and a summary line that
/// names the detector's score kind (`residual`, `decision` or `fused`).
func tableLines(_ records: [InspectionRecord], scoreKind: String) -> [String] {
    let header = ["file", "index", "class", "probability", "score", "threshold", "verdict"]
    let rows = records.map { r in
        [printable(r.file), String(r.index), String(r.predictedClass), String(format: "%.4f", r.probability),
         String(format: "%.4f", r.score), String(format: "%.4f", r.threshold), r.adversarial ? "ADVERSARIAL" : "clean"]
    }
    let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max()! }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { column, cell in
            column == 0 ? cell.padding(toLength: widths[0], withPad: " ", startingAt: 0)
                        : String(repeating: " ", count: widths[column] - cell.count) + cell
        }.joined(separator: "  ")
    }
    let flagged = records.filter(\.adversarial).count
    return [line(header)] + rows.map(line) + ["\(flagged) of \(records.count) images flagged as adversarial (\(scoreKind) score)"]
}

/// `value` as a JSON number (shortest text that reads back the same Float); null when not finite.
func jsonNumber(_ value: Float) -> String { value.isFinite ? "\(value)" : "null" }

/// `text` as a JSON string literal.
func jsonString(_ text: String) -> String {
    var result = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": result += "\\\""
        case "\\": result += "\\\\"
        case "\n": result += "\\n"
        case "\r": result += "\\r"
        case "\t": result += "\\t"
        case _ where scalar.value < 0x20 || scalar.value == 0x7F: result += String(format: "\\u%04x", scalar.value)
        default: result.unicodeScalars.append(scalar)
        }
    }
    return result + "\""
}
