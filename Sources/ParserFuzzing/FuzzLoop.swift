import Foundation

/// What a fuzzing run did.
public struct FuzzReport {
    public var target: String
    /// Inputs parsed or rejected, seeds included.
    public var executions = 0
    public var seconds = 0.0
    /// Inputs kept because they produced an outcome not seen before (seeds included).
    public var corpusSize = 0
    public var parsedCount = 0
    public var rejectedCount = 0
    /// Distinct outcomes (parsed shapes, error messages with numbers and quoted text blanked).
    public var distinctOutcomes = 0
    /// Inputs that broke the parser's contract, with what went wrong.
    public var findings: [(description: String, input: [UInt8])] = []
    /// Inputs that took longer than the hang limit (they still finished).
    public var slowInputs: [(seconds: Double, input: [UInt8])] = []
    /// The longest time one input took.
    public var slowestSeconds = 0.0

    /// One line for logs and `make fuzz`.
    public var summary: String {
        String(
            format:
                "%@: %d executions in %.1f s (%.0f/s), corpus %d, outcomes %d (%d parsed, %d rejected), findings %d, hangs %d, slowest %.3f s",
            target, executions, seconds, Double(executions) / max(seconds, 1e-9), corpusSize, distinctOutcomes,
            parsedCount, rejectedCount, findings.count, slowInputs.count, slowestSeconds)
    }
}

/// A seeded mutation loop over one target: start from the seed files, mutate a random corpus
/// entry, run it, keep it when its outcome is new. Used by `dafar-fuzz` when libFuzzer is not
/// available and by the test suite for a short deterministic run.
public struct FuzzLoop {
    public var target: FuzzTarget
    public var seed: UInt64
    public var mutator = Mutator()
    /// Most inputs kept.
    public var maximumCorpus = 2000
    /// An input slower than this counts as a hang.
    public var hangSeconds = 2.0

    public init(target: FuzzTarget, seed: UInt64) {
        self.target = target
        self.seed = seed
    }

    /// Runs the seeds, then mutations until `iterations` inputs or `seconds` have passed
    /// (whichever comes first; nil means no limit on that axis).
    /// - Parameters:
    ///   - scratch: folder for the input file (the last input stays there).
    ///   - startingCorpus: extra inputs to start from (a saved corpus).
    ///   - onInput: called before each input runs (a watchdog records the time).
    public func run(
        iterations: Int?, seconds: Double?, scratch: URL, startingCorpus: [[UInt8]] = [],
        onInput: () -> Void = {}
    ) -> (report: FuzzReport, corpus: [[UInt8]]) {
        precondition(iterations != nil || seconds != nil, "give an iteration or a time limit")
        var random = FuzzRandom(seed: seed)
        var report = FuzzReport(target: target.name)
        var corpus: [[UInt8]] = []
        var outcomes = Set<String>()
        let file = scratch.appendingPathComponent("input-\(target.name)")
        let start = Date()

        func execute(_ input: [UInt8], alwaysKeep: Bool) {
            onInput()
            let began = Date()
            let outcome: FuzzOutcome
            do {
                outcome = try target.run(input, file: file)
            } catch {
                report.findings.append((String(describing: error), input))
                return
            }
            let took = Date().timeIntervalSince(began)
            report.executions += 1
            report.slowestSeconds = max(report.slowestSeconds, took)
            if took > hangSeconds { report.slowInputs.append((took, input)) }
            let signature: String
            switch outcome {
            case .parsed(let text): report.parsedCount += 1; signature = "ok " + Self.blanked(text)
            case .rejected(let text): report.rejectedCount += 1; signature = "error " + Self.blanked(text)
            }
            if outcomes.insert(signature).inserted || alwaysKeep {
                if corpus.count < maximumCorpus { corpus.append(input) } else { corpus[random.below(corpus.count)] = input }
            }
        }

        for input in target.seeds() + startingCorpus { execute(input, alwaysKeep: true) }
        while true {
            if let iterations, report.executions + report.findings.count >= iterations { break }
            if let seconds, Date().timeIntervalSince(start) >= seconds { break }
            let base = corpus.isEmpty ? [] : corpus[random.below(corpus.count)]
            let other = corpus.isEmpty ? [] : corpus[random.below(corpus.count)]
            execute(mutator.mutate(base, other: other, random: &random), alwaysKeep: false)
        }
        report.seconds = Date().timeIntervalSince(start)
        report.corpusSize = corpus.count
        report.distinctOutcomes = outcomes.count
        return (report, corpus)
    }

    /// `text` with digit runs (and hex numbers) as `#` and quoted text as `'…'`, so that outcomes differing only
    /// in numbers or echoed content count once.
    static func blanked(_ text: String) -> String {
        var result = ""
        var quote: Character?
        var lastWasDigit = false
        for character in text {
            if let open = quote {
                if character == open { quote = nil; result.append("…'") }
                continue
            }
            if character == "'" || character == "\"" { quote = character; result.append("'"); lastWasDigit = false; continue }
            if character.isNumber || (lastWasDigit && character.isHexDigit) || (result.hasSuffix("#") && character == "x") {
                if !lastWasDigit { result.append("#") }
                lastWasDigit = true
                continue
            }
            lastWasDigit = false
            result.append(character)
        }
        return result
    }

    /// A short stable name for an input (FNV-1a, hex), used for corpus and finding files.
    public static func name(of input: [UInt8]) -> String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in input { hash = (hash ^ UInt64(byte)) &* 0x0100_0000_01B3 }
        return String(hash, radix: 16)
    }
}
