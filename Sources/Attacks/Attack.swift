import Autodiff
import Tensors

/// A model an attack can differentiate through: images `[N, C, H, W]` in [0, 1]
/// to logits `[N, K]`. The closure receives a variable on the attack's tape.
public struct DifferentiableClassifier {
    /// Maps images to logits; must record on the input's tape.
    public let logits: (Variable) -> Variable

    public init(logits: @escaping (Variable) -> Variable) { self.logits = logits }
}
