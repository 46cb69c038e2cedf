import Autodiff
import Tensors

/// PyTorch's default initialisation for a weight with `fanIn` inputs per output:
/// Kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(fanIn), 1/sqrt(fanIn)); the bias
/// uses the same bound.
func defaultInitialization(
    weightShape: [Int], biasCount: Int, fanIn: Int,
    using generator: inout SeededGenerator
) -> (Parameter, Parameter) {
    let bound = 1 / Float(fanIn).squareRoot()
    let weight = Tensor.uniform(weightShape, low: -bound, high: bound, using: &generator)
    let bias = Tensor.uniform([biasCount], low: -bound, high: bound, using: &generator)
    return (Parameter(weight), Parameter(bias))
}

/// Fully connected layer, PyTorch `Linear`: `y = x W^T + b`, weight `[out, in]`.
public final class Dense: ReLUFusable {
    public let weight: Parameter
    public let bias: Parameter
    public let inputSize: Int
    public let outputSize: Int

    /// Creates a layer with PyTorch's default initialisation.
    public init(inputSize: Int, outputSize: Int, using generator: inout SeededGenerator) {
        precondition(inputSize > 0 && outputSize > 0, "Dense needs positive sizes, got \(inputSize) -> \(outputSize)")
        self.inputSize = inputSize
        self.outputSize = outputSize
        (weight, bias) = defaultInitialization(
            weightShape: [outputSize, inputSize], biasCount: outputSize,
            fanIn: inputSize, using: &generator)
    }

    public func callAsFunction(_ input: Variable) -> Variable { self(input, fusingReLU: false) }

    public func callAsFunction(_ input: Variable, fusingReLU: Bool) -> Variable {
        linear(input, weight: weight.variable(on: input.tape), bias: bias.variable(on: input.tape), reLU: fusingReLU)
    }

    public var namedParameters: [NamedParameter] { [("weight", weight), ("bias", bias)] }
    public var summary: String { "Linear(in_features=\(inputSize), out_features=\(outputSize))" }
}

/// 2-D convolution, PyTorch `Conv2d`: weight `[out, in, kernel, kernel]`.
public final class Conv2D: ReLUFusable {
    public let weight: Parameter
    public let bias: Parameter
    public let inputChannels: Int
    public let outputChannels: Int
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int

    /// Creates a layer with PyTorch's default initialisation.
    public init(
        inputChannels: Int, outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
        using generator: inout SeededGenerator
    ) {
        precondition(
            inputChannels > 0 && outputChannels > 0 && kernelSize > 0 && stride > 0 && padding >= 0,
            "Conv2D: invalid configuration in \(inputChannels) out \(outputChannels) kernel \(kernelSize) stride \(stride) padding \(padding)"
        )
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        (weight, bias) = defaultInitialization(
            weightShape: [outputChannels, inputChannels, kernelSize, kernelSize],
            biasCount: outputChannels, fanIn: inputChannels * kernelSize * kernelSize,
            using: &generator)
    }

    public func callAsFunction(_ input: Variable) -> Variable { self(input, fusingReLU: false) }

    public func callAsFunction(_ input: Variable, fusingReLU: Bool) -> Variable {
        conv2d(
            input, weight: weight.variable(on: input.tape), bias: bias.variable(on: input.tape), stride: stride, padding: padding,
            reLU: fusingReLU)
    }

    /// The layer, `max(0, .)` when `fusingReLU`, then a 2 x 2 max pooling, in one pass over each image's output
    /// (`conv2dMaxPool`; the same values and tape as the layers one after the other).
    public func callAsFunction(_ input: Variable, fusingReLU: Bool, maxPooling: Bool) -> Variable {
        guard maxPooling else { return self(input, fusingReLU: fusingReLU) }
        return conv2dMaxPool(
            input, weight: weight.variable(on: input.tape), bias: bias.variable(on: input.tape), stride: stride, padding: padding,
            reLU: fusingReLU)
    }

    public var namedParameters: [NamedParameter] { [("weight", weight), ("bias", bias)] }
    public var summary: String {
        "Conv2d(\(inputChannels), \(outputChannels), kernel_size=\(kernelSize), stride=\(stride), padding=\(padding))"
    }
}

/// 2-D transposed convolution, PyTorch `ConvTranspose2d`: weight `[in, out, kernel, kernel]`.
public final class ConvTranspose2D: ReLUFusable {
    public let weight: Parameter
    public let bias: Parameter
    public let inputChannels: Int
    public let outputChannels: Int
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int

