import Dispatch
import Tensors

/// Records differentiable operations for one forward pass and runs them backwards.
///
/// Build a fresh tape for every training step (there is no gradient state to
/// zero). Values enter a tape through `watch` (inputs whose gradient you want,
/// parameters) or `constant`; every op on a tape-carrying `Variable` appends a
/// node holding its backward closure. `gradients(of:)` walks the nodes in reverse
/// creation order, which is a valid reverse topological order, without recursion.
///
/// Backward closures receive the upstream gradient and return one gradient per
/// parent (nil for parents that do not need one); the tape accumulates them.
public final class Tape {
    /// One recorded operation.
    struct Node {
        /// The op that made the node (`conv2d`, `+`, ...); nil for watched inputs and constants.
        var op: StaticString?
        /// Shape of the node's value: every gradient flowing into the node must have it.
        var shape: [Int]
        var parents: [Int]
        var backward: ((Tensor) -> [Tensor?])?
    }

    var nodes: [Node] = []
    var parameterNodes: [ObjectIdentifier: Int] = [:]
    var parameterObjects: [ObjectIdentifier: AnyObject] = [:]

    /// Whether layer parameters are watched (false for attacks, which only need
    /// d loss / d input and so skip the weight-gradient GEMMs).
    public let recordsParameters: Bool

    /// Creates an empty tape.
    public init(recordsParameters: Bool = true) { self.recordsParameters = recordsParameters }

    /// Number of recorded nodes.
    public var nodeCount: Int { nodes.count }

    /// The op that recorded each node, in creation order (`nil` for watched inputs and parameters):
    /// what a shape or NaN failure in `gradients(of:)` names.
    public var recordedOps: [String?] { nodes.map { $0.op.map { "\($0)" } } }

    /// A value whose gradient will be computed (an input an attack perturbs, say).
    public func watch(_ value: Tensor) -> Variable {
        nodes.append(Node(op: nil, shape: value.shape, parents: [], backward: nil))
        return Variable(value: value, tape: self, index: nodes.count - 1)
    }

    /// A value carried on the tape that needs no gradient (training images, say).
    public func constant(_ value: Tensor) -> Variable {
        Variable(value: value, tape: self, index: Variable.noGradient)
    }

    /// The variable of a trainable value identified by `object` (a layer parameter).
    /// Watched once per tape: every use of the same object shares one node.
    public func watch(_ object: AnyObject, value: Tensor) -> Variable {
        let key = ObjectIdentifier(object)
        if let index = parameterNodes[key] {
            return Variable(value: value, tape: self, index: index)
        }
        let variable = watch(value)
        parameterNodes[key] = variable.index
        parameterObjects[key] = object
        return variable
    }

    /// When true, `gradients(of:)` adds the seconds each node's backward took (its closure and the
    /// accumulation of its results) to `backwardSeconds[node]`: the per-layer profile of `dafar-bench`.
    public var measuresBackwardTimes = false

    /// Seconds spent in each node's backward (see `measuresBackwardTimes`); empty when not measured.
    public private(set) var backwardSeconds: [Double] = []

    /// When true, `gradients(of:)` stops at the first op whose backward produces a NaN or infinite
    /// gradient and names it (a debugging aid: it reads every gradient once more).
    public var checksFiniteGradients = false

    func record(_ value: Tensor, op: StaticString, parents: [Variable], backward: @escaping (Tensor) -> [Tensor?]) -> Variable {
        nodes.append(Node(op: op, shape: value.shape, parents: parents.map(\.index), backward: backward))
        return Variable(value: value, tape: self, index: nodes.count - 1)
    }

