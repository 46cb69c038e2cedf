import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A pool of reusable scratch buffers for kernels (im2col columns, transposed
/// gradients, padded images), so that a training step does not pay page faults for fresh
/// multi-megabyte allocations on every call.
///
/// Buffers of up to `threadLocalLimit` floats are kept per thread: a thread gets back the buffers it
/// used itself, whose lines are still in its own cache. (From one shared list a thread would often get
/// the buffer another thread wrote last, and every line it writes would first be fetched from that
/// thread's cache: on a host that places the two cores on different dies, a 400 ns round trip each,
/// which made the batch-1 inference figure 40 % slower there.) Larger buffers come from one list shared
/// by all threads, which keeps the memory that idle threads hold small.
public final class ScratchPool: @unchecked Sendable {
    /// The process-wide pool.
    public static let shared = ScratchPool()

    /// The largest buffer (floats) kept in a thread's own list: 256 K floats, 1 MiB.
    public static let threadLocalLimit = 1 << 18

    /// Buffers kept per list (the shared one, and each thread's).
    static let buffersPerList = 8

    /// Free buffers, smallest dropped first when more than `buffersPerList` are kept.
    @usableFromInline
    final class FreeList {
        var buffers: [(pointer: UnsafeMutablePointer<Float>, capacity: Int)] = []

        /// The smallest free buffer of at least `count` floats, removed from the list.
        func take(_ count: Int) -> (pointer: UnsafeMutablePointer<Float>, capacity: Int)? {
            var best: Int?
            for index in buffers.indices where buffers[index].capacity >= count {
                if best.map({ buffers[index].capacity < buffers[$0].capacity }) ?? true { best = index }
            }
            return best.map { buffers.remove(at: $0) }
        }

        func give(_ buffer: (pointer: UnsafeMutablePointer<Float>, capacity: Int)) {
            buffers.append(buffer)
            if buffers.count > ScratchPool.buffersPerList {
                let smallest = buffers.indices.min { buffers[$0].capacity < buffers[$1].capacity }!
                buffers.remove(at: smallest).pointer.deallocate()
            }
        }

        deinit { for buffer in buffers { buffer.pointer.deallocate() } }
    }

    private let shared = FreeList()
    private let lock = NSLock()

    /// Each thread's own `FreeList` (released, with its buffers, when the thread exits).
    private let threadKey: pthread_key_t = {
        var key = pthread_key_t()
        let status = pthread_key_create(&key) { list in
            if let list { Unmanaged<FreeList>.fromOpaque(list).release() }
        }
        precondition(status == 0, "pthread_key_create failed (\(status))")
        return key
    }()

    /// The calling thread's list, made on first use.
    private var threadList: FreeList {
        if let list = pthread_getspecific(threadKey) { return Unmanaged<FreeList>.fromOpaque(list).takeUnretainedValue() }
        let list = FreeList()
        pthread_setspecific(threadKey, Unmanaged.passRetained(list).toOpaque())
        return list
    }

    /// Calls `body` with an uninitialised buffer of at least `count` floats.
    @inlinable
    public func withBuffer<R>(_ count: Int, _ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        let buffer = take(count)
        defer { give(buffer) }
        return try body(buffer.pointer)
    }

    @usableFromInline
    func take(_ count: Int) -> (pointer: UnsafeMutablePointer<Float>, capacity: Int) {
        let count = max(count, 1)
        if count <= Self.threadLocalLimit, let buffer = threadList.take(count) { return buffer }
        lock.lock()
        defer { lock.unlock() }
        return shared.take(count) ?? (UnsafeMutablePointer<Float>.allocate(capacity: count), count)
    }

    @usableFromInline
    func give(_ buffer: (pointer: UnsafeMutablePointer<Float>, capacity: Int)) {
        if buffer.capacity <= Self.threadLocalLimit {
            threadList.give(buffer)
            return
        }
        lock.lock()
        defer { lock.unlock() }
        shared.give(buffer)
    }
}
