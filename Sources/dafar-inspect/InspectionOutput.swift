import CommandSupport
import Foundation
import ImageFiles

/// The verdict on one image, as `dafar-inspect` prints it.
struct InspectionRecord {
    /// The file the image came from, as given on the command line.
    var file: String
    /// Position of that file among the command's arguments.
    var filePosition: Int
    /// Position of the image in its file (0 for a PNG).
    var index: Int
    /// Class, probability, score, threshold and verdict (the fields `dafar-serve` answers too).
    var verdict: ImageVerdict

    /// score > threshold.
    var adversarial: Bool { verdict.adversarial }

    /// One JSON object on one line: file, index, predicted_class, probability, score, threshold, adversarial.
    var jsonLine: String { "{\"file\":\(JSONText.string(file)),\"index\":\(index),\(verdict.jsonMembers)}" }
}

/// Output formats of `dafar-inspect`.
enum OutputFormat: String, CaseIterable {
    /// One JSON object per image (JSON Lines).
    case json
    /// An aligned table for people.
    case table
}

/// The rows of `--format table`: a header, one aligned line per image, and a summary line that
/// names the detector's score kind (`residual`, `decision` or `fused`).
func tableLines(_ records: [InspectionRecord], scoreKind: String) -> [String] {
    let header = ["file", "index", "class", "probability", "score", "threshold", "verdict"]
    let rows = records.map { r in
        [
            printable(r.file), String(r.index), String(r.verdict.predictedClass), String(format: "%.4f", r.verdict.probability),
            String(format: "%.4f", r.verdict.score), String(format: "%.4f", r.verdict.threshold), r.adversarial ? "ADVERSARIAL" : "clean"
        ]
    }
    let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max()! }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { column, cell in
            column == 0
                ? cell.padding(toLength: widths[0], withPad: " ", startingAt: 0)
                : String(repeating: " ", count: widths[column] - cell.count) + cell
        }.joined(separator: "  ")
    }
    let flagged = records.filter(\.adversarial).count
    return [line(header)] + rows.map(line) + ["\(flagged) of \(records.count) images flagged as adversarial (\(scoreKind) score)"]
}