    /// Gradients of the scalar `output` with respect to everything watched on this tape.
    ///
    /// - Parameter seed: the upstream gradient of `output` (default: ones, i.e.
    ///   d output / d output = 1). Give a one-hot seed to get one row of a Jacobian.
    public func gradients(of output: Variable, seed: Tensor? = nil) -> Gradients {
        precondition(output.tape === self, "gradients(of:) needs a variable recorded on this tape")
        var grads = [Tensor?](repeating: nil, count: nodes.count)
        guard output.index >= 0 else { return Gradients(values: grads, parameterNodes: parameterNodes) }
        let start = seed ?? Tensor(shape: output.value.shape, repeating: 1)
        precondition(
            start.shape == output.value.shape,
            "gradient seed shape \(start.shape) does not match output shape \(output.value.shape)")
        grads[output.index] = start
        if measuresBackwardTimes { backwardSeconds = [Double](repeating: 0, count: nodes.count) }
        var i = output.index
        while i >= 0 {
            defer { i -= 1 }
            guard let upstream = grads[i], let backward = nodes[i].backward else { continue }
            let parents = nodes[i].parents
            let started = measuresBackwardTimes ? DispatchTime.now().uptimeNanoseconds : 0
            defer { if measuresBackwardTimes { backwardSeconds[i] = Double(DispatchTime.now().uptimeNanoseconds - started) * 1e-9 } }
            let parentGrads = backward(upstream)
            for (parent, grad) in zip(parents, parentGrads) where parent >= 0 {
                guard let grad else { continue }
                let op = nodes[i].op.map { "\($0)" } ?? "input"
                precondition(
                    grad.shape == nodes[parent].shape,
                    "backward of \(op) (tape node \(i)) gave a gradient of shape \(grad.shape) for an input of shape \(nodes[parent].shape)"
                )
                if checksFiniteGradients {
                    precondition(
                        grad.storage.allSatisfy(\.isFinite),
                        "backward of \(op) (tape node \(i)) gave a NaN or infinite gradient; its upstream gradient "
                            + (upstream.storage.allSatisfy(\.isFinite) ? "was finite" : "was not finite either"))
                }
                if grads[parent] == nil { grads[parent] = grad } else { grads[parent]!.add(grad) }
            }
            if i != output.index && !isLeaf(i) { grads[i] = nil }  // free intermediate gradients early
        }
        return Gradients(values: grads, parameterNodes: parameterNodes)
    }

    func isLeaf(_ index: Int) -> Bool { nodes[index].backward == nil }
}

/// The gradients returned by `Tape.gradients(of:)`.
public struct Gradients {
    let values: [Tensor?]
    let parameterNodes: [ObjectIdentifier: Int]

    /// The gradient for a watched variable (nil if the output does not depend on it).
    public subscript(_ variable: Variable) -> Tensor? {
        variable.index >= 0 && variable.index < values.count ? values[variable.index] : nil
    }

    /// The gradient for a watched object (a parameter), nil if unused.
    public subscript(object object: AnyObject) -> Tensor? {
        guard let index = parameterNodes[ObjectIdentifier(object)] else { return nil }
        return values[index]
    }
}

/// A tensor value, optionally carried on a tape so that ops on it are recorded.
///
/// Without a tape (`Variable(tensor)`), ops compute values only: this is how
/// inference runs, with no recording and no gradient storage.
public struct Variable {
    static let noGradient = -1

    /// The forward value.
    public let value: Tensor
    /// The tape that records ops on this value, if any.
    public let tape: Tape?
    /// The node index on the tape, or -1 when no gradient flows to this value.
    public let index: Int

    /// A constant, off any tape.
    public init(_ value: Tensor) {
        self.value = value
        self.tape = nil
        self.index = Variable.noGradient
    }

    init(value: Tensor, tape: Tape?, index: Int) {
        self.value = value
        self.tape = tape
        self.index = index
    }

    /// Shape of the value.
    public var shape: [Int] { value.shape }
    /// True when gradients flow back through this value.
    public var requiresGradient: Bool { index >= 0 }

    /// Records an op result: on the first tape found among `parents` if any parent
    /// needs a gradient; otherwise a plain value (kept on the tape as a constant).
    static func result(
        _ value: Tensor, _ parents: [Variable], op: StaticString,
        backward: @escaping (Tensor) -> [Tensor?]
    ) -> Variable {
        let tape = parents.lazy.compactMap(\.tape).first
        guard let tape, parents.contains(where: \.requiresGradient) else {
            return Variable(value: value, tape: tape, index: noGradient)
        }
        return tape.record(value, op: op, parents: parents, backward: backward)
    }

    /// An op result through which no gradient flows (none of its parents requires one), as `result` makes it: a
    /// constant on the first parent's tape, if any. Without the array of parents and the backward closure that
    /// `result` takes (an inference through a network made them per layer).
    static func untracked(_ value: Tensor, _ first: Variable, _ second: Variable? = nil, _ third: Variable? = nil) -> Variable {
        precondition(
            !first.requiresGradient && second?.requiresGradient != true && third?.requiresGradient != true,
            "an untracked op result of parents that require gradients")
        return Variable(value: value, tape: first.tape ?? second?.tape ?? third?.tape, index: noGradient)
    }

    /// Whether none of an op's parents requires a gradient (its result is then `untracked`).
    static func noneRequiresGradient(_ first: Variable, _ second: Variable, _ third: Variable?) -> Bool {
        !first.requiresGradient && !second.requiresGradient && third?.requiresGradient != true
    }

    /// The same value detached from gradient flow (kept on the tape as a constant).
    public func detached() -> Variable { Variable(value: value, tape: tape, index: Variable.noGradient) }
}
