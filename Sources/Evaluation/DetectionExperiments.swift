import Foundation
import Reporting

/// Section 5.3 of the paper (Fig. 6, Fig. 7) and the ROC analysis, every detector
/// beside the random-sign-noise control.
extension EvaluationRun {
    func intensitySection() -> ExperimentResult {
        var section = ReportSection(title: ExperimentKind.intensity.title)
        let columns = suite.columns
        var table = ReportTable(columns: detectionColumns)
        var attacks = ReportTable(columns: [
            "FGSM eps", "attack success", "already misclassified", "mean L2 (successful)",
            "noise: misclassified"
        ])
        var json: [JSONValue] = []
        var detected = [[PlotPoint]](repeating: [], count: columns.count)
        var flagged = [[PlotPoint]](repeating: [], count: columns.count)
        let bar = progress("scoring FGSM and noise per eps", total: inputs.fgsmEpsilons.count)
        for (step, eps) in inputs.fgsmEpsilons.enumerated() {
            let attack = inputs.fgsm(eps), noise = inputs.signNoise(eps)
            json.append(detectionRows(attack: attack, controls: [noise], into: &table))
            bar.update(step + 1)
            for (index, column) in columns.enumerated() {
                detected[index].append(PlotPoint(x: Double(eps), rate: detection(attack, column).successful.rate))
                flagged[index].append(PlotPoint(x: Double(eps), rate: flagRate(noise, column)))
            }
            let noiseWrong = Rate(zip(noise.predictedPerturbed, noise.labels).filter { $0 != $1 }.count, of: noise.count)
            attacks.addRow([
                .number(Double(eps), decimals: 2), .rate(attack.successRate), .integer(attack.alreadyWrong),
                .number(mean(selected(attack.l2Distances, attack.successful).map(Double.init)), decimals: 3),
                .rate(noiseWrong)
            ])
        }
        bar.finish()
        section.addTable(attacks)
        section.addParagraph(
            "Detection rates count successful FGSM examples (classified correctly before the attack, wrongly after); "
                + "failed attempts are a row of their own; images the model already misclassified are in neither. "
                + "The \"sign noise\" row under each eps is x + eps * random +-1, clipped: not an attack. "
                + "A detector that flags it as often as FGSM measures the perturbation's size, not its adversarialness.")
        section.addTable(table)
        let names = columns.map(\.legend)
        section.addFigure(
            LineChart(
                title: "Detection of successful FGSM examples", xLabel: "FGSM eps (L-inf)", yLabel: "detection rate",
                series: zip(names, detected).map { PlotSeries(name: $0, points: $1) },
                yRange: 0...1, yFormat: .percent),
            fileName: "fig6-detection.svg",
            caption: "Fig. 6: detection rate (Wilson 95 % intervals) versus FGSM intensity for every detector and threshold")
        var control: [PlotSeries] = []
        for index in columns.indices {
            control.append(PlotSeries(name: "\(names[index]): FGSM", points: detected[index], colorIndex: index))
            control.append(PlotSeries(name: "\(names[index]): noise", points: flagged[index], dashed: true, colorIndex: index))
        }
        section.addFigure(
            LineChart(
                title: "FGSM versus random sign noise of the same size", xLabel: "eps (L-inf)",
                yLabel: "flagged", series: control, yRange: 0...1, yFormat: .percent),
            fileName: "fig6-noise-control.svg",
            caption:
                "Noise control: solid = successful FGSM examples flagged, dashed = random sign noise flagged, same colour = same detector")
        section.addParagraph(Self.noiseVerdicts(headers: columns.map(\.header), attack: detected, noise: flagged))
        return ExperimentResult(section: section, results: ["intensity": .array(json)])
    }

    /// One line per detector column (`headers`): the eps at which random sign noise is flagged as
    /// often as the attack, i.e. at least as often or with overlapping Wilson 95 % intervals.
    /// `attack[i]` and `noise[i]` hold column `i`'s rates, one point per eps.
    static func noiseVerdicts(headers: [String], attack: [[PlotPoint]], noise: [[PlotPoint]]) -> String {
        var lines = ["**Noise control.**"]
        for (index, header) in headers.enumerated() {
            let asOften = zip(attack[index], noise[index]).filter { a, n in
                guard a.y.isFinite, n.y.isFinite else { return false }
                return n.y >= a.y || (n.yInterval?.upperBound ?? n.y) >= (a.yInterval?.lowerBound ?? a.y)
            }.map { format($0.0.x) }
            let text =
                asOften.isEmpty
                ? "flags FGSM more often than noise at every eps (95 % intervals apart)"
                : "flags random sign noise as often as FGSM (overlapping 95 % intervals or more) at eps \(asOften.joined(separator: ", "))"
            lines.append("- \(header) \(text).")
        }
        return lines.joined(separator: "\n")
    }

