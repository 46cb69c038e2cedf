// dafar-mpi-check: runs every collective of the communicator that `Launcher.communicator()` picks
// (MPI under mpirun, the single-process one otherwise) on empty, one-element, odd-sized and large
// buffers, checks the exact results on every rank and exits 1 with a message on the first wrong value.
// Used by DistributedTests under `mpirun -np 2`; `--chunk N` sets MPI's chunk size (elements per call).
// `--time-all-reduce N` instead times 50 all-reduces of N Floats, each after a barrier (so no rank waits
// for a slower one inside the timing), and prints the median on rank 0: what `make bench-mpi` reports as
// the pure all-reduce cost of a gradient buffer.
import Distributed
import Foundation
import Tensors

var arguments = CommandLine.arguments.dropFirst()
var chunk = 1 << 27
var largeCount = 17_000_001  // 68 MB of Floats: more than 64 MB
var timedCount: Int?
while let argument = arguments.popFirst() {
    switch argument {
    case "--chunk": chunk = Int(arguments.popFirst() ?? "") ?? chunk
    case "--large": largeCount = Int(arguments.popFirst() ?? "") ?? largeCount
    case "--time-all-reduce": timedCount = Int(arguments.popFirst() ?? "")
    default: FileHandle.standardError.write(Data("usage: dafar-mpi-check [--chunk N] [--large N] [--time-all-reduce N]\n".utf8)); exit(64)
    }
}

// one thread runs this whole check, so the globals need no isolation
nonisolated(unsafe) let world: any Communicator =
    Launcher.isPresent() ? MPICommunicator.world(maxChunkElements: chunk) : SingleProcessCommunicator()
let rank = world.rank, size = world.size

if let timedCount {
    var values = [Float](repeating: 1, count: max(0, timedCount))
    var times: [Double] = []
    for _ in 0..<50 {
        world.barrier()
        let start = DispatchTime.now().uptimeNanoseconds
        world.allReduceSum(&values)
        times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
    }
    if rank == 0 {
        print(
            String(
                format: "all-reduce of %d floats (%.2f MB) on %d ranks: median %.3f ms, min %.3f ms (50 runs)", values.count,
                Double(values.count * 4) / 1e6, size, times.sorted()[25], times.min() ?? 0))
    }
    world.finalize()
    exit(0)
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("rank \(rank) of \(size): \(message)\n".utf8))
    world.abort(status: 1)
}

func checkAllReduce(count: Int, name: String) {
    // element i of rank r: (i % 7) + r; the sum over ranks is size * (i % 7) + size * (size - 1) / 2, exact in Float
    var values = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
        for i in 0..<count { buffer[i] = Float(i % 7 + rank) }
        initialized = count
    }
    world.allReduceSum(&values)
    let offset = size * (size - 1) / 2
    for i in 0..<count where values[i] != Float(size * (i % 7) + offset) {
        fail("all-reduce of \(name) (\(count) elements): element \(i) is \(values[i]), expected \(size * (i % 7) + offset)")
    }
    if rank == 0 { print("all-reduce \(name) \(count) ok") }
}

checkAllReduce(count: 0, name: "empty")
checkAllReduce(count: 1, name: "one-element")
checkAllReduce(count: 1001, name: "odd-sized")
checkAllReduce(count: largeCount, name: "large")

func checkIntegerAllReduceAndMax(count: Int, name: String) {
    // Int64 sums beyond Float's and Int32's range: element i of rank r is i * 2^33 + r - 5
    var integers = (0..<count).map { Int64($0) << 33 + Int64(rank) - 5 }
    world.allReduceSum(&integers)
    let offset = Int64(size * (size - 1) / 2) - 5 * Int64(size)
    for i in 0..<count where integers[i] != Int64(size) * (Int64(i) << 33) + offset {
        fail("Int64 all-reduce of \(name) (\(count) elements): element \(i) is \(integers[i])")
    }
    // maximum: element i of rank r is (i * 7 + r * 13) % 101 - 50
    var values = (0..<count).map { Float(($0 * 7 + rank * 13) % 101 - 50) }
    world.allReduceMax(&values)
    for i in 0..<count where values[i] != Float((0..<size).map { ($0 * 13 + i * 7) % 101 - 50 }.max()!) {
        fail("max all-reduce of \(name) (\(count) elements): element \(i) is \(values[i])")
    }
    if rank == 0 { print("Int64 sum and max all-reduce \(name) \(count) ok") }
}

checkIntegerAllReduceAndMax(count: 0, name: "empty")
checkIntegerAllReduceAndMax(count: 1, name: "one-element")
checkIntegerAllReduceAndMax(count: 1001, name: "odd-sized")
checkIntegerAllReduceAndMax(count: largeCount / 2, name: "large")

// broadcast: from the last rank, a buffer whose size only that rank knows; then an empty one from rank 0
let root = size - 1
var message = rank == root ? (0..<100_003).map { UInt8(truncatingIfNeeded: $0 * 31 + 7) } : [1, 2, 3]
world.broadcast(&message, from: root)
guard message.count == 100_003, message.indices.allSatisfy({ message[$0] == UInt8(truncatingIfNeeded: $0 * 31 + 7) }) else {
    fail("broadcast from rank \(root): got \(message.count) bytes, not the 100003 sent")
}
var empty: [UInt8] = rank == 0 ? [] : [9, 9]
world.broadcast(&empty, from: 0)
guard empty.isEmpty else { fail("broadcast of an empty buffer gave \(empty.count) bytes") }
if rank == 0 { print("broadcast ok") }

