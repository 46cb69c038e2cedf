import Autodiff
import DAFAR
import Foundation
import Reporting
import Tensors

/// Section 5.2 of the paper: why DAFAR should work (Table 2, Fig. 4, Fig. 5).
extension EvaluationRun {
    /// The paper's Table 2 (MNIST, eps 0.3, 1000 test images).
    static let paperFeatureDistances: [PerturbedSet.Family: Double] = [.gaussianNoise: 63.25, .fgsm: 102.64, .pgd: 96.44]

    /// The high-level features D reads, `E(x)` up to the feedback layer, flattened: `[N, F]`.
    func features(_ images: Tensor) -> Tensor {
        let network = model.network
        return images.mapBatches { network.features(Variable($0), layers: 0..<network.feedbackLayer).value }
    }

    /// `||a_i - b_i||_2` for matching rows of two `[N, ...]` tensors.
    func rowDistances(_ a: Tensor, _ b: Tensor) -> [Float] { (a - b).l2NormsPerSample() }

    func featureSection() -> ExperimentResult {
        var section = ReportSection(title: ExperimentKind.features.title)
        let eps = settings.epsilon
        let sets = [inputs.gaussianNoise(eps), inputs.signNoise(eps), inputs.fgsm(eps), inputs.pgd()]
        var table = ReportTable(columns: [
            "perturbation", "images", "mean ||E(x')-E(x)||_2", "mean ||x'-x||_2",
            "feature / input L2", "successful only: mean feature L2", "paper (MNIST)"
        ])
        var json: [JSONValue] = []
        for set in sets {
            let distances = rowDistances(features(set.perturbed), features(set.clean)).map(Double.init)
            let inputL2 = set.l2Distances.map(Double.init)
            let successful = set.successful
            let meanFeature = mean(distances), meanInput = mean(inputL2)
            let successfulMean = set.family.isAttack ? mean(zip(distances, successful).filter(\.1).map(\.0)) : .nan
            let paper = Self.paperFeatureDistances[set.family]
            table.addRow([
                .text(set.name), .integer(set.count), .number(meanFeature, decimals: 2), .number(meanInput, decimals: 2),
                .number(meanFeature / meanInput, decimals: 2),
                set.family.isAttack ? .number(successfulMean, decimals: 2) : .text("-"),
                paper.map { .number($0, decimals: 2) } ?? .text("-")
            ])
            json.append([
                "input": .string(set.name), "count": .int(set.count), "meanFeatureL2": .number(meanFeature),
                "meanInputL2": .number(meanInput), "meanFeatureL2Successful": .number(successfulMean),
                "paper": paper.map { .number($0) } ?? .null
            ])
        }
        section.addTable(table)
        section.addParagraph(
            "E(x) is the output of the target network's feature layers up to the feedback position "
                + "(layer \(model.network.feedbackLayer) of \(model.network.features.layers.count)), the input of D. "
                + "The paper's \"Gaussian (0.3, 0.3)\" is read as sigma = \(format(eps)) here. The perturbations differ in "
                + "input size (the mean ||x'-x||_2 column), so compare the feature / input ratio, not the feature distance alone. "
                + "The paper's numbers come from its own full-MNIST model; the scale of E(x) depends on the model.")
        return ExperimentResult(section: section, results: ["features": .array(json)])
    }

    func reconstructionSection() -> ExperimentResult {
        var section = ReportSection(title: ExperimentKind.reconstruction.title)
        let fgsm = inputs.fgsmEpsilons.map { inputs.fgsm($0) }
        let noise = inputs.fgsmEpsilons.map { inputs.signNoise($0) }
        let clean = reconstructionDistances(splits.test.images.slice(0..<min(settings.count, splits.test.count)))
        var table = distributionTable(valueName: "||x - D(E(x))||_2")
        var json: [String: JSONValue] = [:]
        var series = [DensitySeries(name: "clean", samples: clean)]
        addDistributionRow(&table, &json, name: "clean test images", values: clean)
        let bar = progress("reconstructing FGSM and noise per eps", total: fgsm.count)
        defer { bar.finish() }
        for (step, (attack, control)) in zip(fgsm, noise).enumerated() {
            defer { bar.update(step + 1) }
            let attackValues = selected(book.reconstructionDistances(attack, dafar: model), attack.successful)
            addDistributionRow(&table, &json, name: "\(attack.name) (successful)", values: attackValues)
            addDistributionRow(&table, &json, name: control.name, values: book.reconstructionDistances(control, dafar: model))
            series.append(DensitySeries(name: "FGSM \(format(attack.epsilon ?? 0))", samples: attackValues))
        }
        section.addTable(table)
        section.addFigure(
            DensityChart(
                title: "Reconstruction distance per FGSM intensity (successful examples)",
                xLabel: "||x - D(E(x))||_2", series: series),
            fileName: "fig4-reconstruction.svg",
            caption: "Fig. 4: proportion density of the reconstruction distance, clean test images and successful FGSM examples per eps")
        section.addParagraph(
            "Rows \"sign noise\" hold random sign noise of the same L-inf size: if their distances match FGSM's, "
                + "the distance grows with the perturbation's size, whatever its direction.")
        return ExperimentResult(section: section, results: ["reconstruction": .object(json)])
    }

