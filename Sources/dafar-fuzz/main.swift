// dafar-fuzz: fuzzes the file parsers (safetensors, IDX, CIFAR-10, MNIST CSV, adversarial sets,
// detector and model files, PNG and .npy images). `scripts/fuzz.sh` (`make fuzz`) builds and runs it.
//
// Built normally it runs a seeded mutation loop:
//   dafar-fuzz --list
//   dafar-fuzz --write-seeds DIR                  (DIR/<target>/seed-N, a libFuzzer seed corpus)
//   dafar-fuzz TARGET [--seconds N | --iterations N] [--seed S] [--corpus DIR] [--findings DIR]
//                     [--scratch DIR] [--hang-seconds S] [--timeout S]
// Built with `-D DAFAR_LIBFUZZER` and libFuzzer linked in (see scripts/fuzz.sh) it hands the
// target to libFuzzer: `DAFAR_FUZZ_TARGET=idx dafar-fuzz [libFuzzer flags] CORPUS_DIR`.
import Foundation
import ParserFuzzing

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("dafar-fuzz: \(message)\n".utf8))
    exit(64)
}

func writeFile(_ bytes: [UInt8], _ url: URL) {
    do { try Data(bytes).write(to: url) } catch { fail("cannot write \(url.path): \(error.localizedDescription)") }
}

nonisolated(unsafe) var arguments = Array(CommandLine.arguments.dropFirst())  // read on the main thread only
func option(_ flag: String) -> String? {
    guard let index = arguments.firstIndex(of: flag) else { return nil }
    guard index + 1 < arguments.count else { fail("\(flag) needs a value") }
    let value = arguments[index + 1]
    arguments.removeSubrange(index...(index + 1))
    return value
}
func number(_ flag: String) -> Double? {
    guard let text = option(flag) else { return nil }
    guard let value = Double(text), value >= 0, value.isFinite else { fail("\(flag) needs a non-negative number, got '\(text)'") }
    return value
}

if arguments == ["--list"] {
    for target in FuzzTarget.all { print(target.name.padding(toLength: 16, withPad: " ", startingAt: 0) + target.summary) }
    exit(0)
}
if let folder = option("--write-seeds") {
    for target in FuzzTarget.all {
        let directory = URL(fileURLWithPath: folder).appendingPathComponent(target.name)
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for (index, seed) in target.seeds().enumerated() { writeFile(seed, directory.appendingPathComponent("seed-\(index)")) }
    }
    exit(0)
}

#if DAFAR_LIBFUZZER
    @_silgen_name("LLVMFuzzerRunDriver")
    func LLVMFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<CInt>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
    ) -> CInt

    nonisolated(unsafe) var libFuzzerTarget: FuzzTarget!
    nonisolated(unsafe) var libFuzzerFile: URL!

    let name = ProcessInfo.processInfo.environment["DAFAR_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTarget.named(name) else {
        fail("set DAFAR_FUZZ_TARGET to one of \(FuzzTarget.all.map(\.name).joined(separator: ", "))")
    }
    libFuzzerTarget = target
    // Inputs go to DAFAR_FUZZ_SCRATCH (scripts/fuzz.sh sets it) or to a new folder.
    let scratchFolder =
        ProcessInfo.processInfo.environment["DAFAR_FUZZ_SCRATCH"].map { URL(fileURLWithPath: $0) }
        ?? (try? FuzzScratch.makeFolder()) ?? URL(fileURLWithPath: NSTemporaryDirectory())
    libFuzzerFile = scratchFolder.appendingPathComponent("input-\(target.name)")
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    exit(
        LLVMFuzzerRunDriver(&argc, &argv) { data, count in
            let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: count)) } ?? []
            do {
                _ = try libFuzzerTarget.run(bytes, file: libFuzzerFile)
            } catch {
                FileHandle.standardError.write(Data("dafar-fuzz finding: \(error)\n".utf8))
                abort()  // libFuzzer saves the input as crash-<sha1>
            }
            return 0
        })
#else
    let seconds = number("--seconds")
    let iterations = number("--iterations").map { Int($0) }
    let seed = UInt64(number("--seed") ?? 1)
    let hangSeconds = number("--hang-seconds") ?? 2
    let timeout = number("--timeout") ?? 30
    let corpusFolder = option("--corpus").map { URL(fileURLWithPath: $0) }
    let findingsFolder = URL(fileURLWithPath: option("--findings") ?? ".")
    let givenScratch = option("--scratch").map { URL(fileURLWithPath: $0) }
    guard let scratch = givenScratch ?? (try? FuzzScratch.makeFolder()) else { fail("cannot make a scratch folder") }
    guard arguments.count == 1, let target = FuzzTarget.named(arguments[0]) else {
        fail(
            "usage: dafar-fuzz TARGET [--seconds N | --iterations N] [--seed S] [--corpus DIR] [--findings DIR]; targets: "
                + FuzzTarget.all.map(\.name).joined(separator: ", ") + " (--list describes them)")
    }
    try? FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    try? FileManager.default.createDirectory(at: findingsFolder, withIntermediateDirectories: true)

    var startingCorpus: [[UInt8]] = []
    if let corpusFolder {
        try? FileManager.default.createDirectory(at: corpusFolder, withIntermediateDirectories: true)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: corpusFolder.path)) ?? [] {
            if let data = FileManager.default.contents(atPath: corpusFolder.appendingPathComponent(name).path) {
                startingCorpus.append(Array(data))
            }
        }
    }

    // Watchdog: an input running past --timeout is a hang; keep it and stop.
    let inputFile = scratch.appendingPathComponent("input-\(target.name)")
    nonisolated(unsafe) var inputStarted = Date()
    let watchdog = Thread {
        while true {
            Thread.sleep(forTimeInterval: 0.5)
            if Date().timeIntervalSince(inputStarted) > timeout {
                let kept = findingsFolder.appendingPathComponent("hang-\(target.name)-\(Int(Date().timeIntervalSince1970))")
                try? FileManager.default.copyItem(at: inputFile, to: kept)
                FileHandle.standardError.write(
                    Data("dafar-fuzz: \(target.name): an input ran longer than \(timeout) s; kept as \(kept.path)\n".utf8))
                _exit(3)
            }
        }
    }
    watchdog.start()

    var loop = FuzzLoop(target: target, seed: seed)
    loop.hangSeconds = hangSeconds
    let (report, corpus) = loop.run(
        iterations: iterations, seconds: seconds ?? (iterations == nil ? 60 : nil), scratch: scratch,
        startingCorpus: startingCorpus
    ) { inputStarted = Date() }
    if let corpusFolder {
        for input in corpus { writeFile(input, corpusFolder.appendingPathComponent(FuzzLoop.name(of: input))) }
    }
    for finding in report.findings {
        let file = findingsFolder.appendingPathComponent("finding-\(target.name)-\(FuzzLoop.name(of: finding.input))")
        writeFile(finding.input, file)
        print("finding: \(finding.description) (input kept as \(file.path))")
    }
    for slow in report.slowInputs {
        let file = findingsFolder.appendingPathComponent("slow-\(target.name)-\(FuzzLoop.name(of: slow.input))")
        writeFile(slow.input, file)
        print(String(format: "slow input: %.2f s (kept as %@)", slow.seconds, file.path))
    }
    print(report.summary)
    try? FileManager.default.removeItem(at: givenScratch == nil ? scratch : inputFile)
    exit(report.findings.isEmpty && report.slowInputs.isEmpty ? 0 : 1)
#endif
