import Autodiff
import NeuralNetworks
import Tensors

/// Average pooling with a `size x size` window and stride `size` (floor mode), PyTorch
/// `AvgPool2d(size)`, for `[N, C, H, W]` inputs with a fixed channel count `C`.
///
/// The core has no average-pooling op, so this is an exact average pool built from the
/// differentiable `conv2d`: a constant (untrained) weight `[C, C, size, size]` holding
/// `1 / size^2` where output channel = input channel and 0 elsewhere, stride `size`, no bias.
public final class AveragePool2D: Layer {
    /// Window side and stride.
    public let size: Int
    /// Channels of the input (and output).
    public let channels: Int
    /// `[C, C, size, size]`: the averaging kernel.
    let kernel: Tensor

    /// Creates the layer for inputs with `channels` channels.
    public init(channels: Int, size: Int = 2) {
        precondition(channels > 0 && size > 0, "AveragePool2D needs positive channels and size, got \(channels) and \(size)")
        self.size = size
        self.channels = channels
        var weight = Tensor.zeros([channels, channels, size, size])
        let window = size * size
        for channel in 0..<channels {
            let start = (channel * channels + channel) * window  // weight[channel, channel, :, :]
            for k in 0..<window { weight.storage[start + k] = 1 / Float(window) }
        }
        self.kernel = weight
    }

    public func callAsFunction(_ input: Variable) -> Variable {
        precondition(
            input.value.rank == 4 && input.shape[1] == channels,
            "AveragePool2D(channels: \(channels)) got input of shape \(input.shape)")
        return conv2d(input, weight: Variable(kernel), bias: nil, stride: size, padding: 0)
    }

    public var summary: String { "AvgPool2d(kernel_size=\(size), stride=\(size))" }
}

/// Mini-batch training settings of the baselines' small networks.
public struct TrainingSettings: Equatable, Sendable {
    /// Passes over the training set.
    public var epochs: Int
    /// Images per step.
    public var batchSize: Int
    /// Adam's learning rate (betas 0.9, 0.999, eps 1e-8).
    public var learningRate: Float

    /// Creates settings; `validate()` checks them.
    public init(epochs: Int = 10, batchSize: Int = 128, learningRate: Float = 1e-3) {
        self.epochs = epochs
        self.batchSize = batchSize
        self.learningRate = learningRate
    }

    /// Throws a `BaselineError` naming the first setting out of range.
    public func validate() throws {
        guard epochs >= 1 else { throw BaselineError("training needs at least 1 epoch, got \(epochs)") }
        guard batchSize >= 1 else { throw BaselineError("training batch size must be at least 1, got \(batchSize)") }
        guard learningRate > 0, learningRate.isFinite else {
            throw BaselineError("learning rate must be a positive number, got \(learningRate)")
        }
    }
}

/// Trains `parameters` with Adam for `settings.epochs` passes over `sampleCount` samples
/// in shuffled mini-batches. `loss(tape, batchIndices, &generator)` builds the batch
/// loss (a scalar) on a fresh tape. Returns the mean batch loss of each epoch.
func trainWithAdam(
    parameters: [NamedParameter], sampleCount: Int, settings: TrainingSettings,
    using generator: inout SeededGenerator,
    loss: (Tape, [Int], inout SeededGenerator) -> Variable
) throws -> [Float] {
    try settings.validate()
    guard sampleCount > 0 else { throw BaselineError("training needs at least one image") }
    let optimizer = try Adam(learningRate: settings.learningRate)
    var epochLosses: [Float] = []
    for _ in 0..<settings.epochs {
        let order = generator.permutation(sampleCount)
        var total: Float = 0, batches = 0
        for start in stride(from: 0, to: sampleCount, by: settings.batchSize) {
            let batch = Array(order[start..<min(start + settings.batchSize, sampleCount)])
            let tape = Tape()
            let value = loss(tape, batch, &generator)
            optimizer.step(parameters, gradients: tape.gradients(of: value))
            total += value.value.scalar
            batches += 1
        }
        epochLosses.append(total / Float(batches))
    }
    return epochLosses
}
