import Distributed
import Tensors
import XCTest

/// The single-process communicator, the launcher detection, the shard plans, and the MPI
/// communicator under `mpirun -np 2` (shared memory and TCP) through `dafar-mpi-check`.
final class CommunicatorTests: XCTestCase {
    func testSingleProcessCollectivesLeaveDataAsIs() {
        let world = SingleProcessCommunicator()
        XCTAssertEqual(world.rank, 0)
        XCTAssertEqual(world.size, 1)
        XCTAssertTrue(world.isRoot)
        for count in [0, 1, 1001] {
            var values = (0..<count).map { Float($0) * 0.5 }
            world.allReduceSum(&values)
            XCTAssertEqual(values, (0..<count).map { Float($0) * 0.5 }, "the sum over one rank is the buffer itself")
        }
        var bytes: [UInt8] = [1, 2, 3]
        world.broadcast(&bytes, from: 0)
        XCTAssertEqual(bytes, [1, 2, 3])
        XCTAssertEqual(world.gather([4, 5]), [[4, 5]])
        XCTAssertEqual(world.gather([]), [[]])
        XCTAssertEqual(world.statuses(65), [65])
        XCTAssertEqual(world.statuses(300), [255], "statuses are clamped to exit statuses")
        world.barrier()
        world.finalize()
    }

    func testLauncherDetection() {
        XCTAssertEqual(Launcher.size(in: ["OMPI_COMM_WORLD_SIZE": "4"]), 4)
        XCTAssertEqual(Launcher.size(in: ["SLURM_NTASKS": "8"]), 8)
        XCTAssertEqual(Launcher.size(in: [:]), 1)
        XCTAssertFalse(Launcher.isPresent(in: ["PATH": "/usr/bin"]))
        XCTAssertTrue(Launcher.isPresent(in: ["OMPI_COMM_WORLD_SIZE": "2"]))
        XCTAssertTrue(Launcher.isPresent(in: ["PMIX_RANK": "0"]))
        XCTAssertTrue(Launcher.isPresent(in: ["PMI_SIZE": "4"]))
        XCTAssertEqual(Launcher.rank(in: ["OMPI_COMM_WORLD_RANK": "3"]), 3)
        XCTAssertEqual(Launcher.rank(in: ["SLURM_PROCID": "5"]), 5)
        XCTAssertEqual(Launcher.rank(in: [:]), 0)
        // this test process was not started by a launcher: no MPI
        XCTAssertTrue(Launcher.communicator() is SingleProcessCommunicator)
    }

