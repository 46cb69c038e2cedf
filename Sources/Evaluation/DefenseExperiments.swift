import Baselines
import Foundation
import Reporting
import Tensors

/// Section 6.1 of the paper (Fig. 8) and the adaptive attack.
extension ExperimentRunner {
    func filterSection() -> ReportSection {
        var section = ReportSection(title: ExperimentKind.filter.title)
        let dafar = detectors[0]
        let classifier = ClassifierFunction(logits: { self.model.logits($0) })
        let operating = dafar.thresholds.firstIndex { $0.label == "\(format(settings.operatingRate * 100)) %" } ?? 0
        let systems = ["no defense", "median filter only", "DAFAR alpha, rejection only", "DAFAR alpha + median filter",
                       "DAFAR \(dafar.thresholds[operating].label) + median filter"]
        var table = ReportTable(columns: ["FGSM eps", "inputs"] + systems)
        var points = [[PlotPoint]](repeating: [], count: systems.count)
        var json: [JSONValue] = []
        // Filtered classes of every image once: clean images are shared by all eps (the first test images).
        let count = min(settings.count, splits.test.count)
        let filteredClean = classifier.predictions(medianFilter(splits.test.images.slice(0..<count), size: 2))
        let bar = progress("filtering and classifying per eps", total: inputs.fgsmEpsilons.count)
        defer { bar.finish() }
        for (step, eps) in inputs.fgsmEpsilons.enumerated() {
            defer { bar.update(step + 1) }
            let attack = inputs.fgsm(eps)
            let n = attack.count
            let labels = attack.labels + attack.labels                                 // clean first, then adversarial
            let isAdversarial = [Bool](repeating: false, count: n) + [Bool](repeating: true, count: n)
            let scores = book.clean(0, attack) + book.perturbed(0, attack)
            func flags(_ threshold: Int) -> [Bool] { scores.map { $0 > dafar.thresholds[threshold].value } }
            let unfiltered = attack.predictedClean + attack.predictedPerturbed
            let cleanFiltered = attack.cleanIsTestPrefix ? Array(filteredClean.prefix(n))
                : classifier.predictions(medianFilter(attack.clean, size: 2))
            let filtered = cleanFiltered + classifier.predictions(medianFilter(attack.perturbed, size: 2))
            let none = [Bool](repeating: false, count: 2 * n)
            func evaluate(_ flagged: [Bool], _ predictions: [Int]) -> FilterPipeline.Result {
                FilterPipeline.evaluate(flagged: flagged, isAdversarial: isAdversarial, labels: labels, filteredPredictions: predictions)
            }
            let outcomes = [evaluate(none, unfiltered), evaluate(none, filtered), evaluate(flags(0), unfiltered),
                            evaluate(flags(0), filtered), evaluate(flags(operating), filtered)]
            let rates = outcomes.map { Rate($0.correct, of: $0.total) }
            table.addRow([.number(Double(eps), decimals: 2), .text("\(n) clean + \(n) FGSM")] + rates.map { .rate($0) })
            for (index, rate) in rates.enumerated() { points[index].append(PlotPoint(x: Double(eps), rate: rate)) }
            json.append(["epsilon": .number(Double(eps)), "clean": .int(n), "adversarial": .int(n),
                         "systems": .object(Dictionary(uniqueKeysWithValues: zip(systems, rates.map(\.json)))),
                         "rejectedClean": .int(outcomes[3].rejectedClean), "rejectedAdversarial": .int(outcomes[3].rejectedAdversarial)])
        }
        section.addParagraph("Each mix holds the first test images clean and their FGSM versions (every attack output, successful or "
                             + "not), 1:1. A rejected adversarial input counts as correct, a rejected clean input as wrong; accepted "
                             + "inputs are median-filtered (2x2) and classified (paper section 6.1). The paper's Fig. 8 is on CIFAR-10.")
        section.addTable(table)
        section.addFigure(LineChart(title: "Accuracy on a 1:1 clean/FGSM mix", xLabel: "FGSM eps (L-inf)", yLabel: "accuracy",
                                    series: zip(systems, points).map { PlotSeries(name: $0, points: $1) },
                                    yRange: 0...1, yFormat: .percent),
                          fileName: "fig8-filter.svg",
                          caption: "Fig. 8: accuracy (Wilson 95 % intervals) of the classifier alone, with a median filter, with DAFAR "
                              + "rejection, and with both, on a 1:1 mix of clean and FGSM inputs")
        results["filter"] = .array(json)
        return section
    }

