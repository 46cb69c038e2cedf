import Dispatch
import Foundation
import Tensors
import XCTest
import _ThreadPool

/// The worker pool behind `Parallel.forEach` (`_ThreadPool`): every chunk runs exactly once, a
/// `forEach` inside a chunk runs on that thread, threads that call at once all finish (one on the
/// pool, the others on Dispatch), the pool grows and shrinks with the thread count, and it works with
/// no spinning at all. Every wait is bounded, so a deadlock fails the test instead of hanging it.
final class ThreadPoolTests: XCTestCase {
    override func setUp() {
        super.setUp()
        saved = (Parallel.threadCount, thread_pool_spin_microseconds(), Parallel.usesThreadPool)
        Parallel.usesThreadPool = true
    }

    override func tearDown() {
        Parallel.setThreadCount(saved.threads)
        thread_pool_set_spin_microseconds(Int32(saved.spin))
        Parallel.usesThreadPool = saved.pool
        super.tearDown()
    }

    private var saved: (threads: Int, spin: Int32, pool: Bool) = (1, 0, true)

    /// How many times each chunk ran, counted atomically enough for the test (one lock).
    final class Counts: @unchecked Sendable {
        private var counts: [Int]
        private var ranges: [Range<Int>?]
        private let lock = NSLock()

        init(_ chunks: Int) {
            counts = Array(repeating: 0, count: chunks)
            ranges = Array(repeating: nil, count: chunks)
        }

        func record(_ chunk: Int, _ range: Range<Int>) {
            lock.withLock {
                counts[chunk] += 1
                ranges[chunk] = range
            }
        }

        var snapshot: (counts: [Int], ranges: [Range<Int>?]) { lock.withLock { (counts, ranges) } }
    }

    /// Asserts that `forEach(chunks:of:)` ran each non-empty chunk once, with its range of the fixed split.
    func assertEachChunkOnce(chunks: Int, of count: Int, file: StaticString = #filePath, line: UInt = #line) {
        let counts = Counts(max(chunks, 1))
        Parallel.forEach(chunks: chunks, of: count) { chunk, range in counts.record(chunk, range) }
        let effective = min(chunks, count)
        let (ran, ranges) = counts.snapshot
        for chunk in 0..<max(chunks, 1) {
            let expected =
                effective <= 1
                ? (chunk == 0 && count > 0 ? 0..<count : nil)
                : chunk < effective ? (count * chunk / effective)..<(count * (chunk + 1) / effective) : nil
            let wanted = expected.map { $0.isEmpty ? 0 : 1 } ?? 0
            XCTAssertEqual(ran[chunk], wanted, "chunk \(chunk) of \(chunks) (count \(count))", file: file, line: line)
            if wanted == 1 { XCTAssertEqual(ranges[chunk], expected, "chunk \(chunk) of \(chunks)", file: file, line: line) }
        }
    }

    /// Runs `body` on another thread and fails (instead of hanging) when it has not finished in `seconds`.
    func finishes(within seconds: Double = 60, _ what: String, _ body: @escaping @Sendable () -> Void) {
        let done = expectation(description: what)
        Thread.detachNewThread {
            body()
            done.fulfill()
        }
        wait(for: [done], timeout: seconds)
    }

    func testEveryChunkRunsExactlyOnce() {
        for threads in [2, 3, 5] {
            Parallel.setThreadCount(threads)
            for chunks in [0, 1, 2, 3, 4, 5, 7, 8, 16, 33, 100, 1000] {
                for count in [0, 1, 2, chunks, chunks + 1, 3 * chunks + 2, 10_000] {
                    assertEachChunkOnce(chunks: chunks, of: count)
                }
            }
        }
    }

    func testManyRegionsInARowGiveTheRightSums() {
        // back to back, so that the workers are still spinning for most regions and sleeping for some
        Parallel.setThreadCount(2)
        let values = (0..<10_000).map { Float($0 % 97) }
        let expected = values.reduce(0, +)
        for iteration in 0..<2000 {
            let chunks = 1 + iteration % 9
            var partial = [Float](repeating: 0, count: chunks)
            partial.withUnsafeMutableBufferPointer { partial in
                Parallel.forEach(chunks: chunks, of: values.count) { chunk, range in partial[chunk] = values[range].reduce(0, +) }
            }
            XCTAssertEqual(partial.reduce(0, +), expected, "region \(iteration)")
            if iteration % 500 == 499 { usleep(300) }  // past the spin: the workers sleep, and are woken
        }
    }

