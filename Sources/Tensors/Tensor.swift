import Foundation

/// A dense, row-major array of `Float` values with a shape.
///
/// Images are stored NCHW: `[batch, channels, height, width]`. `Tensor` has value
/// semantics (its storage is a copy-on-write Swift array), so passing one around
/// never copies until somebody writes to it.
public struct Tensor: Equatable, Sendable {
    /// The extent of each axis, outermost first.
    public private(set) var shape: [Int]
    /// The elements, row-major; `storage.count == shape.product`.
    public var storage: [Float]

    /// Creates a tensor from its shape and elements.
    /// - Precondition: `storage.count` equals the product of `shape`.
    public init(shape: [Int], storage: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor shape \(shape) has a negative axis")
        precondition(
            storage.count == shape.elementCount,
            "Tensor shape \(shape) needs \(shape.elementCount) elements, got \(storage.count)")
        self.shape = shape
        self.storage = storage
    }

    /// Creates a tensor of the given shape with every element equal to `value`.
    public init(shape: [Int], repeating value: Float = 0) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor shape \(shape) has a negative axis")
        self.shape = shape
        self.storage = [Float](repeating: value, count: shape.elementCount)
    }

    /// A scalar (rank-0) tensor.
    public init(_ scalar: Float) {
        self.init(shape: [], storage: [scalar])
    }

    /// Creates a tensor whose elements are written by `body` into uninitialised storage.
    /// `body` must write every one of the `shape.elementCount` elements.
    public init(shape: [Int], unsafeUninitialized body: (UnsafeMutablePointer<Float>) throws -> Void) rethrows {
        let count = shape.elementCount
        self.shape = shape
        self.storage = try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            try body(buffer.baseAddress!)
            initialized = count
        }
    }

    /// A zero-filled tensor.
    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(shape: shape, repeating: 0) }

    /// Number of elements.
    @inlinable public var count: Int { storage.count }
    /// Number of axes.
    @inlinable public var rank: Int { shape.count }
    /// The first axis (the batch size for batched data).
    public var batchSize: Int { shape.first ?? 1 }
    /// Elements per item of the first axis (`count / shape[0]`).
    public var itemCount: Int { shape.isEmpty ? 1 : (shape[0] == 0 ? shape.dropFirst().elementCount : count / shape[0]) }

    /// The only element of a one-element tensor.
    public var scalar: Float {
        precondition(count == 1, "scalar of a tensor with shape \(shape)")
        return storage[0]
    }

    /// The same elements seen with another shape of equal element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(
            newShape.elementCount == count,
            "cannot reshape a tensor of shape \(shape) to \(newShape)")
        var result = self
        result.shape = newShape
        return result
    }

    /// Items `range` of the first axis, as a new tensor.
    public func slice(_ range: Range<Int>) -> Tensor {
        precondition(
            rank >= 1 && range.lowerBound >= 0 && range.upperBound <= shape[0],
            "slice \(range) out of bounds for shape \(shape)")
        let item = itemCount
        var newShape = shape
        newShape[0] = range.count
        return Tensor(shape: newShape, storage: Array(storage[(range.lowerBound * item)..<(range.upperBound * item)]))
    }

    /// Gathers the items at `indices` of the first axis into a new tensor.
    public func gather(_ indices: [Int]) -> Tensor {
        let item = itemCount
        var newShape = shape
        newShape[0] = indices.count
        return Tensor(shape: newShape) { out in
            storage.withUnsafeBufferPointer { src in
                for (row, index) in indices.enumerated() {
                    precondition(index >= 0 && index < shape[0], "gather index \(index) out of bounds for shape \(shape)")
                    (out + row * item).update(from: src.baseAddress! + index * item, count: item)
                }
            }
        }
    }

    /// Concatenates tensors along the first axis; the other axes must agree.
    public static func concatenate(_ parts: [Tensor]) -> Tensor {
        precondition(!parts.isEmpty, "concatenate needs at least one tensor")
        let tail = Array(parts[0].shape.dropFirst())
        var storage = [Float]()
        storage.reserveCapacity(parts.reduce(0) { $0 + $1.count })
        var rows = 0
        for part in parts {
            precondition(
                Array(part.shape.dropFirst()) == tail,
                "cannot concatenate shapes \(parts[0].shape) and \(part.shape)")
            storage += part.storage
            rows += part.shape.first ?? 1
        }
        return Tensor(shape: [rows] + tail, storage: storage)
    }

    /// Calls `body` with a pointer to the elements.
    @inlinable
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try storage.withUnsafeBufferPointer(body)
    }

    /// Calls `body` with a mutable pointer to the elements.
    @inlinable
    public mutating func withUnsafeMutableBufferPointer<R>(_ body: (inout UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        try storage.withUnsafeMutableBufferPointer(body)
    }
}

extension Array where Element == Int {
    /// The product of the elements (1 for an empty shape).
    @inlinable public var elementCount: Int { reduce(1, *) }
}

extension ArraySlice where Element == Int {
    /// The product of the elements (1 for an empty shape).
    @inlinable public var elementCount: Int { reduce(1, *) }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = storage.prefix(8).map { String(format: "%.4g", Double($0)) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(shown)\(count > 8 ? ", ..." : "")])"
    }
}

/// Checks that two shapes are equal, with a message naming both.
@inlinable
public func precondition(shape a: [Int], equals b: [Int], _ what: @autoclosure () -> String) {
    precondition(a == b, "\(what()): shape \(a) does not match shape \(b)")
}
