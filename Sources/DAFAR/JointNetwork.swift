import Autodiff
import Foundation
import NeuralNetworks
import Tensors

/// Which norm measures a reconstruction or an anomaly score.
public enum ReconstructionNorm: String, CaseIterable, Sendable {
    /// Per-image L2 norm `||a - b||_2` (the paper's Eq. 3, 5, 6).
    case l2
    /// Per-image L1 norm `||a - b||_1` (what the authors' prototype computed in effect).
    case l1
    /// Mean squared error per pixel (PyTorch's `MSELoss`).
    case mse

    /// The per-image distance between `a` and `b` (`[N, ...]` -> `[N]`).
    public func perSample(_ a: Variable, _ b: Variable) -> Variable {
        let difference = a - b
        switch self {
        case .l2: return l2NormPerSample(difference)
        case .l1: return l1NormPerSample(difference)
        case .mse: return difference.square().sumPerSample() * (1 / Float(max(1, a.value.itemCount)))
        }
    }
}

/// The joint network of DAFAR: target network F(E(x)) and feedback decoder D(E(x)).
///
/// Parameter names follow the state_dict of an equivalent PyTorch module:
/// `target.features.N.*` (E), `target.classifier.N.*` (F), `decoder.N.*` (D).
public final class JointNetwork: Sendable {
    /// Table 1 architecture.
    public let architecture: Architecture
    /// Number of classes F predicts.
    public let classCount: Int
    /// D reads the output of `features.layers[0..<feedbackLayer]`.
    public let feedbackLayer: Int
    /// E.
    public let features: Sequential
    /// F.
    public let classifier: Sequential
    /// D.
    public let decoder: Sequential

    /// Creates a freshly initialised network (PyTorch default initialisation, seeded).
    public init(architecture: Architecture, classCount: Int = 10, feedbackLayer: Int? = nil, seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        self.architecture = architecture
        self.classCount = classCount
        features = architecture.makeFeatures(using: &generator)
        classifier = architecture.makeClassifier(classCount: classCount, using: &generator)
        let feedback = feedbackLayer ?? features.layers.count
        self.feedbackLayer = feedback
        decoder = makeMirrorDecoder(
            features: features, feedbackLayer: feedback, inputShape: architecture.inputShape,
            using: &generator)
    }

    /// Starts D's output at the mean image intensity: the last transposed convolution's
    /// bias becomes `logit(mean of channel c)` and its weights are scaled by `weightScale`.
    ///
    /// With PyTorch's default initialisation D starts at sigmoid(~0) = 0.5 everywhere,
    /// and on mostly-black digits the quickest way down for the L2 loss is to push every
    /// output to 0; the sigmoid then saturates, its gradient vanishes and D never learns
    /// (3 of 6 seeds on MNIST-5k ended with a reconstruction distance of ||x||).
    /// Starting at the mean removes that slope. `images` is `[N, C, H, W]` training data.
    public func startDecoderAtMean(of images: Tensor, weightScale: Float = 0.1) {
        guard let last = decoder.layers.last(where: { $0 is ConvTranspose2D }) as? ConvTranspose2D else { return }
        let channels = images.shape[1], plane = images.shape[2] * images.shape[3]
        precondition(channels == last.bias.value.count, "D outputs \(last.bias.value.count) channels, the images have \(channels)")
        var sums = [Double](repeating: 0, count: channels)
        images.withUnsafeBufferPointer { p in
            for i in 0..<p.count { sums[(i / plane) % channels] += Double(p[i]) }
        }
        let perChannel = Double(max(1, images.batchSize * plane))
        last.bias.value = Tensor(
            shape: [channels],
            storage: sums.map { sum in
                let mean = min(max(sum / perChannel, 0.01), 0.99)
                return Float(log(mean / (1 - mean)))
            })
        last.weight.value = last.weight.value.map { $0 * weightScale }
    }

    /// Every parameter with its state_dict name.
    public var namedParameters: [NamedParameter] {
        prefixed("target.features", features.namedParameters)
            + prefixed("target.classifier", classifier.namedParameters)
            + prefixed("decoder", decoder.namedParameters)
    }

    /// The outputs of one forward pass.
    public struct Outputs {
        /// F(E(x)), `[N, K]`.
        public let logits: Variable
        /// D(E(x)), same shape as x.
        public let reconstruction: Variable
    }

    /// Runs E once and both heads on it.
    public func callAsFunction(_ x: Variable) -> Outputs {
        let fed = features(x, layers: 0..<feedbackLayer)
        let high = features(fed, layers: feedbackLayer..<features.layers.count)
        return Outputs(logits: classifier(high), reconstruction: decoder(fed))
    }

    /// F(E(x)) only.
    public func logits(_ x: Variable) -> Variable { classifier(features(x)) }

    /// D(E(x)) only.
    public func reconstruct(_ x: Variable) -> Variable { decoder(features(x, layers: 0..<feedbackLayer)) }

    /// A description of the layers, for file metadata.
    public var layerSummary: [String: String] {
        ["target.features": features.summary, "target.classifier": classifier.summary, "decoder": decoder.summary]
    }
}
