@testable import Autodiff
@testable import NeuralNetworks
import Tensors
import XCTest

/// Layer initialisation, names, layouts, and how layers use (or skip) the tape.
final class LayerTests: XCTestCase {
    /// All of `tensor` lies within `bound`, and the samples reach close to it (so the bound is the one used).
    func assertUniform(_ tensor: Tensor, bound: Float, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let largest = tensor.storage.map { abs($0) }.max()!
        XCTAssertLessThanOrEqual(largest, bound, "\(what): |w| <= 1/sqrt(fan_in) = \(bound)", file: file, line: line)
        XCTAssertGreaterThan(largest, 0.8 * bound, "\(what): samples should spread over +-\(bound)", file: file, line: line)
        XCTAssertTrue(
            tensor.storage.contains { $0 < 0 } && tensor.storage.contains { $0 > 0 }, "\(what): both signs",
            file: file, line: line)
    }

    func testPyTorchDefaultInitialisationBounds() {
        var g = SeededGenerator(seed: 1)
        let dense = Dense(inputSize: 50, outputSize: 40, using: &g)
        XCTAssertEqual(dense.weight.value.shape, [40, 50])
        assertUniform(dense.weight.value, bound: 1 / Float(50).squareRoot(), "Dense weight")
        assertUniform(dense.bias.value, bound: 1 / Float(50).squareRoot(), "Dense bias")

        let conv = Conv2D(inputChannels: 3, outputChannels: 32, kernelSize: 3, using: &g)
        XCTAssertEqual(conv.weight.value.shape, [32, 3, 3, 3])
        assertUniform(conv.weight.value, bound: 1 / Float(27).squareRoot(), "Conv2D weight (fan_in 3*3*3)")
        assertUniform(conv.bias.value, bound: 1 / Float(27).squareRoot(), "Conv2D bias")

        let transposed = ConvTranspose2D(inputChannels: 4, outputChannels: 40, kernelSize: 3, using: &g)
        XCTAssertEqual(transposed.weight.value.shape, [4, 40, 3, 3], "ConvTranspose2D weight is [in, out, k, k] as in PyTorch")
        XCTAssertEqual(transposed.bias.value.shape, [40])
        assertUniform(
            transposed.weight.value, bound: 1 / Float(360).squareRoot(), "ConvTranspose2D weight (fan_in out*k*k = 40*3*3, as PyTorch)")
        assertUniform(transposed.bias.value, bound: 1 / Float(360).squareRoot(), "ConvTranspose2D bias")
    }

    func testSameSeedSameInitialisation() {
        var a = SeededGenerator(seed: 5), b = SeededGenerator(seed: 5)
        XCTAssertEqual(
            Conv2D(inputChannels: 2, outputChannels: 3, kernelSize: 3, using: &a).weight.value,
            Conv2D(inputChannels: 2, outputChannels: 3, kernelSize: 3, using: &b).weight.value)
    }

    func testSequentialParameterNames() {
        var g = SeededGenerator(seed: 2)
        let model = Sequential([
            Conv2D(inputChannels: 1, outputChannels: 2, kernelSize: 3, using: &g), ReLU(),
            Conv2D(inputChannels: 2, outputChannels: 2, kernelSize: 3, using: &g), MaxPool2D(), Flatten(),
            Sequential([Dense(inputSize: 2, outputSize: 3, using: &g), Tanh(), Dense(inputSize: 3, outputSize: 2, using: &g)])
        ])
        XCTAssertEqual(
            model.namedParameters.map(\.name),
            ["0.weight", "0.bias", "2.weight", "2.bias", "5.0.weight", "5.0.bias", "5.2.weight", "5.2.bias"])
        XCTAssertEqual(model.parameterCount, (18 + 2) + (36 + 2) + (6 + 3) + (6 + 2))
        XCTAssertTrue(
            model.summary.hasPrefix("Sequential((0): Conv2d(1, 2, kernel_size=3, stride=1, padding=0), (1): ReLU()"),
            model.summary)
        XCTAssertEqual(prefixed("", [("weight", Parameter(Tensor(1)))]).map(\.name), ["weight"])
    }

    func testLayerShapes() {
        var g = SeededGenerator(seed: 3)
        let x = uniformTensor([2, 3, 8, 7], seed: 4)
        XCTAssertEqual(Conv2D(inputChannels: 3, outputChannels: 4, kernelSize: 3, stride: 2, padding: 1, using: &g)(x).shape, [2, 4, 4, 4])
        XCTAssertEqual(
            ConvTranspose2D(inputChannels: 3, outputChannels: 2, kernelSize: 4, stride: 2, padding: 1, using: &g)(x).shape,
            [2, 2, 16, 14])
        XCTAssertEqual(MaxPool2D(size: 2)(x).shape, [2, 3, 4, 3])
        XCTAssertEqual(Upsample2D(height: 11, width: 9)(x).shape, [2, 3, 11, 9])
        XCTAssertEqual(Flatten()(x).shape, [2, 168])
        XCTAssertEqual(Dense(inputSize: 168, outputSize: 5, using: &g)(Flatten()(x)).shape, [2, 5])
        XCTAssertEqual(Sigmoid()(x).storage.filter { $0 <= 0 || $0 >= 1 }.count, 0)
        XCTAssertEqual(ReLU()(x).storage.min(), 0)
    }