    func attackSection() -> ExperimentResult {
        var section = ReportSection(title: ExperimentKind.attacks.title)
        let columns = suite.columns
        let sets = attackSets()
        var stats = ReportTable(columns: [
            "attack", "images", "attack success", "already misclassified", "mean L2 (successful)",
            "mean L-inf (successful)", "source"
        ])
        var table = ReportTable(columns: detectionColumns)
        var json: [JSONValue] = []
        var detectedBars = [[String: BarValue]](repeating: [:], count: columns.count)
        var noiseBars = [[String: BarValue]](repeating: [:], count: columns.count)
        var shuffledBars = [[String: BarValue]](repeating: [:], count: columns.count)
        let bar = progress("scoring attacks and their controls", total: sets.count)
        for (step, set) in sets.enumerated() {
            let noise = inputs.matchedSignNoise(set), shuffled = inputs.shuffledPerturbation(set)
            json.append(detectionRows(attack: set, controls: [noise, shuffled], into: &table))
            bar.update(step + 1)
            stats.addRow([
                .text(set.name), .integer(set.count), .rate(set.successRate), .integer(set.alreadyWrong),
                .number(mean(selected(set.l2Distances, set.successful).map(Double.init)), decimals: 3),
                .number(mean(selected(set.lInfinityDistances, set.successful).map(Double.init)), decimals: 3),
                .text(set.source == "generated" ? String(format: "generated in %.0f s", set.seconds) : set.source)
            ])
            for (index, column) in columns.enumerated() {
                detectedBars[index][set.name] = BarValue(detection(set, column).successful.rate)
                noiseBars[index][set.name] = BarValue(flagRate(noise, column))
                shuffledBars[index][set.name] = BarValue(flagRate(shuffled, column))
            }
        }
        bar.finish()
        section.addTable(stats)
        section.addParagraph(
            "The binary classifier was trained on FGSM eps=\(format(settings.epsilon)) examples only; its rows on "
                + "the other attacks show how much it depends on the attack it saw. Two controls follow each attack, "
                + "neither of them an attack: \"sign noise ~attack\" perturbs the same images with random signs of the "
                + "attack's per-image L-inf size; \"shuffled ~attack\" moves the attack's own perturbation values to random "
                + "pixels of the same image (same L0, L2 and L-inf before clipping, direction destroyed), the fairer "
                + "control for the L2 and L0 attacks CW-L2 and JSMA.")
        section.addTable(table)
        let names = sets.map(\.name)
        func addBars(_ title: String, xLabel: String, yLabel: String, _ bars: [[String: BarValue]], file: String, caption: String) {
            section.addFigure(
                BarChart(
                    title: title, xLabel: xLabel, yLabel: yLabel, categories: names,
                    series: columns.indices.map { BarSeries(name: columns[$0].legend, values: bars[$0]) },
                    yRange: 0...1, yFormat: .percent),
                fileName: file, caption: caption)
        }
        addBars(
            "Detection of successful adversarial examples", xLabel: "attack", yLabel: "detection rate", detectedBars,
            file: "fig7-attacks.svg",
            caption: "Fig. 7: detection rate (Wilson 95 % intervals) of successful examples per attack and detector")
        addBars(
            "Random sign noise of each attack's L-inf size", xLabel: "noise matched to attack", yLabel: "flagged", noiseBars,
            file: "fig7-noise-control.svg",
            caption: "Noise control for Fig. 7: the same detectors on random sign noise with each attack's per-image L-inf size")
        addBars(
            "Each attack's perturbation, pixels shuffled", xLabel: "perturbation shuffled from attack", yLabel: "flagged",
            shuffledBars, file: "fig7-shuffled-control.svg",
            caption: "Shuffled control for Fig. 7: each attack's perturbation values moved to random pixels of the same image")
        return ExperimentResult(section: section, results: ["attacks": .array(json)])
    }

    func rocSection() -> ExperimentResult {
        var section = ReportSection(title: ExperimentKind.roc.title)
        let rates = Array(Set([0.01, settings.operatingRate])).sorted()
        var columns = ["input", "detector", "clean / positives", "ROC-AUC"]
        for rate in rates { columns += ["TPR at \(format(rate * 100)) % FPR", "test FPR there"] }
        var table = ReportTable(columns: columns)
        var json: [JSONValue] = []
        let inputsToPlot = attackSets() + [inputs.signNoise(settings.epsilon)]
        for set in inputsToPlot {
            var curves: [(name: String, curve: ROCCurve)] = []
            for (index, detector) in detectors.enumerated() {
                let clean = book.testClean(index, count: min(settings.count, splits.test.count))
                let positives = set.family.isAttack ? selected(book.perturbed(index, set), set.successful) : book.perturbed(index, set)
                guard let curve = ROCCurve(cleanScores: clean, adversarialScores: positives) else {
                    table.addRow(
                        [.text(set.name), .text(detector.name), .text("\(clean.count) / 0"), .text("n/a")]
                            + rates.flatMap { _ in [TableCell.text("n/a"), .text("n/a")] })
                    continue
                }
                curves.append((detector.name, curve))
                let points = rates.map {
                    OperatingPoint(
                        targetFalsePositiveRate: $0, calibrationScores: detector.validationScores,
                        cleanScores: clean, adversarialScores: positives)
                }
                table.addRow(
                    [
                        .text(set.name), .text(detector.name), .text("\(clean.count) / \(positives.count)"),
                        .number(curve.auc, decimals: 4)
                    ] + points.flatMap { [TableCell.rate($0.truePositives), .rate($0.falsePositives)] })
                json.append([
                    "input": .string(set.name), "detector": .string(detector.name), "auc": .number(curve.auc),
                    "negatives": .int(curve.negatives), "positives": .int(curve.positives),
                    "operatingPoints": .array(points.map(\.json))
                ])
            }
            if !curves.isEmpty {
                section.addFigure(
                    LineChart.roc(title: "ROC: \(set.name)", curves: curves), fileName: "roc-\(set.key).svg",
                    caption: "ROC curves on \(set.name): the first clean test images (negatives) against "
                        + (set.family.isAttack ? "successful adversarial examples" : "noisy images") + " (positives)")
            }
        }
        section.addParagraph(
            "Positives are successful adversarial examples (for the noise row: every noisy image); negatives the first "
                + "\(min(settings.count, splits.test.count)) clean test images. The true-positive rates use thresholds fitted on clean validation images, and the "
                + "false-positive rate they give on the clean test images is shown beside them. An AUC near 1 on "
                + "\"sign noise\" means the detector separates random noise from clean images as well as attacks.")
        section.addTable(table)
        return ExperimentResult(section: section, results: ["roc": .array(json)])
    }
}