// gather: rank r sends r * 100003 bytes (rank 0 sends none), byte i = (r + i) % 251
let mine = (0..<(rank * 100_003)).map { UInt8(($0 + rank) % 251) }
let gathered = world.gather(mine)
if rank == 0 {
    guard let gathered, gathered.count == size else {
        fail("gather returned \(gathered.map { "\($0.count) buffers" } ?? "nil") on rank 0, expected \(size)")
    }
    for (r, bytes) in gathered.enumerated() {
        guard bytes.count == r * 100_003, bytes.indices.allSatisfy({ bytes[$0] == UInt8(($0 + r) % 251) }) else {
            fail("gather: rank \(r)'s buffer has \(bytes.count) bytes or wrong content (expected \(r * 100_003))")
        }
    }
    print("gather ok")
} else if gathered != nil {
    fail("gather returned buffers on rank \(rank); only rank 0 receives")
}

// gradient all-reduce: slot 0 on every rank, slot 1 only on odd ranks, slot 2 on none; statistics summed
let reducer = GradientAllReduce(world: world, shapes: [[2, 3], [5], [1]])
let mineGradients: [Tensor?] = [
    Tensor(shape: [2, 3], storage: (0..<6).map { Float($0 + rank) }),
    rank % 2 == 1 ? Tensor(shape: [5], storage: [Float](repeating: Float(rank), count: 5)) : nil, nil
]
for _ in 0..<2 {  // twice: the buffer is reused
    let (summed, statistics) = reducer.sum(mineGradients, statistics: [Float(rank), 1])
    let offset = Float(size * (size - 1) / 2)
    guard summed[0]?.storage == (0..<6).map({ Float(size * $0) + offset }) else {
        fail("gradient all-reduce slot 0: \(String(describing: summed[0]?.storage))")
    }
    let odd = (0..<size).filter { $0 % 2 == 1 }
    if odd.isEmpty {
        guard summed[1] == nil else { fail("gradient all-reduce: slot 1 should be nil on \(size) rank(s)") }
    } else {
        guard summed[1]?.storage == [Float](repeating: Float(odd.reduce(0, +)), count: 5) else {
            fail("gradient all-reduce slot 1: \(String(describing: summed[1]?.storage))")
        }
    }
    guard summed[2] == nil else { fail("gradient all-reduce: slot 2 had no gradient on any rank but came back") }
    guard statistics == [offset, Float(size)] else { fail("gradient all-reduce statistics: \(statistics)") }
}
if rank == 0 { print("gradient all-reduce ok") }

// exact gradient sum: 7 groups of gradients of very different magnitudes shared out over the ranks give
// the bits one process gets from all 7; slot 1 exists only in group 3, slot 2 in none; group 5's
// second statistic is NaN, so that statistic is NaN everywhere
func exactGroup(_ g: Int) -> (gradients: [Tensor?], statistics: [Float]) {
    var generator = SeededGenerator(seed: UInt64(g) + 11)
    let values = (0..<1003).map { i in
        Float.random(in: -1...1, using: &generator) * Float(sign: .plus, exponent: (i * 37 + g) % 60 - 40, significand: 1)
    }
    return (
        [Tensor(shape: [1003], storage: values), g == 3 ? Tensor(shape: [2], storage: [1e-3, -7]) : nil, nil],
        [Float(g) * 0.1, g == 5 ? .nan : 1]
    )
}
let exactShapes = [[1003], [2], [1]]
let mineGroups = localPart(of: 7, rank: rank, size: size).map(exactGroup)
let exactSummer = ExactGradientSum(world: world, shapes: exactShapes)
for _ in 0..<2 {  // twice: the buffers are reused
    let (exact, exactStatistics) = exactSummer.sum(mineGroups, statistics: 2, totalGroups: 7)
    let (alone, aloneStatistics) = ExactGradientSum(world: SingleProcessCommunicator(), shapes: exactShapes).sum(
        (0..<7).map(exactGroup), statistics: 2, totalGroups: 7)
    guard exact[0]?.storage == alone[0]?.storage, exact[1]?.storage == alone[1]?.storage, exact[1]?.storage == [1e-3, -7] else {
        fail("exact gradient sum over \(size) ranks differs from one process's")
    }
    guard exact[2] == nil, exactStatistics[0] == aloneStatistics[0], exactStatistics[1].isNaN else {
        fail("exact gradient sum: slot 2 \(String(describing: exact[2])), statistics \(exactStatistics) vs \(aloneStatistics)")
    }
}
if rank == 0 { print("exact gradient sum ok") }

// replica check: equal tensors pass; a tensor that differs on the last rank stops every rank, naming that rank
do { try world.checkReplicasAgree([Tensor(shape: [3], storage: [1, 2, 3])], when: "in the check") } catch {
    fail("replica check of equal tensors: \(error)")
}
do {
    try world.checkReplicasAgree([Tensor(shape: [3], storage: [1, 2, rank == size - 1 && size > 1 ? 4 : 3])], when: "in the check")
    if size > 1 { fail("replica check: differing tensors passed") }
} catch let error as ReplicaDivergenceError {
    guard error.rank == size - 1 else { fail("replica check named rank \(error.rank), expected \(size - 1)") }
} catch { fail("replica check: \(error)") }
if rank == 0 { print("replica check ok") }

let statuses = world.statuses(rank == size - 1 ? 66 : 0)
guard statuses == (0..<size).map({ $0 == size - 1 ? 66 : 0 }) else { fail("statuses: got \(statuses)") }
world.barrier()
if rank == 0 { print("statuses ok\nall checks passed on \(size) rank(s) (\(type(of: world)))") }
world.finalize()
