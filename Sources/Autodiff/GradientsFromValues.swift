import Tensors

extension Gradients {
    /// Gradients given directly for parameter objects (nil: none for that object), as an optimizer
    /// reads them: how data-parallel training hands over the gradients it summed over all ranks.
    public init(objects: [(object: AnyObject, gradient: Tensor?)]) {
        var nodes: [ObjectIdentifier: Int] = [:]
        for (index, entry) in objects.enumerated() { nodes[ObjectIdentifier(entry.object)] = index }
        self.init(values: objects.map(\.gradient), parameterNodes: nodes)
    }
}