    func testCThreadPoolRunsEveryChunkOnceAndNestedCallsOnTheirThread() {
        /// What the chunks of one C job record: how often each ran, what a nested call in chunk 0 returned.
        final class Job {
            let counts: Counts
            var nested: [thread_pool_status] = []  // appended to by chunk 0 only
            init(_ chunks: Int) { counts = Counts(chunks) }
        }
        Parallel.setThreadCount(2)
        for chunks in [1, 2, 3, 64] {
            let job = Job(chunks)
            let status = withExtendedLifetime(job) {
                thread_pool_run(
                    { context, chunk in
                        let job = Unmanaged<Job>.fromOpaque(context!).takeUnretainedValue()
                        XCTAssertEqual(thread_pool_inside_job(), 1)
                        job.counts.record(Int(chunk), 0..<0)
                        if chunk == 0 { job.nested.append(thread_pool_run({ _, _ in }, nil, 4, 2)) }
                    }, Unmanaged.passUnretained(job).toOpaque(), Int32(chunks), 2)
            }
            XCTAssertEqual(status, THREAD_POOL_RAN)
            XCTAssertEqual(job.counts.snapshot.counts, Array(repeating: 1, count: chunks), "\(chunks) chunks")
            XCTAssertEqual(job.nested, [THREAD_POOL_RAN_NESTED])
            XCTAssertEqual(thread_pool_inside_job(), 0)
        }
    }

    func testForEachInsideAChunkRunsOnThatThread() {
        Parallel.setThreadCount(2)
        finishes("nested forEach") {
            let counts = Counts(4 * 8)
            Parallel.forEach(chunks: 4, of: 4) { outer, _ in
                let thread = pthread_self()
                Parallel.forEach(chunks: 8, of: 80) { inner, range in
                    XCTAssertTrue(pthread_equal(thread, pthread_self()) != 0, "the inner chunks run on the outer chunk's thread")
                    counts.record(outer * 8 + inner, range)
                }
            }
            XCTAssertEqual(counts.snapshot.counts, Array(repeating: 1, count: 32))
        }
    }

    func testThreadsCallingAtOnceAllFinishWithTheRightResults() {
        Parallel.setThreadCount(2)
        let threads = 6
        let done = (0..<threads).map { expectation(description: "thread \($0)") }
        let failures = Counts(threads)
        for thread in 0..<threads {
            Thread.detachNewThread {
                for iteration in 0..<300 {
                    let chunks = 1 + (thread + iteration) % 7
                    let count = 1000 + thread
                    var sums = [Int](repeating: 0, count: chunks)
                    sums.withUnsafeMutableBufferPointer { sums in
                        Parallel.forEach(chunks: chunks, of: count) { chunk, range in
                            // a region inside some chunks, as the kernels' regions inside DataParallel's groups
                            var inner = [Int](repeating: 0, count: 3)
                            inner.withUnsafeMutableBufferPointer { inner in
                                Parallel.forEach(chunks: 3, of: range.count) { part, subrange in
                                    inner[part] = subrange.reduce(0) { $0 + range.lowerBound + $1 }
                                }
                            }
                            sums[chunk] = inner.reduce(0, +)
                        }
                    }
                    if sums.reduce(0, +) != count * (count - 1) / 2 { failures.record(thread, 0..<iteration) }
                }
                done[thread].fulfill()
            }
        }
        wait(for: done, timeout: 120)
        XCTAssertEqual(failures.snapshot.counts, Array(repeating: 0, count: threads), "threads with a wrong sum")
    }

    func testThePoolGrowsAndShrinksWithTheThreadCount() {
        for threads in [1, 4, 2, 3, 1, 2] {
            Parallel.setThreadCount(threads)
            XCTAssertEqual(Int(thread_pool_workers()), threads - 1, "\(threads) threads")
            assertEachChunkOnce(chunks: 7, of: 50)
        }
        // a region resizes the pool itself when setThreadCount could not (another thread's region ran)
        thread_pool_set_workers(0)
        XCTAssertEqual(thread_pool_workers(), 0)
        assertEachChunkOnce(chunks: 7, of: 50)
        XCTAssertEqual(thread_pool_workers(), 1)
    }

    func testWithoutSpinningAndOnDispatch() {
        Parallel.setThreadCount(2)
        thread_pool_set_spin_microseconds(0)
        XCTAssertEqual(thread_pool_spin_microseconds(), 0)
        for chunks in [2, 3, 9] {
            for _ in 0..<200 { assertEachChunkOnce(chunks: chunks, of: 1000) }
        }
        thread_pool_set_spin_microseconds(100)
        Parallel.usesThreadPool = false
        for chunks in [0, 1, 2, 3, 9] { assertEachChunkOnce(chunks: chunks, of: 1000) }
    }
}