    func testShardsAreContiguousWholeBatchesCoveringEveryImage() {
        for (count, batch, shards) in [(0, 10, 2), (1, 10, 2), (35, 10, 2), (40, 10, 3), (1000, 100, 2), (7, 3, 5), (400, 100, 8)] {
            let plan = ShardPlan(count: count, batchSize: batch, shards: shards)
            let ranges = (0..<shards).map { plan.range(of: $0) }
            XCTAssertEqual(ranges.first?.lowerBound, 0, "\(count)/\(batch)/\(shards)")
            XCTAssertEqual(ranges.last?.upperBound, count, "\(count)/\(batch)/\(shards)")
            for (a, b) in zip(ranges, ranges.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound, "contiguous") }
            for r in ranges.dropLast() where !r.isEmpty {
                XCTAssertEqual(r.lowerBound % batch, 0, "a shard starts on a batch boundary")
                XCTAssertEqual(r.count % batch, 0, "only the last shard may end in a short batch")
            }
            let batches = ranges.map { ($0.count + batch - 1) / batch }
            XCTAssertLessThanOrEqual((batches.max() ?? 0) - (batches.min() ?? 0), 1, "balanced: \(batches)")
            XCTAssertEqual(batches.max() ?? 0, plan.maxBatchesPerShard)
        }
        XCTAssertEqual(ShardPlan(count: 35, batchSize: 10, shards: 2).range(of: 0), 0..<20)
        XCTAssertEqual(ShardPlan(count: 35, batchSize: 10, shards: 2).range(of: 1), 20..<35)
        XCTAssertEqual(ShardPlan(count: 30, batchSize: 10, shards: 2).range(of: 0), 0..<10, "3 batches: rank 0 one, rank 1 two")
        XCTAssertEqual(ShardPlan(count: 5, batchSize: 10, shards: 3).range(of: 0), 0..<0, "fewer batches than ranks: empty shards")
        XCTAssertEqual(ShardPlan(count: 5, batchSize: 10, shards: 3).range(of: 2), 0..<5)
    }

    func testLocalPartsSplitABatchEvenlyInOrder() {
        for (count, size) in [(64, 2), (25, 2), (19, 2), (1, 2), (0, 3), (64, 8), (10, 3), (3, 8)] {
            let parts = (0..<size).map { localPart(of: count, rank: $0, size: size) }
            XCTAssertEqual(parts.first?.lowerBound, 0)
            XCTAssertEqual(parts.last?.upperBound, count)
            for (a, b) in zip(parts, parts.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound, "contiguous, in order") }
            XCTAssertLessThanOrEqual(
                (parts.map(\.count).max() ?? 0) - (parts.map(\.count).min() ?? 0), 1, "\(count) over \(size): \(parts)")
        }
        XCTAssertEqual(localPart(of: 25, rank: 0, size: 2), 0..<12)
        XCTAssertEqual(localPart(of: 25, rank: 1, size: 2), 12..<25)
    }

    func testGradientAllReduceOnOneProcessReturnsItsInputs() {
        let reducer = GradientAllReduce(world: SingleProcessCommunicator(), shapes: [[2], [3]])
        let g = Tensor(shape: [2], storage: [1.5, -2])
        let (summed, statistics) = reducer.sum([g, nil], statistics: [7, 1])
        XCTAssertEqual(summed[0]?.storage, [1.5, -2])
        XCTAssertNil(summed[1], "no gradient stays no gradient")
        XCTAssertEqual(statistics, [7, 1])
        XCTAssertEqual(reducer.calls, 0, "one process makes no all-reduce")
        XCTAssertEqual(reducer.bytesPerStep(statistics: 5), (5 + 2 + 5) * 4, "gradients, presence slots and statistics")
        XCTAssertNoThrow(try SingleProcessCommunicator().checkReplicasAgree([g], when: "now"))
    }

    func testSingleProcessIntegerSumAndMaxLeaveDataAsIs() {
        let world = SingleProcessCommunicator()
        var integers: [Int64] = [1 << 40, -3, 0]
        world.allReduceSum(&integers)
        XCTAssertEqual(integers, [1 << 40, -3, 0])
        var values: [Float] = [2, -1, .infinity]
        world.allReduceMax(&values)
        XCTAssertEqual(values, [2, -1, .infinity])
    }

    /// Groups of gradients whose magnitudes span 2^-60 ... 2^20, so that Float sums depend on their order.
    private func exactGroups(_ count: Int) -> [(gradients: [Tensor?], statistics: [Float])] {
        (0..<count).map { g in
            var generator = SeededGenerator(seed: UInt64(g) + 1)
            let values = (0..<4099).map { i in
                Float.random(in: -1...1, using: &generator) * Float(sign: .plus, exponent: (i * 31 + g * 7) % 81 - 60, significand: 1)
            }
            return ([Tensor(shape: [4099], storage: values), nil], [Float(g) + 0.25])
        }
    }

    func testExactGradientSumDoesNotDependOnOrderAndIsCorrectlyRoundedToAFewUlps() {
        let groups = exactGroups(9)
        let summer = ExactGradientSum(world: SingleProcessCommunicator(), shapes: [[4099], [3]])
        let (forward, statistics) = summer.sum(groups, statistics: 1, totalGroups: 9)
        let (backward, _) = summer.sum(groups.reversed(), statistics: 1, totalGroups: 9)
        let (shuffled, _) = summer.sum([4, 0, 8, 2, 6, 1, 7, 3, 5].map { groups[$0] }, statistics: 1, totalGroups: 9)
        XCTAssertEqual(forward[0]?.storage, backward[0]?.storage, "bit-identical whatever the order")
        XCTAssertEqual(forward[0]?.storage, shuffled[0]?.storage)
        XCTAssertNil(forward[1], "a slot no group has stays nil")
        XCTAssertEqual(statistics, [(0..<9).map { Float($0) + 0.25 }.reduce(0, +)])
        // against the sum in Double: every value within 2 ulps of its magnitude, or within 2^-52 of the
        // tensor's largest (each group's truncation to fixed point loses less than 2^-57 of it)
        let exact = (0..<4099).map { i in groups.reduce(0.0) { $0 + Double($1.gradients[0]!.storage[i]) } }
        let largest = exact.map(\.magnitude).max()!
        for (got, want) in zip(forward[0]!.storage, exact) {
            let tolerance = max(2 * Double(Float(want).ulp), largest * 0x1p-52)
            XCTAssertLessThanOrEqual(abs(Double(got) - want), tolerance, "\(got) vs \(want)")
        }
        // a naive Float sum in another order differs somewhere: what the exact sum is for
        let floatForward = (0..<4099).map { i in groups.reduce(Float(0)) { $0 + $1.gradients[0]!.storage[i] } }
        let floatBackward = (0..<4099).map { i in groups.reversed().reduce(Float(0)) { $0 + $1.gradients[0]!.storage[i] } }
        XCTAssertNotEqual(floatForward, floatBackward)
    }

    /// Rank 0 of two whose partner has no groups: its all-reduces leave every buffer as it is (the partner adds
    /// zeros and its maxima are zeros), so the sum takes the path of several ranks (fixed-point sums in an array,
    /// the integer all-reduce, then the conversion) with the values of one process.
    final class RankWithIdlePartner: Communicator {
        var rank: Int { 0 }
        var size: Int { 2 }
        var sums = 0
        func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) {}
        func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Int64>) { sums += 1 }
        func allReduceMax(_ buffer: UnsafeMutableBufferPointer<Float>) {}
        func broadcast(_ bytes: inout [UInt8], from root: Int) {}
        func gather(_ bytes: [UInt8]) -> [[UInt8]]? { [bytes, []] }
        func barrier() {}
        func abort(status: Int32) -> Never { fatalError("abort \(status)") }
        func finalize() {}
    }

    func testExactGradientSumOfOneProcessEqualsThePathOfSeveralRanks() {
        let groups = exactGroups(5)
        let partner = RankWithIdlePartner()
        let alone = ExactGradientSum(world: SingleProcessCommunicator(), shapes: [[4099], [3]])
        let ranks = ExactGradientSum(world: partner, shapes: [[4099], [3]])
        let (one, oneStatistics) = alone.sum(groups, statistics: 1, totalGroups: 5)
        let (two, twoStatistics) = ranks.sum(groups, statistics: 1, totalGroups: 5)
        XCTAssertEqual(partner.sums, 1, "the integer sums went through the all-reduce")
        XCTAssertEqual(one[0]?.storage.map(\.bitPattern), two[0]?.storage.map(\.bitPattern))
        XCTAssertNil(two[1])
        XCTAssertEqual(oneStatistics.map(\.bitPattern), twoStatistics.map(\.bitPattern))
        XCTAssertNotEqual(one[0]?.storage, groups[0].gradients[0]?.storage, "the groups were added")
    }

    func testExactGradientSumMakesANonFiniteSlotNaNAndKeepsZeros() {
        let summer = ExactGradientSum(world: SingleProcessCommunicator(), shapes: [[2], [2]])
        let (sums, statistics) = summer.sum(
            [
                ([Tensor(shape: [2], storage: [1, .infinity]), Tensor(shape: [2], storage: [0, 0])], [1, .nan]),
                ([Tensor(shape: [2], storage: [1, 2]), Tensor(shape: [2], storage: [0, -0.0])], [2, 1])
            ], statistics: 2, totalGroups: 2)
        XCTAssertTrue(sums[0]!.storage.allSatisfy(\.isNaN), "one infinite value: the whole slot is NaN")
        XCTAssertEqual(sums[1]?.storage, [0, 0])
        XCTAssertEqual(statistics[0], 3)
        XCTAssertTrue(statistics[1].isNaN)
        XCTAssertEqual(summer.calls, 1)
        XCTAssertEqual(summer.bytesPerStep(statistics: 2), (4 + 2) * 8)
    }

    func testReplicaHashSeesEveryBitAndShape() {
        let a = Tensor(shape: [2, 2], storage: [1, 2, 3, 4])
        XCTAssertEqual(replicaHash([a]), replicaHash([Tensor(shape: [2, 2], storage: [1, 2, 3, 4])]))
        XCTAssertNotEqual(replicaHash([a]), replicaHash([Tensor(shape: [4], storage: [1, 2, 3, 4])]), "shape counts")
        XCTAssertNotEqual(replicaHash([a]), replicaHash([Tensor(shape: [2, 2], storage: [1, 2, 3, 4.0000005])]), "last bit counts")
        XCTAssertNotEqual(
            replicaHash([a]), replicaHash([Tensor(shape: [2, 2], storage: [1, 2, 3, -0.0 + 4]), Tensor(shape: [0], storage: [])]))
    }

    func testTensorBytesRoundTrip() {
        let t = Tensor(shape: [2, 3], storage: [0, -1.5, .pi, 1e-30, 7, .infinity])
        XCTAssertEqual(t.storageBytes.count, 24)
        XCTAssertEqual(Tensor(shape: [2, 3], storageBytes: t.storageBytes).storage, t.storage)
    }

    func testCheckProgramPassesInOneProcessWithoutMPI() throws {
        let result = try MPIRun.run("dafar-mpi-check", [], ranks: 0, timeout: 60)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("all checks passed on 1 rank(s) (SingleProcessCommunicator)"), result.output)
    }

    func testMPICollectivesOnTwoRanksSharedMemory() throws {
        let result = try MPIRun.run("dafar-mpi-check", [], ranks: 2)
        XCTAssertFalse(result.timedOut, "mpirun did not finish within 120 s: \(result.output)")
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("all checks passed on 2 rank(s) (MPICommunicator)"), result.output)
        XCTAssertTrue(result.output.contains("all-reduce large 17000001 ok"), result.output)
        XCTAssertTrue(result.output.contains("gradient all-reduce ok") && result.output.contains("replica check ok"), result.output)
    }

    /// The TCP transport (what separate hosts use), with small chunks so that every operation takes several MPI calls.
    func testMPICollectivesOnTwoRanksOverTCPInChunks() throws {
        let result = try MPIRun.run("dafar-mpi-check", ["--chunk", "1000003"], ranks: 2, mpiArguments: ["--mca", "btl", "tcp,self"])
        XCTAssertFalse(result.timedOut, "mpirun did not finish within 120 s: \(result.output)")
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("all checks passed on 2 rank(s) (MPICommunicator)"), result.output)
    }
}
