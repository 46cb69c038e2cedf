import CBLAS
import Dispatch
import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// Thread settings shared by the GEMM wrapper and the Swift kernels.
///
/// One thread pool does all the parallel work: Dispatch's, through `forEachChunk`.
/// OpenBLAS itself runs single-threaded; `BLAS.gemm` splits large products into
/// per-thread blocks, and the convolution kernels give each thread its own images.
/// (OpenBLAS's own workers spin for a while after each call and then fight the
/// Dispatch workers for the cores; with one pool nothing spins.)
///
/// Set the count once, early (the command-line tools do it from `--threads`);
/// kernels read `Parallel.threadCount` to decide how many chunks to split work into.
/// Every split of a sum depends on the shapes only (`BLAS.gemm`'s two blocks, the 8 image
/// chunks of a convolution's weight gradient), never on the thread count, so results are the
/// same bits with 1 thread or up to 8 (`ThreadCountTests`).
public enum Parallel {
    nonisolated(unsafe) private static var _threadCount: Int = ProcessInfo.processInfo.activeProcessorCount

    /// Number of threads the kernels split work across: 1 inside `onCallingThread`.
    public static var threadCount: Int {
        _ = runtimeConfigured
        return pthread_getspecific(callingThreadOnly) == nil ? _threadCount : 1
    }

    /// Runs `body` with every kernel it calls on the calling thread (`threadCount` reads 1 there, and
    /// only there): how independent pieces of work (the gradient groups of a training step) run side
    /// by side, one per thread, instead of one after the other with each kernel split across threads.
    /// Kernels give the same bits for 1 and 2 threads, so this changes the schedule, not the results.
    public static func onCallingThread<Result>(_ body: () throws -> Result) rethrows -> Result {
        let outer = pthread_getspecific(callingThreadOnly)
        pthread_setspecific(callingThreadOnly, UnsafeRawPointer(bitPattern: 1))
        defer { pthread_setspecific(callingThreadOnly, outer) }
        return try body()
    }

    /// The thread-specific flag of `onCallingThread` (non-nil: kernels stay on this thread).
    private static let callingThreadOnly: pthread_key_t = {
        var key = pthread_key_t()
        let status = pthread_key_create(&key, nil)
        precondition(status == 0, "pthread_key_create failed (\(status))")
        return key
    }()

    /// Sets the number of threads for the Swift kernels and the GEMM wrapper (clamped to >= 1).
    public static func setThreadCount(_ count: Int) {
        _ = runtimeConfigured
        _threadCount = max(1, count)
    }

    /// Number of cores the operating system reports.
    public static var availableCores: Int { ProcessInfo.processInfo.activeProcessorCount }

    /// One-time process settings, made before the first kernel runs: OpenBLAS on one thread
    /// (see above), and glibc's malloc told to keep freed memory up to 32 MiB blocks in its heap
    /// instead of returning it to the system, so that the tensors each training step allocates
    /// reuse pages instead of paying a page fault per 4 KiB every step.
    @usableFromInline
    static let runtimeConfigured: Void = {
        openblas_set_num_threads(1)
        #if os(Linux)
            _ = mallopt(M_MMAP_THRESHOLD, 32 << 20)
            _ = mallopt(M_TRIM_THRESHOLD, 512 << 20)
        #endif
    }()

    /// Runs `body` over `0..<count` split into contiguous chunks, one per thread.
    ///
    /// Work smaller than `minimumPerChunk` items stays on the calling thread.
    @inlinable
    public static func forEachChunk(_ count: Int, minimumPerChunk: Int = 4096, _ body: (Range<Int>) -> Void) {
        let chunks = min(threadCount, max(1, count / max(1, minimumPerChunk)))
        forEach(chunks: chunks, of: count) { _, range in body(range) }
    }

    /// Runs `body(chunk, range)` over `0..<count` split into exactly `chunks` contiguous chunks (fewer when
    /// `count < chunks`), run concurrently on up to `threadCount` threads (in order on the
    /// calling thread when `threadCount` is 1). The split depends only on `count` and
    /// `chunks`, not on the thread count, so per-chunk partial results summed in chunk order
    /// are the same with any number of threads.
    @inlinable
    public static func forEach(chunks: Int, of count: Int, _ body: (_ chunk: Int, _ range: Range<Int>) -> Void) {
        let chunks = min(chunks, count)
        if chunks <= 1 {
            if count > 0 { body(0, 0..<count) }
            return
        }
        func range(_ chunk: Int) -> Range<Int> { (count * chunk / chunks)..<(count * (chunk + 1) / chunks) }
        if threadCount == 1 {
            for chunk in 0..<chunks where !range(chunk).isEmpty { body(chunk, range(chunk)) }
            return
        }
        // The chunks' bodies run at once on Dispatch's workers. `body` is not `@Sendable`: the
        // kernels hand it raw pointers and write disjoint ranges of them, a contract that the
        // type system cannot state, so it crosses threads in an unchecked box, and only for the
        // duration of this call.
        withoutActuallyEscaping(body) { body in
            let shared = UncheckedSendableBox(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                let part = (count * chunk / chunks)..<(count * (chunk + 1) / chunks)
                if !part.isEmpty { shared.value(chunk, part) }
            }
        }
    }
}

/// A value handed to other threads on the caller's word that it is safe there (see `Parallel.forEach`).
@usableFromInline
struct UncheckedSendableBox<Value>: @unchecked Sendable {
    @usableFromInline let value: Value
    @inlinable init(_ value: Value) { self.value = value }
}
