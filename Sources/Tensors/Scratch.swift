import Foundation

/// A pool of reusable scratch buffers for kernels (im2col columns, transposed
/// gradients), so that a training step does not pay page faults for fresh
/// multi-megabyte allocations on every call.
public final class ScratchPool: @unchecked Sendable {
    /// The process-wide pool.
    public static let shared = ScratchPool()

    private var free: [(pointer: UnsafeMutablePointer<Float>, capacity: Int)] = []
    private let lock = NSLock()

    /// Calls `body` with an uninitialised buffer of at least `count` floats.
    @inlinable
    public func withBuffer<R>(_ count: Int, _ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        let buffer = take(count)
        defer { give(buffer) }
        return try body(buffer.pointer)
    }

    @usableFromInline
    func take(_ count: Int) -> (pointer: UnsafeMutablePointer<Float>, capacity: Int) {
        lock.lock()
        defer { lock.unlock() }
        if let index = free.indices.filter({ free[$0].capacity >= count }).min(by: { free[$0].capacity < free[$1].capacity }) {
            return free.remove(at: index)
        }
        return (UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1)), max(count, 1))
    }

    @usableFromInline
    func give(_ buffer: (pointer: UnsafeMutablePointer<Float>, capacity: Int)) {
        lock.lock()
        defer { lock.unlock() }
        free.append(buffer)
        if free.count > 8 {
            // Keep the pool small: drop the smallest buffer.
            let smallest = free.indices.min { free[$0].capacity < free[$1].capacity }!
            free.remove(at: smallest).pointer.deallocate()
        }
    }
}