    func scoreSection() -> ExperimentResult {
        var section = ReportSection(title: ExperimentKind.scores.title)
        let dafar = detectors[0]
        let count = min(settings.count, splits.test.count)
        let clean = book.testClean(0, count: count)
        let lines = dafar.thresholds.map { ReferenceLine(x: Double($0.value), label: "\($0.label) = \(String(format: "%.3f", $0.value))") }
        var table = ReportTable(columns: ["input", "images", "mean", "std", "median", "flagged at alpha"])
        var json: [String: JSONValue] = [:]
        let alpha = Double(dafar.thresholds[0].value)
        func add(_ name: String, _ scores: [Float]) {
            let values = scores.map(Double.init)
            let flagged = DetectionCounts(scores: scores, threshold: alpha).rate
            table.addRow([
                .text(name), .integer(values.count), .number(mean(values), decimals: 3),
                .number(standardDeviation(values), decimals: 3), .number(median(values), decimals: 3), .rate(flagged)
            ])
            json[name] = [
                "count": .int(values.count), "mean": .number(mean(values)), "std": .number(standardDeviation(values)),
                "median": .number(median(values)), "flaggedAtAlpha": flagged.json
            ]
        }
        add("clean test images", clean)
        add("clean validation images", dafar.validationScores)
        var fgsmSeries = [DensitySeries(name: "clean", samples: clean)]
        let bar = progress("scoring FGSM and noise per eps", total: inputs.fgsmEpsilons.count)
        for (step, eps) in inputs.fgsmEpsilons.enumerated() {
            defer { bar.update(step + 1) }
            let set = inputs.fgsm(eps)
            let scores = selected(book.perturbed(0, set), set.successful)
            add("\(set.name) (successful)", scores)
            add(inputs.signNoise(eps).name, book.perturbed(0, inputs.signNoise(eps)))
            fgsmSeries.append(DensitySeries(name: "FGSM \(format(eps))", samples: scores))
        }
        bar.finish()
        section.addFigure(
            DensityChart(
                title: "DAFAR anomaly scores per FGSM intensity", xLabel: "anomaly score", series: fgsmSeries,
                thresholds: lines),
            fileName: "fig5-scores-fgsm.svg",
            caption:
                "Fig. 5: proportion density of DAFAR's anomaly score, clean test images and successful FGSM examples, with the thresholds")
        var attackSeries = [DensitySeries(name: "clean", samples: clean)]
        let eps = settings.epsilon
        let noise = inputs.signNoise(eps)
        attackSeries.append(DensitySeries(name: "sign noise \(format(eps))", samples: book.perturbed(0, noise)))
        let attacks = settings.experiments.contains(.attacks) ? attackSets() : [inputs.fgsm(eps)]
        for set in attacks {
            let scores = selected(book.perturbed(0, set), set.successful)
            if set.family != .fgsm { add("\(set.name) (successful)", scores) }
            attackSeries.append(DensitySeries(name: set.name, samples: scores))
        }
        section.addTable(table)
        section.addFigure(
            DensityChart(
                title: "DAFAR anomaly scores per attack", xLabel: "anomaly score", series: attackSeries,
                thresholds: lines),
            fileName: "fig5-scores-attacks.svg",
            caption: "Fig. 5 (attacks): DAFAR's anomaly score for clean images, random sign noise and successful examples of each attack")
        return ExperimentResult(section: section, results: ["scores": .object(json)])
    }

    // MARK: - Helpers

    /// `||x - D(E(x))||_2` per image.
    func reconstructionDistances(_ images: Tensor) -> [Float] {
        rowDistances(images, model.reconstruct(images))
    }

    func distributionTable(valueName: String) -> ReportTable {
        ReportTable(columns: ["input", "images", "mean \(valueName)", "std", "5 %", "median", "95 %"])
    }

    func addDistributionRow(_ table: inout ReportTable, _ json: inout [String: JSONValue], name: String, values: [Float]) {
        let v = values.map(Double.init).sorted()
        let q = { (p: Double) in v.isEmpty ? Double.nan : KernelDensity.quantile(v, p) }
        table.addRow([
            .text(name), .integer(v.count), .number(mean(v), decimals: 3), .number(standardDeviation(v), decimals: 3),
            .number(q(0.05), decimals: 3), .number(q(0.5), decimals: 3), .number(q(0.95), decimals: 3)
        ])
        json[name] = [
            "count": .int(v.count), "mean": .number(mean(v)), "std": .number(standardDeviation(v)),
            "quantiles": .numbers([q(0.05), q(0.5), q(0.95)])
        ]
    }
}

/// The entries of `values` whose `mask` entry is true.
func selected<T>(_ values: [T], _ mask: [Bool]) -> [T] { zip(values, mask).filter(\.1).map(\.0) }

/// Arithmetic mean (NaN when empty).
func mean(_ values: [Double]) -> Double { values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count) }

/// Population standard deviation (NaN when empty).
func standardDeviation(_ values: [Double]) -> Double {
    let m = mean(values)
    return values.isEmpty ? .nan : (values.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(values.count)).squareRoot()
}

/// Median (NaN when empty).
func median(_ values: [Double]) -> Double {
    values.isEmpty ? .nan : KernelDensity.quantile(values.sorted(), 0.5)
}
