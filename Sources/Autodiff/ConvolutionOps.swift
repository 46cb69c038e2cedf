import Tensors

/// 2-D convolution: `input [N, C, H, W]`, `weight [O, C, KH, KW]`, `bias [O]` -> `[N, O, OH, OW]`.
///
/// `reLU: true` is `conv2d(...).relu()` as one op: the ReLU runs on each image's output while it is in
/// cache, and its backward masks the upstream gradient inside the convolution's backward (same results
/// bit for bit, one pass over the output and one tensor fewer each way).
public func conv2d(
    _ input: Variable, weight: Variable, bias: Variable?, stride: Int = 1, padding: Int = 0,
    reLU: Bool = false
) -> Variable {
    let y = ConvolutionKernels.forward(
        input: input.value, weight: weight.value, bias: bias?.value, stride: stride, padding: padding, reLU: reLU)
    return conv2dResult(y, input, weight: weight, bias: bias, stride: stride, padding: padding, reLU: reLU)
}

/// `conv2d(...).maxPool2d(size: 2)` (with the fused ReLU of `reLU`) as one op: the pooling computed inside the
/// convolution's pass, each image while its output is in cache, and the backward unpooling each image's
/// gradient in cache before the passes that read it. The same values and gradients as the layers one by one.
public func conv2dMaxPool(
    _ input: Variable, weight: Variable, bias: Variable?, stride: Int = 1, padding: Int = 0,
    reLU: Bool = false
) -> Variable {
    let (x, w) = (input.value, weight.value)
    let (y, pooled, argmax) = ConvolutionKernels.forwardPooled(
        input: x, weight: w, bias: bias?.value, stride: stride, padding: padding, reLU: reLU)
    if Variable.noneRequiresGradient(input, weight, bias) { return Variable.untracked(pooled, input, weight, bias) }
    let needInput = input.requiresGradient, needWeight = weight.requiresGradient || bias?.requiresGradient == true
    let parents = bias.map { [input, weight, $0] } ?? [input, weight]
    let hasBias = bias != nil
    let mask: Tensor? = reLU ? y : nil
    return Variable.result(pooled, parents, op: reLU ? "conv2d+relu+maxPool2d" : "conv2d+maxPool2d") { g in
        let grads = ConvolutionKernels.backwardThroughPool(
            input: x, weight: w, pooledGradient: g, argmax: argmax, stride: stride, padding: padding,
            needInputGradient: needInput, needWeightGradient: needWeight, reLUOutput: mask)
        return hasBias ? [grads.input, grads.weight, grads.bias] : [grads.input, grads.weight]
    }
}

/// The tape entry of a convolution whose output `y` is computed.
func conv2dResult(
    _ y: Tensor, _ input: Variable, weight: Variable, bias: Variable?, stride: Int, padding: Int, reLU: Bool
) -> Variable {
    if Variable.noneRequiresGradient(input, weight, bias) { return Variable.untracked(y, input, weight, bias) }
    let (x, w) = (input.value, weight.value)
    let needInput = input.requiresGradient, needWeight = weight.requiresGradient || bias?.requiresGradient == true
    let parents = bias.map { [input, weight, $0] } ?? [input, weight]
    let hasBias = bias != nil  // capture a flag, not the Variable: a Variable holds its tape (no cycle)
    let mask: Tensor? = reLU ? y : nil
    return Variable.result(y, parents, op: reLU ? "conv2d+relu" : "conv2d") { g in
        let grads = ConvolutionKernels.backward(
            input: x, weight: w, outputGradient: g, stride: stride, padding: padding,
            needInputGradient: needInput, needWeightGradient: needWeight, reLUOutput: mask)
        return hasBias ? [grads.input, grads.weight, grads.bias] : [grads.input, grads.weight]
    }
}

