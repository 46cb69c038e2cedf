import Autodiff
import DAFAR
import Foundation
import NeuralNetworks
import Tensors

/// DAFAR's verdict on one image with the numbers a person or a client wants beside it: the one
/// piece of code that turns `DAFARModel.inspect` into the JSON fields both `dafar-inspect` and
/// `dafar-serve` print, so that the two tools give the same values for the same image.
public struct ImageVerdict: Equatable, Sendable {
    /// F(E(x)).
    public var predictedClass: Int
    /// softmax(logits)[predictedClass], computed in Double with the maximum logit subtracted.
    public var probability: Float
    /// The detector file's score (the paper's residual score unless it defines another kind).
    public var score: Float
    /// The threshold the verdict used.
    public var threshold: Float
    /// score > threshold.
    public var adversarial: Bool

    /// Creates a verdict from its fields.
    public init(predictedClass: Int, probability: Float, score: Float, threshold: Float, adversarial: Bool) {
        self.predictedClass = predictedClass
        self.probability = probability
        self.score = score
        self.threshold = threshold
        self.adversarial = adversarial
    }

    /// The verdicts of `DAFARModel.inspect` on `images` (`[N, C, H, W]`, fitting the model) with
    /// their probabilities. `threshold` nil keeps the library's verdict at the detector file's
    /// active threshold; a number gives the same strict comparison `score > threshold` at it.
    /// Made of `DAFARModel.logitsAndScores`, as `inspect` is, so the classes, scores and flags are
    /// the library's bit for bit (ServingTests checks it against `inspect` and `logits`).
    public static func inspect(_ dafar: DAFARModel, _ images: Tensor, threshold: Float? = nil) -> [ImageVerdict] {
        guard let active = dafar.threshold else {
            preconditionFailure("a verdict needs a calibrated detector; load one with DAFARModel(contentsOf:detector:)")
        }
        let cut = threshold ?? active
        let (logits, scores) = dafar.logitsAndScores(images)
        let classCount = logits.shape[1]
        return zip(logits.argmaxRows(), scores).enumerated().map { i, verdict in
            let row = logits.storage[(i * classCount)..<((i + 1) * classCount)]
            return ImageVerdict(
                predictedClass: verdict.0, probability: softmaxProbability(row, at: verdict.0), score: verdict.1, threshold: cut,
                adversarial: verdict.1 > cut)
        }
    }

    /// The verdict's JSON members without braces, in this order:
    /// `"predicted_class":K,"probability":P,"score":S,"threshold":T,"adversarial":B`.
    /// Numbers are the shortest text that reads back the same Float; a non-finite one is null.
    public var jsonMembers: String {
        "\"predicted_class\":\(predictedClass),\"probability\":\(JSONText.number(probability)),"
            + "\"score\":\(JSONText.number(score)),\"threshold\":\(JSONText.number(threshold)),\"adversarial\":\(adversarial)"
    }
}

/// softmax(logits)[k] for one row of logits, computed in Double with the maximum subtracted.
public func softmaxProbability(_ logits: ArraySlice<Float>, at k: Int) -> Float {
    let peak = Double(logits.max() ?? 0)
    let total = logits.reduce(0.0) { $0 + exp(Double($1) - peak) }
    return Float(exp(Double(logits[logits.startIndex + k]) - peak) / total)
}

/// JSON text for the values the tools print.
public enum JSONText {
    /// `value` as a JSON number (shortest text that reads back the same Float); null when not finite.
    public static func number(_ value: Float) -> String { value.isFinite ? "\(value)" : "null" }

    /// `text` as a JSON string literal (quotes, backslashes and control characters escaped).
    public static func string(_ text: String) -> String { jsonQuoted(text) }
}