    /// Creates a layer with PyTorch's default initialisation (fan-in = out * kernel^2, as PyTorch computes it).
    public init(
        inputChannels: Int, outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
        using generator: inout SeededGenerator
    ) {
        precondition(
            inputChannels > 0 && outputChannels > 0 && kernelSize > 0 && stride > 0 && padding >= 0,
            "ConvTranspose2D: invalid configuration in \(inputChannels) out \(outputChannels) kernel \(kernelSize) stride \(stride) padding \(padding)"
        )
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        (weight, bias) = defaultInitialization(
            weightShape: [inputChannels, outputChannels, kernelSize, kernelSize],
            biasCount: outputChannels, fanIn: outputChannels * kernelSize * kernelSize,
            using: &generator)
    }

    public func callAsFunction(_ input: Variable) -> Variable { self(input, fusingReLU: false) }

    public func callAsFunction(_ input: Variable, fusingReLU: Bool) -> Variable {
        convTranspose2d(
            input, weight: weight.variable(on: input.tape), bias: bias.variable(on: input.tape),
            stride: stride, padding: padding, reLU: fusingReLU)
    }

    /// The layer on `input`, or (`upsampling`) on its 2x nearest upsampling (an `Upsample2D` to twice `input`'s size,
    /// then this layer), then `max(0, .)` when `fusingReLU`, then (`sigmoid`) the logistic function (a `Sigmoid` layer
    /// after it): one pass at inference (`convTranspose2d(_:...:upsampling:sigmoid:)`).
    public func callAsFunction(_ input: Variable, upsampling: Bool, fusingReLU: Bool, sigmoid: Bool) -> Variable {
        convTranspose2d(
            input, weight: weight.variable(on: input.tape), bias: bias.variable(on: input.tape), stride: stride,
            padding: padding, reLU: fusingReLU, upsampling: upsampling, sigmoid: sigmoid)
    }

    public var namedParameters: [NamedParameter] { [("weight", weight), ("bias", bias)] }
    public var summary: String {
        "ConvTranspose2d(\(inputChannels), \(outputChannels), kernel_size=\(kernelSize), stride=\(stride), padding=\(padding))"
    }
}

/// Max pooling with a square window and equal stride, PyTorch `MaxPool2d(size)`.
public final class MaxPool2D: Layer {
    public let size: Int
    public init(size: Int = 2) {
        precondition(size > 0, "MaxPool2D size must be positive, got \(size)")
        self.size = size
    }
    public func callAsFunction(_ input: Variable) -> Variable { input.maxPool2d(size: size) }
    public var summary: String { "MaxPool2d(kernel_size=\(size), stride=\(size))" }
}

/// Nearest-neighbour upsampling to a fixed output size, PyTorch `Upsample(size=(h, w))`.
public final class Upsample2D: Layer {
    public let height: Int
    public let width: Int
    public init(height: Int, width: Int) {
        precondition(height > 0 && width > 0, "Upsample2D needs a positive size, got \(height)x\(width)")
        self.height = height
        self.width = width
    }
    public func callAsFunction(_ input: Variable) -> Variable { input.upsampleNearest(height: height, width: width) }
    public var summary: String { "Upsample(size=(\(height), \(width)), mode='nearest')" }
}

/// `max(0, x)`.
public final class ReLU: Layer {
    public init() {}
    public func callAsFunction(_ input: Variable) -> Variable { input.relu() }
    public var summary: String { "ReLU()" }
}

/// The logistic function.
public final class Sigmoid: Layer {
    public init() {}
    public func callAsFunction(_ input: Variable) -> Variable { input.sigmoid() }
    public var summary: String { "Sigmoid()" }
}

/// Hyperbolic tangent.
public final class Tanh: Layer {
    public init() {}
    public func callAsFunction(_ input: Variable) -> Variable { input.tanh() }
    public var summary: String { "Tanh()" }
}

/// `[N, ...] -> [N, rest]`.
public final class Flatten: Layer {
    public init() {}
    public func callAsFunction(_ input: Variable) -> Variable { input.flattened() }
    public var summary: String { "Flatten()" }
}

/// A layer that can apply a following ReLU inside its own passes (convolutions: while each image's
/// output is in cache; dense layers: with the bias), with the same results bit for bit as the two layers
/// one after the other.
public protocol ReLUFusable: Layer {
    /// Applies the layer, then `max(0, .)` when `fusingReLU`.
    func callAsFunction(_ input: Variable, fusingReLU: Bool) -> Variable
}

