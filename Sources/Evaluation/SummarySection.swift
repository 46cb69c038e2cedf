import Datasets
import Foundation
import Reporting

/// What the DAFAR paper claims for one dataset.
public struct PaperClaims: Sendable {
    /// The dataset the paper measured.
    public let dataset: String
    /// Clean test accuracy, false-positive rate and FGSM detection rate (fractions).
    public let accuracy: Double
    public let falsePositiveRate: Double
    public let fgsmDetection: Double
    /// The paper's score threshold (its own score scale).
    public let threshold: Double

    /// MNIST: 99.24 %, 0.16 %, 100 % at every FGSM eps, threshold 23.333.
    public static let mnist = PaperClaims(
        dataset: "MNIST", accuracy: 0.9924, falsePositiveRate: 0.0016, fgsmDetection: 1, threshold: 23.333)
    /// CIFAR-10: 86.17 %, 3.49 %, "100 % across most intensities", threshold 230.143.
    public static let cifar10 = PaperClaims(
        dataset: "CIFAR-10", accuracy: 0.8617, falsePositiveRate: 0.0349, fgsmDetection: 1, threshold: 230.143)

    /// The claims to compare a dataset with (MNIST's for the MNIST-like ones).
    public static func forDataset(_ name: DatasetName) -> PaperClaims { name == .cifar10 ? .cifar10 : .mnist }
}

