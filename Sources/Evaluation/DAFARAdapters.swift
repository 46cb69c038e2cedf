import Attacks
import DAFAR

/// DAFAR seen by the attacks: the attacks know only differentiable classifiers and detectors,
/// so that they work on any model a user brings; these adapters hand them DAFAR's.
extension DAFARModel {
    /// The target network F(E(.)) as an attackable classifier.
    public var attackableClassifier: DifferentiableClassifier {
        DifferentiableClassifier { [network] x in network.logits(x) }
    }

    /// The whole detector C(x - D(E(x))) with its threshold, differentiable (nil without a detector).
    public var attackableDetector: DifferentiableDetector? {
        guard detector != nil, let threshold else { return nil }
        return DifferentiableDetector(threshold: threshold) { [self] x in self.score(x) }
    }

    /// The score `definition` (whatever the detector file holds) with `threshold`, differentiable
    /// through F, E, D and C: what an attacker who knows that detector optimises against.
    public func attackableDetector(_ definition: FeedbackScore, threshold: Float) -> DifferentiableDetector {
        DifferentiableDetector(threshold: threshold) { [network, detector] x in
            network.logitsAndScore(x, definition, detector: detector).score
        }
    }
}