/// Layers applied in order; parameter names are `index.name`, as PyTorch's `Sequential`.
///
/// A `ReLUFusable` layer followed by a `ReLU` runs as one fused op, and a `Conv2D` and its `ReLU` followed by a
/// 2 x 2 `MaxPool2D` as one pass (see `stages`); the layer list, and so the parameter names, stay as written.
public final class Sequential: Layer {
    public let layers: [any Layer]
    /// Per layer, what `stages` and `apply` ask of it, found once here rather than by dynamic casts on every call (at
    /// batch 1 the casts and the stage lists took about 1 % of an inference).
    private let fusable: [(any ReLUFusable)?], convolutions: [Conv2D?], isReLU: [Bool], isPooling: [Bool]
    private let upsamplings: [Upsample2D?], transposed: [ConvTranspose2D?], isSigmoid: [Bool]
    /// `stages()` of all the layers.
    private let allStages: [Range<Int>]

    public init(_ layers: [any Layer]) {
        self.layers = layers
        fusable = layers.map { $0 as? any ReLUFusable }
        convolutions = layers.map { $0 as? Conv2D }
        isReLU = layers.map { $0 is ReLU }
        isPooling = layers.map { ($0 as? MaxPool2D)?.size == 2 }
        upsamplings = layers.map { $0 as? Upsample2D }
        transposed = layers.map { $0 as? ConvTranspose2D }
        isSigmoid = layers.map { $0 is Sigmoid }
        allStages = Sequential.stages(layers.indices, fusable: fusable, convolutions: convolutions, isReLU: isReLU, isPooling: isPooling)
    }

    public func callAsFunction(_ input: Variable) -> Variable { self(input, layers: layers.indices) }

    /// Applies layers `range` only (for reading an intermediate output).
    ///
    /// A `ConvTranspose2D` stage after an `Upsample2D` to twice its input's size, or before a `Sigmoid`, or both, runs
    /// as one call of the layer (`callAsFunction(_:upsampling:fusingReLU:sigmoid:)`): at inference one pass that
    /// upsamples in cache and applies the sigmoid to the outputs it makes, the same values as the layers one by one.
    public func callAsFunction(_ input: Variable, layers range: Range<Int>) -> Variable {
        let stages = stages(range)
        var x = input, index = 0
        while index < stages.count {
            let stage = stages[index]
            let upsampling =
                index + 1 < stages.count && transposed[stages[index + 1].lowerBound] != nil && x.value.rank == 4
                && upsamplings[stage.lowerBound].map { $0.height == 2 * x.shape[2] && $0.width == 2 * x.shape[3] } == true
            let at = upsampling ? index + 1 : index  // the transposed convolution's stage
            if let layer = transposed[stages[at].lowerBound] {
                let sigmoid = at + 1 < stages.count && isSigmoid[stages[at + 1].lowerBound]
                if upsampling || sigmoid {
                    x = layer(x, upsampling: upsampling, fusingReLU: stages[at].count == 2, sigmoid: sigmoid)
                    index = at + (sigmoid ? 2 : 1)
                    continue
                }
            }
            x = apply(stage, x)
            index += 1
        }
        return x
    }

    /// The layers of `range` grouped as they run: one layer, a `ReLUFusable` layer and the `ReLU` after it, or a
    /// `Conv2D`, its `ReLU` and a 2 x 2 `MaxPool2D`.
    public func stages(_ range: Range<Int>? = nil) -> [Range<Int>] {
        guard let range, range != layers.indices else { return allStages }
        return Sequential.stages(range, fusable: fusable, convolutions: convolutions, isReLU: isReLU, isPooling: isPooling)
    }

    private static func stages(
        _ range: Range<Int>, fusable: [(any ReLUFusable)?], convolutions: [Conv2D?], isReLU: [Bool], isPooling: [Bool]
    ) -> [Range<Int>] {
        var stages: [Range<Int>] = []
        var i = range.lowerBound
        while i < range.upperBound {
            let fused = fusable[i] != nil && i + 1 < range.upperBound && isReLU[i + 1]
            let pooled = fused && convolutions[i] != nil && i + 2 < range.upperBound && isPooling[i + 2]
            stages.append(i..<(i + (pooled ? 3 : fused ? 2 : 1)))
            i = stages.last!.upperBound
        }
        return stages
    }

    /// Runs one stage of `stages`.
    public func apply(_ stage: Range<Int>, _ input: Variable) -> Variable {
        if stage.count == 3, let layer = convolutions[stage.lowerBound] { return layer(input, fusingReLU: true, maxPooling: true) }
        if stage.count == 2, let layer = fusable[stage.lowerBound] { return layer(input, fusingReLU: true) }
        return stage.reduce(input) { layers[$1]($0) }
    }

    public var namedParameters: [NamedParameter] {
        layers.enumerated().flatMap { prefixed(String($0.offset), $0.element.namedParameters) }
    }

    public var summary: String {
        "Sequential(" + layers.enumerated().map { "(\($0.offset)): \($0.element.summary)" }.joined(separator: ", ") + ")"
    }
}
