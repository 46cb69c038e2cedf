import Autodiff
import Tensors

/// A trainable tensor with a stable identity (its gradients are found by identity
/// on the tape) and a name relative to its layer (`weight`, `bias`).
///
/// Sendable on this contract: a model's parameters change only while it is trained, from the one
/// task that trains it; a model that is shared (inference, attacks, a service) is only read, and
/// reading from many tasks at once gives the results of reading from one.
public final class Parameter: @unchecked Sendable {
    /// The current value.
    public var value: Tensor

    /// Creates a parameter holding `value`.
    public init(_ value: Tensor) { self.value = value }

    /// The parameter as a variable: watched on `tape` when the tape records
    /// parameters, else a constant.
    public func variable(on tape: Tape?) -> Variable {
        guard let tape, tape.recordsParameters else {
            return tape?.constant(value) ?? Variable(value)
        }
        return tape.watch(self, value: value)
    }
}

/// A named parameter, as in a PyTorch `state_dict` (`"0.weight"`, `"features.3.bias"`).
public typealias NamedParameter = (name: String, parameter: Parameter)

/// A differentiable layer.
///
/// Layers read their tape from their input: a variable on a tape records the ops
/// (training, attacks), a plain `Variable(tensor)` runs inference without one.
public protocol Layer: AnyObject, Sendable {
    /// Applies the layer.
    func callAsFunction(_ input: Variable) -> Variable
    /// The layer's parameters with names relative to the layer, in PyTorch's order.
    var namedParameters: [NamedParameter] { get }
    /// A one-line description in PyTorch's notation (`Conv2d(1, 32, kernel_size=3)`).
    var summary: String { get }
}

extension Layer {
    public var namedParameters: [NamedParameter] { [] }

    /// Runs the layer on a tensor without a tape (inference).
    public func callAsFunction(_ input: Tensor) -> Tensor { self(Variable(input)).value }

    /// Number of scalar parameters.
    public var parameterCount: Int { namedParameters.reduce(0) { $0 + $1.parameter.value.count } }
}

/// The output of `flattened` parameter lists with a prefix: `prefix.name`.
public func prefixed(_ prefix: String, _ parameters: [NamedParameter]) -> [NamedParameter] {
    parameters.map { (prefix.isEmpty ? $0.name : "\(prefix).\($0.name)", $0.parameter) }
}
