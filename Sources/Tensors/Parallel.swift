import CBLAS
import Dispatch
import Foundation

/// Thread settings shared by OpenBLAS and the Swift kernels.
///
/// Set once, early (the command-line tools do it from `--threads`); kernels read
/// `Parallel.threadCount` to decide how many chunks to split work into.
public enum Parallel {
    nonisolated(unsafe) private static var _threadCount: Int = ProcessInfo.processInfo.activeProcessorCount

    /// Number of threads used by OpenBLAS and by the parallel Swift kernels.
    public static var threadCount: Int { _threadCount }

    /// Sets the number of threads for OpenBLAS and the Swift kernels (clamped to >= 1).
    public static func setThreadCount(_ count: Int) {
        _threadCount = max(1, count)
        openblas_set_num_threads(Int32(_threadCount))
    }

    /// Number of cores the operating system reports.
    public static var availableCores: Int { ProcessInfo.processInfo.activeProcessorCount }

    /// Runs `body` over `0..<count` split into contiguous chunks, one per thread.
    ///
    /// Work smaller than `minimumPerChunk` items stays on the calling thread.
    @inlinable
    public static func forEachChunk(_ count: Int, minimumPerChunk: Int = 4096, _ body: (Range<Int>) -> Void) {
        let chunks = min(threadCount, max(1, count / max(1, minimumPerChunk)))
        if chunks <= 1 {
            if count > 0 { body(0..<count) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            let start = count * chunk / chunks
            let end = count * (chunk + 1) / chunks
            if start < end { body(start..<end) }
        }
    }
}