/// 2-D transposed convolution: `input [N, I, H, W]`, `weight [I, O, KH, KW]`, `bias [O]`
/// -> `[N, O, (H-1)*stride - 2*padding + KH, (W-1)*stride - 2*padding + KW]`.
///
/// `reLU: true` fuses a following ReLU, as in `conv2d`.
public func convTranspose2d(
    _ input: Variable, weight: Variable, bias: Variable?, stride: Int = 1, padding: Int = 0,
    reLU: Bool = false
) -> Variable {
    let (x, w) = (input.value, weight.value)
    let y = ConvolutionKernels.transposedForward(input: x, weight: w, bias: bias?.value, stride: stride, padding: padding, reLU: reLU)
    if Variable.noneRequiresGradient(input, weight, bias) { return Variable.untracked(y, input, weight, bias) }
    let needInput = input.requiresGradient, needWeight = weight.requiresGradient || bias?.requiresGradient == true
    let parents = bias.map { [input, weight, $0] } ?? [input, weight]
    let hasBias = bias != nil  // capture a flag, not the Variable: a Variable holds its tape (no cycle)
    let mask: Tensor? = reLU ? y : nil
    return Variable.result(y, parents, op: reLU ? "convTranspose2d+relu" : "convTranspose2d") { g in
        let grads = ConvolutionKernels.transposedBackward(
            input: x, weight: w, outputGradient: g, stride: stride,
            padding: padding, needInputGradient: needInput,
            needWeightGradient: needWeight, reLUOutput: mask)
        return hasBias ? [grads.input, grads.weight, grads.bias] : [grads.input, grads.weight]
    }
}

/// `convTranspose2d` of the 2x nearest upsampling `[N, I, 2H, 2W]` of `input` `[N, I, H, W]` when `upsampling`, then
/// (when `sigmoid`) the logistic function of its output: the same values as `input.upsampleNearest(height: 2H, width:
/// 2W)`, `convTranspose2d` and `sigmoid()` one after the other. Without gradients (inference) one pass: the kernels
/// upsample each image in cache as they read it and apply the sigmoid to the outputs they have just made
/// (`ConvolutionKernels.transposedForward`); when any of the three requires a gradient, the ops one by one.
public func convTranspose2d(
    _ input: Variable, weight: Variable, bias: Variable?, stride: Int = 1, padding: Int = 0, reLU: Bool = false,
    upsampling: Bool, sigmoid: Bool
) -> Variable {
    precondition(!upsampling || input.value.rank == 4, "upsample needs a [N, C, H, W] input, got \(input.shape)")
    guard Variable.noneRequiresGradient(input, weight, bias) else {
        let upsampled = upsampling ? input.upsampleNearest(height: 2 * input.shape[2], width: 2 * input.shape[3]) : input
        let y = convTranspose2d(upsampled, weight: weight, bias: bias, stride: stride, padding: padding, reLU: reLU)
        return sigmoid ? y.sigmoid() : y
    }
    let y = ConvolutionKernels.transposedForward(
        input: input.value, weight: weight.value, bias: bias?.value, stride: stride, padding: padding, reLU: reLU,
        upsampling: upsampling, sigmoid: sigmoid)
    return Variable.untracked(y, input, weight, bias)
}

extension Variable {
    /// Max pooling with a `size x size` window and stride `size` (floor mode).
    public func maxPool2d(size: Int = 2) -> Variable {
        let (output, argmax) = PoolingKernels.maxPool(value, size: size)
        return maxPool2dResult(output, argmax: argmax)
    }

    /// The tape entry of a max pooling of this variable whose output and argmax are computed.
    func maxPool2dResult(_ output: Tensor, argmax: [Int32]) -> Variable {
        let inputShape = shape
        return Variable.result(output, [self], op: "maxPool2d") { g in
            [PoolingKernels.maxPoolBackward(outputGradient: g, argmax: argmax, inputShape: inputShape)]
        }
    }

    /// Nearest-neighbour upsampling of `[N, C, H, W]` to `[N, C, height, width]`.
    public func upsampleNearest(height: Int, width: Int) -> Variable {
        let inputShape = shape
        return Variable.result(PoolingKernels.upsampleNearest(value, height: height, width: width), [self], op: "upsampleNearest") { g in
            [PoolingKernels.upsampleNearestBackward(outputGradient: g, inputShape: inputShape)]
        }
    }

    /// The same values with another shape.
    public func reshaped(_ newShape: [Int]) -> Variable {
        let old = shape
        return Variable.result(value.reshaped(newShape), [self], op: "reshaped") { g in [g.reshaped(old)] }
    }

    /// `[N, ...] -> [N, product of the rest]`.
    public func flattened() -> Variable { reshaped([shape[0], value.itemCount]) }
}
