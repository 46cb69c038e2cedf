import CBLAS
import Dispatch
import _ThreadPool
import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// Thread settings shared by the GEMM wrapper and the Swift kernels.
///
/// One thread pool does all the parallel work: this package's own (`_ThreadPool`), through `forEach`.
/// OpenBLAS itself runs single-threaded; `BLAS.gemm` splits large products into
/// per-thread blocks, and the convolution kernels give each thread its own images.
/// (OpenBLAS's own workers would spin after each call and fight the pool's workers for the cores.)
/// The pool keeps `threadCount - 1` workers, which spin for a bounded time after each parallel region
/// (`DAFAR_SPIN_MICROSECONDS`, 200 by default, yielding the core to any other thread that wants it) and
/// then sleep: waking a sleeping thread costs tens of microseconds here, which Dispatch's
/// `concurrentPerform` paid at most regions. A second thread that calls `forEach` while the pool runs
/// another's region uses Dispatch's workers instead (`DAFAR_THREAD_POOL=dispatch`: Dispatch for every region).
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
    /// The pool's workers start (or leave) now unless another thread's region runs, else at the next region.
    public static func setThreadCount(_ count: Int) {
        _ = runtimeConfigured
        _threadCount = max(1, count)
        if usesThreadPool { thread_pool_set_workers(Int32(min(_threadCount, 1024) - 1)) }
    }

    /// Whether `forEach` runs its chunks on the package's thread pool (the default) rather than on
    /// Dispatch's workers (`DAFAR_THREAD_POOL=dispatch` in the environment; for measurements).
    nonisolated(unsafe) public static var usesThreadPool: Bool = ProcessInfo.processInfo.environment["DAFAR_THREAD_POOL"] != "dispatch"

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
    /// calling thread when `threadCount` is 1, and inside a chunk of another `forEach` on the pool).
    /// The split depends only on `count` and `chunks`, not on the thread count, so per-chunk partial
    /// results summed in chunk order are the same with any number of threads.
    @inlinable
    public static func forEach(chunks: Int, of count: Int, _ body: (_ chunk: Int, _ range: Range<Int>) -> Void) {
        let chunks = min(chunks, count)
        if chunks <= 1 {
            if count > 0 { body(0, 0..<count) }
            return
        }
        let threads = threadCount
        if threads == 1 {
            for chunk in 0..<chunks {
                let range = (count * chunk / chunks)..<(count * (chunk + 1) / chunks)
                if !range.isEmpty { body(chunk, range) }
            }
            return
        }
        concurrently(chunks: chunks, of: count, threads: threads, body)
    }

    /// `forEach`'s chunks on `threads` threads: the pool's workers and this thread, or Dispatch's
    /// workers when the pool runs another thread's region (or `usesThreadPool` is false).
    @usableFromInline
    static func concurrently(chunks: Int, of count: Int, threads: Int, _ body: (_ chunk: Int, _ range: Range<Int>) -> Void) {
        // `body` is not `@Sendable`: the kernels hand it raw pointers and write disjoint ranges of
        // them, a contract that the type system cannot state, so it crosses threads unchecked (as a
        // raw pointer to the pool, in a box to Dispatch), and only for the duration of this call.
        withoutActuallyEscaping(body) { body in
            if usesThreadPool, chunks <= Int(Int32.max) {
                var job = PoolJob(count: count, chunks: chunks, body: body)
                let status = withUnsafeMutablePointer(to: &job) { job in
                    thread_pool_run(
                        { job, chunk in job.unsafelyUnwrapped.assumingMemoryBound(to: PoolJob.self).pointee.run(Int(chunk)) },
                        job, Int32(chunks), Int32(min(threads, 1024)))
                }
                if status != THREAD_POOL_BUSY { return }
            }
            let shared = UncheckedSendableBox(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                let part = (count * chunk / chunks)..<(count * (chunk + 1) / chunks)
                if !part.isEmpty { shared.value(chunk, part) }
            }
        }
    }
}

/// One `Parallel.forEach` region handed to the thread pool: what its C trampoline needs to run a chunk.
private struct PoolJob {
    let count: Int
    let chunks: Int
    let body: (_ chunk: Int, _ range: Range<Int>) -> Void

    /// Runs chunk `chunk` of `0..<count` split into `chunks` (nothing when its range is empty).
    func run(_ chunk: Int) {
        let part = (count * chunk / chunks)..<(count * (chunk + 1) / chunks)
        if !part.isEmpty { body(chunk, part) }
    }
}

/// A value handed to other threads on the caller's word that it is safe there (see `Parallel.forEach`).
@usableFromInline
struct UncheckedSendableBox<Value>: @unchecked Sendable {
    @usableFromInline let value: Value
    @inlinable init(_ value: Value) { self.value = value }
}
