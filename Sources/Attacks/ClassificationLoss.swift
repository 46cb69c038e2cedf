import Autodiff
import Tensors

/// The large negative number the true (or target) class is masked with before the
/// maximum over the other classes is taken (Carlini's `10000`). Masking with 0
/// instead is torchattacks bug #184: it fails whenever every other logit is < 0.
let maskedLogit: Float = 10_000

/// The classification term a gradient attack optimises.
public enum ClassificationLoss: Equatable, Sendable {
    /// Softmax cross-entropy: the attack maximises `CE(Z, y)` (untargeted) or
    /// minimises `CE(Z, t)` (targeted).
    case crossEntropy
    /// Carlini and Wagner's margin on logits `Z` with confidence `kappa`: the attack
    /// minimises `max(Z_y - max_{i != y} Z_i + kappa, 0)` (untargeted) or
    /// `max(max_{i != t} Z_i - Z_t + kappa, 0)` (targeted).
    case carliniWagnerMargin(confidence: Float)

    /// Short text for `settings`.
    var settingsValue: String {
        switch self {
        case .crossEntropy: return "cross-entropy"
        case .carliniWagnerMargin(let kappa): return "cw-margin(kappa=\(kappa))"
        }
    }

    /// The per-sample objective `[N]` an attack MAXIMISES: `CE(y)` or `-CE(t)`,
    /// or `-max(margin + kappa, 0)`. `classes` are the labels (untargeted) or the
    /// targets (targeted).
    func objective(logits: Variable, classes: [Int], targeted: Bool) -> Variable {
        switch self {
        case .crossEntropy:
            let ce = softmaxCrossEntropyPerSample(logits: logits, labels: classes)
            return targeted ? -ce : ce
        case .carliniWagnerMargin(let kappa):
            return -(logitMargin(logits: logits, classes: classes, targeted: targeted) + kappa).relu()
        }
    }
}

/// Carlini and Wagner's margin per sample `[N]` on logits `Z` `[N, K]`:
/// `Z_y - max_{i != y} Z_i` (untargeted, `classes` = labels) or
/// `max_{i != t} Z_i - Z_t` (targeted, `classes` = targets). The attack has
/// succeeded (with confidence `kappa`) where the margin is `<= -kappa`.
///
/// The excluded class is replaced by `-10000` (not 0) before the maximum.
func logitMargin(logits: Variable, classes: [Int], targeted: Bool) -> Variable {
    let n = logits.shape[0], k = logits.shape[1]
    var keep = Tensor(shape: [n, k], repeating: 1)
    var mask = Tensor.zeros([n, k])
    for (i, c) in classes.enumerated() {
        keep.storage[i * k + c] = 0
        mask.storage[i * k + c] = maskedLogit
    }
    let other = (logits * Variable(keep) - Variable(mask)).maxRows()  // max_{i != c} Z_i   [N]
    let real = logits.gatherRows(classes)  // Z_c               [N]
    return targeted ? other - real : real - other
}

/// Carlini's `compare`: whether the logits `z` (one row) count as a success with
/// confidence `kappa`. Untargeted: `argmax(z + kappa e_y) != y`; targeted:
/// `argmax(z - kappa e_t) == t`.
func carliniWagnerSucceeds(_ z: ArraySlice<Float>, reference: Int, confidence kappa: Float, targeted: Bool) -> Bool {
    var row = Array(z)
    row[reference] += targeted ? -kappa : kappa
    var best = 0
    for j in 1..<row.count where row[j] > row[best] { best = j }
    return targeted ? best == reference : best != reference
}