    func makeModel() -> Sequential {
        var g = SeededGenerator(seed: 6)
        return Sequential([
            Conv2D(inputChannels: 1, outputChannels: 2, kernelSize: 3, padding: 1, using: &g), Tanh(), MaxPool2D(), Flatten(),
            Dense(inputSize: 8, outputSize: 3, using: &g)
        ])
    }

    /// Inference on `Variable(tensor)` records nothing and gives the same numbers as training mode.
    func testInferenceWithoutTapeRecordsNothing() {
        let model = makeModel()
        let x = uniformTensor([2, 1, 4, 4], seed: 7)
        let output = model(Variable(x))
        XCTAssertNil(output.tape, "inference must not create or carry a tape")
        XCTAssertFalse(output.requiresGradient)
        let tape = Tape()
        let recorded = model(tape.watch(x))
        XCTAssertGreaterThan(tape.nodeCount, 0)
        XCTAssertEqual(recorded.value, output.value, "the tape does not change the forward values")
        XCTAssertEqual(model(x), output.value, "callAsFunction(Tensor) runs the same inference")
        XCTAssertEqual(model(Variable(x), layers: 0..<2).shape, [2, 2, 4, 4])
    }

    /// Without parameter recording the input gradient is the same and no parameter gets one.
    func testTapeWithoutParameters() {
        let model = makeModel()
        let x = uniformTensor([2, 1, 4, 4], seed: 8), labels = [0, 2]
        let full = Tape()
        let xFull = full.watch(x)
        let fullGrads = full.gradients(of: softmaxCrossEntropy(logits: model(xFull), labels: labels))
        let inputsOnly = Tape(recordsParameters: false)
        let xOnly = inputsOnly.watch(x)
        let grads = inputsOnly.gradients(of: softmaxCrossEntropy(logits: model(xOnly), labels: labels))
        XCTAssertNotNil(grads[xOnly])
        XCTAssertEqual(grads[xOnly], fullGrads[xFull])
        XCTAssertGreaterThan(grads[xOnly]!.storage.map { abs($0) }.max()!, 0, "the input gradient is not zero")
        for (name, parameter) in model.namedParameters {
            XCTAssertNotNil(fullGrads[object: parameter], "\(name) has a gradient on a full tape")
            XCTAssertNil(grads[object: parameter], "\(name) must not be watched when recordsParameters is false")
        }
        XCTAssertTrue(inputsOnly.parameterNodes.isEmpty)
    }

    /// Parameter gradients through layers equal central differences (step 1e-2, tolerance 1e-2
    /// on |a - n| / max(1, |a|, |n|)), including a Dense layer applied twice (its uses accumulate).
    func testParameterGradientsThroughLayers() {
        var g = SeededGenerator(seed: 9)
        let conv = Conv2D(inputChannels: 1, outputChannels: 2, kernelSize: 3, stride: 2, padding: 1, using: &g)
        let up = ConvTranspose2D(inputChannels: 2, outputChannels: 1, kernelSize: 2, stride: 2, using: &g)
        let shared = Dense(inputSize: 4, outputSize: 4, using: &g)
        let model = Sequential([
            conv, Tanh(), up, Sigmoid(), Flatten(), Dense(inputSize: 16, outputSize: 4, using: &g), Tanh(), shared,
            Tanh(), shared
        ])
        let x = uniformTensor([2, 1, 4, 4], seed: 10)
        func loss(_ input: Variable) -> Variable { softmaxCrossEntropy(logits: model(input), labels: [1, 3]) }
        let tape = Tape()
        let grads = tape.gradients(of: loss(tape.watch(x)))
        for (name, parameter) in model.namedParameters {
            let analytic = grads[object: parameter]!
            var worst: Float = 0
            for i in 0..<parameter.value.count {
                let saved = parameter.value.storage[i]
                parameter.value.storage[i] = saved + 1e-2
                let plus = Double(loss(Variable(x)).value.scalar)
                parameter.value.storage[i] = saved - 1e-2
                let minus = Double(loss(Variable(x)).value.scalar)
                parameter.value.storage[i] = saved
                let numeric = Float((plus - minus) / 2e-2), a = analytic.storage[i]
                worst = max(worst, abs(a - numeric) / max(1, abs(a), abs(numeric)))
            }
            XCTAssertLessThanOrEqual(worst, 1e-2, "\(name): worst finite-difference error \(worst) above 1e-2 (step 1e-2)")
            XCTAssertGreaterThan(analytic.storage.map { abs($0) }.max()!, 1e-4, "\(name): gradient is identically zero")
        }
    }
}

/// Uniform samples in `[low, high)` from a fixed seed.
func uniformTensor(_ shape: [Int], seed: UInt64, low: Float = -1, high: Float = 1) -> Tensor {
    var generator = SeededGenerator(seed: seed)
    return Tensor.uniform(shape, low: low, high: high, using: &generator)
}