extension EvaluationRun {
    /// Where the paper's claims are compared with this run, stated plainly, and the compact summary table.
    func summarySection(context: ReportContext, adaptive: [AdaptiveOutcome]) -> ExperimentResult {
        var section = ReportSection(title: "Summary: this run against the paper's claims")
        let claims = PaperClaims.forDataset(context.dataset)
        let dafar = detectors[0]
        let count = splits.test.count
        let accuracy = Metrics.accuracy(predictions: model.classify(splits.test.images), labels: splits.test.labels)
        let alpha = dafar.thresholds[0]
        let falsePositives = Metrics.falsePositiveRate(cleanScores: book.testClean(0, count: count), threshold: Double(alpha.value))
        let alphaColumn = suite.columns[0]
        let fgsm = inputs.fgsmEpsilons.map { ($0, detection(inputs.fgsm($0), alphaColumn).successful.rate) }
        let noise = inputs.fgsmEpsilons.map { flagRate(inputs.signNoise($0), alphaColumn) }

        var table = ReportTable(columns: ["quantity", "paper (\(claims.dataset))", "this run", "verdict"])
        table.addRow([
            "clean test accuracy", .text(percent(claims.accuracy)), .rate(accuracy),
            .text(compare(accuracy, claims.accuracy, higherIsBetter: true))
        ])
        table.addRow([
            "DAFAR false-positive rate at alpha (clean test)", .text(percent(claims.falsePositiveRate)), .rate(falsePositives),
            .text(compare(falsePositives, claims.falsePositiveRate, higherIsBetter: false))
        ])
        for ((eps, rate), noiseRate) in zip(fgsm, noise) {
            table.addRow([
                .text("FGSM eps=\(format(eps)) detected at alpha (successful)"), .text(percent(claims.fgsmDetection)),
                .rate(rate), .text(compare(rate, claims.fgsmDetection, higherIsBetter: true))
            ])
            table.addRow([
                .text("  random sign noise eps=\(format(eps)) flagged at alpha"), "not measured", .rate(noiseRate),
                .text(noiseVersusAttack(noise: noiseRate, attack: rate))
            ])
        }
        table.addRow([
            "score threshold", .text(format(claims.threshold)), .number(Double(alpha.value), decimals: 3),
            "different score scale; not comparable"
        ])

        var shortfalls: [String] = []
        if context.dataset != .mnist && context.dataset != .cifar10 {
            shortfalls.append(
                "This run uses \(context.dataset.rawValue), the paper \(claims.dataset) (the full training set); the claims are "
                    + "shown for reference, and a smaller or different training set can explain part of any gap.")
        }
        if accuracy.wilson95.upperBound < claims.accuracy {
            shortfalls.append("Clean accuracy \(accuracy) is below the paper's \(percent(claims.accuracy)).")
        }
        if falsePositives.wilson95.lowerBound > claims.falsePositiveRate {
            shortfalls.append(
                "DAFAR's false-positive rate at its stored alpha is \(falsePositives) on clean test images, above the paper's \(percent(claims.falsePositiveRate))."
            )
        }
        let missed = fgsm.filter { !$0.1.isEmpty && $0.1.numerator < $0.1.denominator }
        if !missed.isEmpty {
            shortfalls.append(
                "FGSM detection at alpha is below 100 % at eps " + missed.map { "\(format($0.0)) (\($0.1))" }.joined(separator: ", ")
                    + "; the paper claims 100 % at every intensity.")
        }
        let asOften = zip(fgsm, noise).filter { !$0.0.1.isEmpty && !$0.1.isEmpty && $0.1.wilson95.upperBound >= $0.0.1.wilson95.lowerBound }
        if !asOften.isEmpty {
            shortfalls.append(
                "Random sign noise (not an attack) is flagged about as often as successful FGSM examples at eps "
                    + asOften.map { "\(format($0.0.0)) (noise \($0.1), FGSM \($0.0.1))" }.joined(separator: ", ")
                    + ": there the score measures the perturbation's size rather than its adversarialness.")
        }
        if settings.experiments.contains(.attacks) {
            let rows = attackSets().map { set -> String in
                let found = detection(set, alphaColumn).successful.rate
                let shuffled = flagRate(inputs.shuffledPerturbation(set), alphaColumn)
                return "\(set.name) \(found) (its shuffled perturbation: \(shuffled))"
            }
            if attackSets().contains(where: {
                let r = detection($0, alphaColumn).successful.rate; return !r.isEmpty && r.numerator < r.denominator
            }) {
                shortfalls.append(
                    "Across attacks (Fig. 7) DAFAR at alpha detects successful examples of " + rows.joined(separator: "; ")
                        + "; the paper presents DAFAR as attack-independent. Where the shuffled perturbation (not an attack) "
                        + "is flagged as often as the attack, the score follows the perturbation's size.")
            }
        }
        if let worst = adaptiveWorstCase(adaptive) { shortfalls.append(worst) }
        section.addParagraph(
            shortfalls.isEmpty
                ? "**Where DAFAR falls short of the paper:** nowhere in what this run measured."
                : "**Where DAFAR falls short of the paper:**\n\n" + shortfalls.map { "- \($0)" }.joined(separator: "\n"))
        section.addTable(table)
        let summaryTable = makeSummaryTable(count: count)
        section.addParagraph(
            "Every detector at every threshold, on the main inputs (successful examples for attacks; "
                + "thresholds fitted on clean validation images):")
        section.addTable(summaryTable)
        let paper: JSONValue = [
            "dataset": .string(claims.dataset), "accuracy": .number(claims.accuracy),
            "falsePositiveRate": .number(claims.falsePositiveRate), "fgsmDetection": .number(claims.fgsmDetection)
        ]
        let summary: JSONValue = [
            "testAccuracy": accuracy.json, "dafarFalsePositivesAtAlpha": falsePositives.json,
            "shortfalls": .array(shortfalls.map { .string($0) })
        ]
        return ExperimentResult(section: section, results: ["paper": paper, "summary": summary], table: summaryTable)
    }

    /// The compact table `dafar-eval` prints: clean FPR, each main attack and the noise control per detector column.
    func makeSummaryTable(count: Int) -> ReportTable {
        let eps = settings.epsilon
        let sets = settings.experiments.contains(.attacks) || settings.experiments.contains(.roc) ? attackSets() : [inputs.fgsm(eps)]
        let noise = inputs.signNoise(eps)
        var table = ReportTable(columns: ["detector", "clean FPR (test)"] + sets.map(\.name) + [noise.name])
        for column in suite.columns {
            let threshold = Double(detectors[column.detector].thresholds[column.threshold].value)
            let clean = Metrics.falsePositiveRate(cleanScores: book.testClean(column.detector, count: count), threshold: threshold)
            table.addRow(
                [.text(column.header), .rate(clean)] + sets.map { .rate(detection($0, column).successful.rate) }
                    + [.rate(flagRate(noise, column))])
        }
        return table
    }

