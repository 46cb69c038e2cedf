import CMPI
import Foundation

/// The world communicator of an Open MPI job (`MPI_COMM_WORLD`).
///
/// Threading: MPI is started with `MPI_THREAD_FUNNELED`: only the thread that created the
/// communicator (the tools' main thread) calls MPI; OpenBLAS's threads and the Dispatch workers of
/// the kernels never do, so no stronger (and slower) level such as `MPI_THREAD_MULTIPLE` is needed.
///
/// Counts: MPI counts are 32-bit `int`s, so every operation moves its buffer in chunks of at most
/// `maxChunkElements` elements (default 2^27 Floats = 512 MB, 2^29 bytes for byte buffers); a buffer
/// of more than 2^31 elements takes several calls. Errors follow MPI's default handler
/// (`MPI_ERRORS_ARE_FATAL`): a failed call, or a rank that died, ends the whole job.
public final class MPICommunicator: Communicator {
    nonisolated(unsafe) private static var shared: MPICommunicator?

    /// This process's rank in `MPI_COMM_WORLD`.
    public let rank: Int
    /// The number of ranks in `MPI_COMM_WORLD`.
    public let size: Int
    /// The largest number of elements one MPI call moves (Floats for all-reduce, half as many Int64s; x4 for bytes).
    public let maxChunkElements: Int
    private var finalized = false

    private init(maxChunkElements: Int) {
        var provided: Int32 = 0
        let status = MPI_Init_thread(nil, nil, cmpi_thread_funneled(), &provided)
        precondition(status == cmpi_success(), "MPI_Init_thread failed with code \(status)")
        var r: Int32 = 0, n: Int32 = 0
        MPI_Comm_rank(cmpi_comm_world(), &r)
        MPI_Comm_size(cmpi_comm_world(), &n)
        rank = Int(r)
        size = Int(n)
        self.maxChunkElements = maxChunkElements
        if provided < cmpi_thread_funneled() {
            FileHandle.standardError.write(Data("warning: MPI provides thread level \(provided), below MPI_THREAD_FUNNELED\n".utf8))
        }
    }

    /// Starts MPI (once per process) and returns the world communicator. `maxChunkElements` only
    /// applies to the first call (tests pass a small value to exercise chunking).
    public static func world(maxChunkElements: Int = 1 << 27) -> MPICommunicator {
        precondition(
            maxChunkElements >= 1 && maxChunkElements <= Int(Int32.max) / 4,
            "MPI chunk size must be in 1...\(Int(Int32.max) / 4), got \(maxChunkElements)")
        if let shared { return shared }
        let world = MPICommunicator(maxChunkElements: maxChunkElements)
        shared = world
        return world
    }

    /// Sums `buffer` over all ranks in place (`MPI_Allreduce` with `MPI_IN_PLACE`, chunk by chunk).
    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) {
        allReduce(UnsafeMutableRawPointer(buffer.baseAddress), count: buffer.count, type: cmpi_float(), operation: cmpi_sum())
    }

    /// Sums `buffer` over all ranks in place (`MPI_INT64_T`, so exact whatever the reduction order).
    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Int64>) {
        allReduce(UnsafeMutableRawPointer(buffer.baseAddress), count: buffer.count, type: cmpi_int64(), operation: cmpi_sum())
    }

    /// The element-wise maximum over all ranks, in place (`MPI_MAX`).
    public func allReduceMax(_ buffer: UnsafeMutableBufferPointer<Float>) {
        allReduce(UnsafeMutableRawPointer(buffer.baseAddress), count: buffer.count, type: cmpi_float(), operation: cmpi_max())
    }

    /// `MPI_Allreduce` with `MPI_IN_PLACE` over `count` elements of `type` at `base`, at most
    /// `maxChunkElements` per call (8-byte elements: half as many, so that no call moves more bytes).
    private func allReduce(_ base: UnsafeMutableRawPointer?, count: Int, type: MPI_Datatype, operation: MPI_Op) {
        guard let base, count > 0 else { return }
        var size: Int32 = 0
        MPI_Type_size(type, &size)
        let chunk = max(1, maxChunkElements * 4 / Int(size))
        var offset = 0
        while offset < count {
            let n = min(chunk, count - offset)
            check(MPI_Allreduce(cmpi_in_place(), base + offset * Int(size), Int32(n), type, operation, cmpi_comm_world()), "MPI_Allreduce")
            offset += n
        }
    }

    /// Sends the length, then the bytes of `root` in chunks (`MPI_Bcast`).
    public func broadcast(_ bytes: inout [UInt8], from root: Int) {
        precondition((0..<size).contains(root), "broadcast: root \(root) is not a rank of 0..<\(size)")
        var length = Int64(bytes.count)
        check(MPI_Bcast(&length, 1, cmpi_int64(), Int32(root), cmpi_comm_world()), "MPI_Bcast")
        if rank != root { bytes = [UInt8](repeating: 0, count: Int(length)) }
        let chunk = maxChunkElements * 4
        bytes.withUnsafeMutableBytes { raw in
            var offset = 0
            while offset < raw.count {
                let count = min(chunk, raw.count - offset)
                check(MPI_Bcast(raw.baseAddress! + offset, Int32(count), cmpi_byte(), Int32(root), cmpi_comm_world()), "MPI_Bcast")
                offset += count
            }
        }
    }

    /// Gathers every rank's length (`MPI_Gather`), then rank 0 receives each rank's bytes in chunks
    /// (`MPI_Recv` / `MPI_Send`; `MPI_Gatherv`'s int displacements would overflow past 2 GB in all).
    public func gather(_ bytes: [UInt8]) -> [[UInt8]]? {
        var length = Int64(bytes.count)
        var lengths = [Int64](repeating: 0, count: isRoot ? size : 1)
        check(MPI_Gather(&length, 1, cmpi_int64(), &lengths, 1, cmpi_int64(), 0, cmpi_comm_world()), "MPI_Gather")
        let chunk = maxChunkElements * 4
        guard isRoot else {
            bytes.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let count = min(chunk, raw.count - offset)
                    check(MPI_Send(raw.baseAddress! + offset, Int32(count), cmpi_byte(), 0, 1, cmpi_comm_world()), "MPI_Send")
                    offset += count
                }
            }
            return nil
        }
        var result = [bytes]
        for source in 1..<max(1, size) {
            var received = [UInt8](repeating: 0, count: Int(lengths[source]))
            received.withUnsafeMutableBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let count = min(chunk, raw.count - offset)
                    check(
                        MPI_Recv(
                            raw.baseAddress! + offset, Int32(count), cmpi_byte(), Int32(source), 1, cmpi_comm_world(),
                            cmpi_status_ignore()), "MPI_Recv")
                    offset += count
                }
            }
            result.append(received)
        }
        return result
    }

    /// `MPI_Barrier`.
    public func barrier() { check(MPI_Barrier(cmpi_comm_world()), "MPI_Barrier") }

    /// `MPI_Abort`: mpirun ends every rank and exits with `status`.
    public func abort(status: Int32) -> Never {
        MPI_Abort(cmpi_comm_world(), status)
        exit(status)
    }

    /// `MPI_Finalize` (once; later calls do nothing).
    public func finalize() {
        guard !finalized else { return }
        finalized = true
        MPI_Finalize()
    }

    private func check(_ code: Int32, _ call: String) {
        if code != cmpi_success() {
            FileHandle.standardError.write(Data("error: \(call) failed on rank \(rank) with MPI error \(code)\n".utf8))
            abort(status: 70)
        }
    }
}
