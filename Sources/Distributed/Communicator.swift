import Foundation

/// A group of cooperating processes (ranks) and the collective operations the tools need.
///
/// Ranks are numbered `0..<size`; rank 0 prints progress and writes every file. Every collective
/// (`allReduceSum`, `allReduceMax`, `broadcast`, `gather`, `barrier`) must be called by all ranks in the same order,
/// from the thread that created the communicator. Two implementations: `SingleProcessCommunicator`
/// (one rank, no MPI call) and `MPICommunicator` (Open MPI); `Communicator.fromEnvironment()` picks one.
public protocol Communicator: AnyObject {
    /// This process's index, `0..<size`.
    var rank: Int { get }
    /// The number of processes.
    var size: Int { get }
    /// Replaces every element of `buffer` by its sum over all ranks (every rank passes the same count).
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>)
    /// Replaces every element of `buffer` by its sum over all ranks: exact, so independent of the order.
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Int64>)
    /// Replaces every element of `buffer` by its largest value over all ranks (exact, order-independent).
    func allReduceMax(_ buffer: UnsafeMutableBufferPointer<Float>)
    /// Gives every rank the bytes `root` holds (other ranks' `bytes` are replaced, whatever their size).
    func broadcast(_ bytes: inout [UInt8], from root: Int)
    /// Collects every rank's bytes (any size, also empty) on rank 0, in rank order; nil on the other ranks.
    func gather(_ bytes: [UInt8]) -> [[UInt8]]?
    /// Returns once every rank has called it.
    func barrier()
    /// Ends every rank of the job at once with `status` (used when ranks cannot agree to stop).
    func abort(status: Int32) -> Never
    /// Ends the communication (call once, by every rank, before the process exits normally).
    func finalize()
}

extension Communicator {
    /// True on rank 0, the rank that prints and writes files.
    public var isRoot: Bool { rank == 0 }

    /// Sums `values` element-wise over all ranks, in place.
    public func allReduceSum(_ values: inout [Float]) {
        values.withUnsafeMutableBufferPointer { allReduceSum($0) }
    }

    /// Sums `values` element-wise over all ranks, in place, exactly.
    public func allReduceSum(_ values: inout [Int64]) {
        values.withUnsafeMutableBufferPointer { allReduceSum($0) }
    }

    /// The element-wise maximum of `values` over all ranks, in place.
    public func allReduceMax(_ values: inout [Float]) {
        values.withUnsafeMutableBufferPointer { allReduceMax($0) }
    }

    /// Every rank's `status` (0 = fine), in rank order, known to every rank: how the ranks agree to
    /// stop together before a collective that a failed rank would never reach. Statuses are
    /// clamped to 0...255 (exit statuses) and travel exactly in a one-slot-per-rank Float sum.
    public func statuses(_ status: Int32) -> [Int32] {
        var slots = [Float](repeating: 0, count: size)
        slots[rank] = Float(max(0, min(status, 255)))
        allReduceSum(&slots)
        return slots.map { Int32($0) }
    }
}

/// The launcher-set variables that say a process was started by `mpirun` or `srun`.
public enum Launcher {
    /// Variables that any of Open MPI's mpirun, PMIx or PMI (Slurm's srun) set for every rank.
    public static let sizeVariables = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"]

    /// True when a launcher started this process (one of `sizeVariables` is set).
    public static func isPresent(in environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        sizeVariables.contains { environment[$0] != nil }
    }

    /// The number of ranks the launcher started, read without starting MPI (1 without a launcher).
    public static func size(in environment: [String: String] = ProcessInfo.processInfo.environment) -> Int {
        for name in ["OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE", "SLURM_NTASKS"] {
            if let value = environment[name], let size = Int(value) { return size }
        }
        return 1
    }

    /// This process's rank as the launcher announced it, read without starting MPI (0 without a launcher).
    public static func rank(in environment: [String: String] = ProcessInfo.processInfo.environment) -> Int {
        for name in ["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"] {
            if let value = environment[name], let rank = Int(value) { return rank }
        }
        return 0
    }
}

/// The communicator of a process that runs alone: rank 0 of 1, every collective a no-op, no MPI call.
public final class SingleProcessCommunicator: Communicator {
    /// Creates the one-rank communicator.
    public init() {}
    /// Always 0.
    public var rank: Int { 0 }
    /// Always 1.
    public var size: Int { 1 }
    /// The sum over one rank: the buffer unchanged.
    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) {}
    /// The sum over one rank: the buffer unchanged.
    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Int64>) {}
    /// The maximum over one rank: the buffer unchanged.
    public func allReduceMax(_ buffer: UnsafeMutableBufferPointer<Float>) {}
    /// Rank 0 already holds its bytes.
    public func broadcast(_ bytes: inout [UInt8], from root: Int) {
        precondition(root == 0, "broadcast: root \(root) is not a rank of a single process")
    }
    /// `[bytes]`: the one rank's buffer.
    public func gather(_ bytes: [UInt8]) -> [[UInt8]]? { [bytes] }
    /// Nothing to wait for.
    public func barrier() {}
    /// Exits the process with `status`.
    public func abort(status: Int32) -> Never { exit(status) }
    /// Nothing to end.
    public func finalize() {}
}

extension Launcher {
    /// `MPICommunicator.world()` when a launcher (mpirun, srun) started this process, otherwise a
    /// `SingleProcessCommunicator`: started by hand, a tool makes no MPI call and pays no start-up cost.
    public static func communicator() -> any Communicator {
        isPresent() ? MPICommunicator.world() : SingleProcessCommunicator()
    }
}
