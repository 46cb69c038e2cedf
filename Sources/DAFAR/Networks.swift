import Autodiff
import NeuralNetworks
import Tensors

/// The target-network architectures of the paper's Table 1 ('valid' padding).
public enum Architecture: String, CaseIterable, Sendable {
    /// For 1 x 28 x 28 images: E = 2 x [Conv 3x3 32, ReLU], MaxPool, 2 x [Conv 3x3 64, ReLU], MaxPool;
    /// F = Flatten, Linear 1024-200, ReLU, Linear 200-200, ReLU, Linear 200-10.
    case mnist
    /// For 3 x 32 x 32 images: E = 3 x [Conv 3x3 96, ReLU], MaxPool, 3 x [Conv 3x3 192, ReLU], MaxPool;
    /// F = Conv 3x3 192, ReLU, Conv 1x1 192, ReLU, Conv 1x1 10, ReLU, Flatten, Linear 10-200, ReLU,
    /// Linear 200-200, ReLU, Linear 200-10.
    case cifar

    /// The architecture for images of shape `[C, H, W]`, if Table 1 has one.
    public static func forImageShape(_ shape: [Int]) -> Architecture? {
        switch shape {
        case [1, 28, 28]: return .mnist
        case [3, 32, 32]: return .cifar
        default: return nil
        }
    }

    /// The input shape `[C, H, W]`.
    public var inputShape: [Int] { self == .mnist ? [1, 28, 28] : [3, 32, 32] }

    /// Builds E (`target.features`) with PyTorch default initialisation.
    public func makeFeatures(using generator: inout SeededGenerator) -> Sequential {
        func block(_ input: Int, _ output: Int, _ count: Int, _ g: inout SeededGenerator) -> [any Layer] {
            (0..<count).flatMap { i -> [any Layer] in
                [Conv2D(inputChannels: i == 0 ? input : output, outputChannels: output, kernelSize: 3, using: &g), ReLU()]
            }
        }
        switch self {
        case .mnist:
            return Sequential(block(1, 32, 2, &generator) + [MaxPool2D(size: 2)] + block(32, 64, 2, &generator) + [MaxPool2D(size: 2)])
        case .cifar:
            return Sequential(block(3, 96, 3, &generator) + [MaxPool2D(size: 2)] + block(96, 192, 3, &generator) + [MaxPool2D(size: 2)])
        }
    }

    /// Builds F (`target.classifier`), producing logits (softmax lives in the loss).
    public func makeClassifier(classCount: Int, using g: inout SeededGenerator) -> Sequential {
        switch self {
        case .mnist:
            return Sequential([
                Flatten(), Dense(inputSize: 1024, outputSize: 200, using: &g), ReLU(),
                Dense(inputSize: 200, outputSize: 200, using: &g), ReLU(),
                Dense(inputSize: 200, outputSize: classCount, using: &g)
            ])
        case .cifar:
            return Sequential([
                Conv2D(inputChannels: 192, outputChannels: 192, kernelSize: 3, using: &g), ReLU(),
                Conv2D(inputChannels: 192, outputChannels: 192, kernelSize: 1, using: &g), ReLU(),
                Conv2D(inputChannels: 192, outputChannels: 10, kernelSize: 1, using: &g), ReLU(),
                Flatten(), Dense(inputSize: 10, outputSize: 200, using: &g), ReLU(),
                Dense(inputSize: 200, outputSize: 200, using: &g), ReLU(),
                Dense(inputSize: 200, outputSize: classCount, using: &g)
            ])
        }
    }
}

/// Builds the feedback decoder D that mirrors `features[0..<feedbackLayer]` back to
/// the input shape: each convolution becomes a transposed convolution (ReLU after
/// it, a sigmoid after the last), each max-pool a nearest upsampling to the size
/// before the pool. D reads E(x) only (no pooling indices).
public func makeMirrorDecoder(
    features: Sequential, feedbackLayer: Int, inputShape: [Int],
    using generator: inout SeededGenerator
) -> Sequential {
    precondition(
        feedbackLayer > 0 && feedbackLayer <= features.layers.count,
        "feedback layer \(feedbackLayer) is outside 1...\(features.layers.count)")
    // Spatial size before each layer, by running one zero image through E.
    var shapes: [[Int]] = []
    var x = Variable(Tensor.zeros([1] + inputShape))
    for layer in features.layers[0..<feedbackLayer] {
        shapes.append(x.shape)
        x = layer(x)
    }
    var layers: [any Layer] = []
    let convolutions = features.layers[0..<feedbackLayer].filter { $0 is Conv2D }.count
    var convolutionsLeft = convolutions
    for (index, layer) in features.layers[0..<feedbackLayer].enumerated().reversed() {
        switch layer {
        case let conv as Conv2D:
            layers.append(
                ConvTranspose2D(
                    inputChannels: conv.outputChannels, outputChannels: conv.inputChannels,
                    kernelSize: conv.kernelSize, stride: conv.stride, padding: conv.padding,
                    using: &generator))
            convolutionsLeft -= 1
            layers.append(convolutionsLeft == 0 ? Sigmoid() : ReLU())
        case is MaxPool2D:
            layers.append(Upsample2D(height: shapes[index][2], width: shapes[index][3]))
        default:
            continue
        }
    }
    if convolutions == 0 { layers.append(Sigmoid()) }
    return Sequential(layers)
}

/// The widths of C's dense layers, input to output: `[in, h1, ..., hk, ..., h1, in]`.
public func detectorLayerSizes(inputSize: Int, hiddenSizes: [Int]) -> [Int] {
    [inputSize] + hiddenSizes + hiddenSizes.dropLast().reversed() + [inputSize]
}

/// Builds the detector C: a fully connected autoencoder `size - h1 - ... - hk - ... - h1 - size`
/// with ReLU between layers and a linear output (residuals are signed). With hidden
/// sizes [256, 128, 64] it is the paper's 7-layer 784-256-128-64-128-256-784.
/// It reads flattened residuals `[N, size]` (so that `detector.0.weight` is the first Linear).
public func makeDetectorNetwork(inputSize: Int, hiddenSizes: [Int], using generator: inout SeededGenerator) -> Sequential {
    precondition(!hiddenSizes.isEmpty && hiddenSizes.allSatisfy { $0 > 0 }, "detector hidden sizes must be positive, got \(hiddenSizes)")
    let sizes = detectorLayerSizes(inputSize: inputSize, hiddenSizes: hiddenSizes)
    var layers: [any Layer] = []
    for i in 0..<(sizes.count - 1) {
        layers.append(Dense(inputSize: sizes[i], outputSize: sizes[i + 1], using: &generator))
        if i < sizes.count - 2 { layers.append(ReLU()) }
    }
    return Sequential(layers)
}