    /// The adaptive attack's best evasion rate against each detector, as a sentence (nil when the
    /// experiment did not run or never got through).
    func adaptiveWorstCase(_ adaptiveOutcomes: [AdaptiveOutcome]) -> String? {
        let detectors = adaptiveOutcomes.map(\.detector).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        let parts = detectors.compactMap { name -> String? in
            let worst = adaptiveOutcomes.filter { $0.detector == name && $0.evaded.value.isFinite }.max {
                $0.evaded.value < $1.evaded.value
            }
            guard let worst, worst.evaded.value > 0 else { return nil }
            let budget = worst.epsilon.map { ", eps \(format($0))" } ?? ""
            return "against \(name), adaptive \(worst.attack) (lambda \(format(worst.lambda))\(budget)) fools the classifier without "
                + "being flagged on \(worst.evaded) of the correctly classified test images"
        }
        return parts.isEmpty ? nil : "The attacker who knows the detector: " + parts.joined(separator: "; ") + "."
    }

    /// Settings, inputs, timings and the commands that reproduce the run.
    func settingsSection(context: ReportContext, timings: [(String, Double)]) -> ExperimentResult {
        var section = ReportSection(title: "Settings and how to reproduce")
        var table = ReportTable(columns: ["setting", "value"])
        let metadata = model.metadata
        var rows: [(String, String)] = [
            (
                "dataset",
                "\(context.dataset.rawValue): \(splits.train.count) train, \(splits.validation.count) validation, \(splits.test.count) test images"
            ),
            ("model", "\(context.modelFile) (sha256 \(model.modelHash.prefix(16))...)"),
            (
                "model training",
                ["epochs", "seed", "test_accuracy"].compactMap { key in metadata[key].map { "\(key) \($0)" } }.joined(separator: ", ")
            ),
            ("detector", context.detectorFile)
        ]
        rows += settings.rows + context.extraSettings
        for set in inputs.providedSets { rows.append(("adversarial set read", "\(set.name): \(set.source) (\(set.count) images)")) }
        for (name, value) in rows { table.addRow([.text(name), .text(value)]) }
        section.addTable(table)
        var times = ReportTable(columns: ["phase", "seconds"])
        for (phase, seconds) in timings { times.addRow([.text(phase), .number(seconds, decimals: 1)]) }
        for (name, seconds) in suite.seconds.sorted(by: { $0.key < $1.key }) {
            times.addRow([.text("  detector: \(name)"), .number(seconds, decimals: 1)])
        }
        section.addTable(times)
        if !context.commands.isEmpty {
            section.addParagraph("Commands that reproduce this report:\n\n```sh\n" + context.commands.joined(separator: "\n") + "\n```")
        }
        let settingsJSON = JSONValue.object(
            Dictionary(
                rows.map { ($0.0, JSONValue.string($0.1)) },
                uniquingKeysWith: { a, b in
                    if case .string(let x) = a, case .string(let y) = b { return .string(x + "; " + y) }
                    return b
                }))
        let timingsJSON = JSONValue.object(Dictionary(timings.map { ($0.0, JSONValue.number($0.1)) }, uniquingKeysWith: { _, b in b }))
        return ExperimentResult(section: section, results: ["settings": settingsJSON, "timings": timingsJSON])
    }
}

/// How a control's flag rate compares with the attack's detection rate.
func noiseVersusAttack(noise: Rate, attack: Rate) -> String {
    guard !noise.isEmpty, !attack.isEmpty else { return "-" }
    if noise.value >= attack.value { return "noise flagged as often as FGSM or more" }
    let gap = String(format: "%.1f points below FGSM", (attack.value - noise.value) * 100)
    return noise.wilson95.upperBound >= attack.wilson95.lowerBound ? gap + " (95 % intervals overlap)" : gap
}

/// `99.24 %`.
func percent(_ fraction: Double) -> String { format(fraction * 100) + " %" }

/// How a measured rate relates to the paper's value, using its Wilson 95 % interval.
func compare(_ rate: Rate, _ paper: Double, higherIsBetter: Bool) -> String {
    guard !rate.isEmpty else { return "not measured" }
    if rate.wilson95.contains(paper) { return "consistent with the paper (within the 95 % interval)" }
    let below = rate.wilson95.upperBound < paper
    return below == higherIsBetter ? "falls short of the paper" : "better than the paper"
}