    func adaptiveSection() -> ReportSection {
        var section = ReportSection(title: ExperimentKind.adaptive.title)
        let dafar = detectors[0]
        let active = model.threshold ?? dafar.thresholds[0].value
        let operating = dafar.thresholds.firstIndex { $0.label == "\(format(settings.operatingRate * 100)) %" } ?? 0
        let operatingLabel = dafar.thresholds[operating].label
        var table = ReportTable(columns: ["lambda", "eps", "images", "misclassified", "misclassified and not flagged (attack success)",
                                          "DAFAR detects (active threshold)", "DAFAR detects (\(operatingLabel))",
                                          "mean L2 (misclassified)"])
        var json: [JSONValue] = []
        var series: [PlotSeries] = []
        let lambdas = Array(Set(settings.adaptiveLambdas + inputs.providedSets.filter { $0.family == .adaptivePGD }.compactMap(\.lambda))).sorted()
        let budgets = Array(Set(settings.adaptiveEpsilons + inputs.providedSets.filter { $0.family == .adaptivePGD }.compactMap(\.epsilon))).sorted()
        for lambda in lambdas {
            var points: [PlotPoint] = []
            for eps in budgets {
                let set = inputs.adaptive(lambda: lambda, epsilon: eps)
                let scores = book.perturbed(0, set)
                let fooled = set.successful
                let correct = set.count - set.alreadyWrong
                let fooledScores = selected(scores, fooled)
                let evaded = Rate(fooledScores.filter { $0 <= active }.count, of: correct)
                let detectedActive = DetectionCounts(scores: fooledScores, threshold: Double(active)).rate
                let detectedOperating = DetectionCounts(scores: fooledScores, threshold: Double(dafar.thresholds[operating].value)).rate
                let misclassified = Rate(fooledScores.count, of: correct)
                table.addRow([.number(Double(lambda), decimals: 2), .number(Double(eps), decimals: 2), .integer(set.count),
                              .rate(misclassified), .rate(evaded), .rate(detectedActive), .rate(detectedOperating),
                              .number(mean(selected(set.l2Distances, fooled).map(Double.init)), decimals: 3)])
                points.append(PlotPoint(x: Double(eps), rate: evaded))
                json.append(["lambda": .number(Double(lambda)), "epsilon": .number(Double(eps)), "misclassified": misclassified.json,
                             "evaded": evaded.json, "detectedActive": detectedActive.json, "detectedOperating": detectedOperating.json])
            }
            series.append(PlotSeries(name: "lambda \(format(lambda))", points: points))
        }
        section.addParagraph("Adaptive PGD (random start, step 0.01, \(settings.adaptiveSteps) steps) maximises CE(F(E(x'))) - lambda * "
                             + "max(0, score(x') - t) with gradients through E, D and C, against the detector's active threshold "
                             + "t = \(String(format: "%.4f", active)). Attack success = misclassified AND not flagged at t, over the "
                             + "images classified correctly before. lambda = 0 is plain PGD. Rates are out of the correctly classified images; "
                             + "detection rates out of the misclassified ones.")
        section.addTable(table)
        section.addFigure(LineChart(title: "Adaptive attack: misclassified and not flagged", xLabel: "eps (L-inf)",
                                    yLabel: "attack success", series: series, yRange: 0...1, yFormat: .percent),
                          fileName: "adaptive-attack.svg",
                          caption: "Adaptive PGD through DAFAR's detector: fraction of test images misclassified without being flagged, per lambda")
        results["adaptive"] = .array(json)
        return section
    }
}
