import Baselines
import Foundation
import Reporting
import Tensors

/// Section 6.1 of the paper (Fig. 8) and the adaptive attack.
extension EvaluationRun {
    func filterSection() -> ExperimentResult {
        var section = ReportSection(title: ExperimentKind.filter.title)
        let dafar = detectors[0]
        let classifier = ClassifierFunction(logits: { self.model.logits($0) })
        let operating = dafar.thresholds.firstIndex { $0.label == "\(format(settings.operatingRate * 100)) %" } ?? 0
        let systems = [
            "no defense", "median filter only", "DAFAR alpha, rejection only", "DAFAR alpha + median filter",
            "DAFAR \(dafar.thresholds[operating].label) + median filter"
        ]
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
            let labels = attack.labels + attack.labels  // clean first, then adversarial
            let isAdversarial = [Bool](repeating: false, count: n) + [Bool](repeating: true, count: n)
            let scores = book.clean(0, attack) + book.perturbed(0, attack)
            func flags(_ threshold: Int) -> [Bool] { scores.map { $0 > dafar.thresholds[threshold].value } }
            let unfiltered = attack.predictedClean + attack.predictedPerturbed
            let cleanFiltered =
                attack.cleanIsTestPrefix
                ? Array(filteredClean.prefix(n))
                : classifier.predictions(medianFilter(attack.clean, size: 2))
            let filtered = cleanFiltered + classifier.predictions(medianFilter(attack.perturbed, size: 2))
            let none = [Bool](repeating: false, count: 2 * n)
            func evaluate(_ flagged: [Bool], _ predictions: [Int]) -> FilterPipeline.Result {
                FilterPipeline.evaluate(flagged: flagged, isAdversarial: isAdversarial, labels: labels, filteredPredictions: predictions)
            }
            let outcomes = [
                evaluate(none, unfiltered), evaluate(none, filtered), evaluate(flags(0), unfiltered),
                evaluate(flags(0), filtered), evaluate(flags(operating), filtered)
            ]
            let rates = outcomes.map { Rate($0.correct, of: $0.total) }
            table.addRow([.number(Double(eps), decimals: 2), .text("\(n) clean + \(n) FGSM")] + rates.map { .rate($0) })
            for (index, rate) in rates.enumerated() { points[index].append(PlotPoint(x: Double(eps), rate: rate)) }
            json.append([
                "epsilon": .number(Double(eps)), "clean": .int(n), "adversarial": .int(n),
                "systems": .object(Dictionary(uniqueKeysWithValues: zip(systems, rates.map(\.json)))),
                "rejectedClean": .int(outcomes[3].rejectedClean), "rejectedAdversarial": .int(outcomes[3].rejectedAdversarial)
            ])
        }
        section.addParagraph(
            "Each mix holds the first test images clean and their FGSM versions (every attack output, successful or "
                + "not), 1:1. A rejected adversarial input counts as correct, a rejected clean input as wrong; accepted "
                + "inputs are median-filtered (2x2) and classified (paper section 6.1). The paper's Fig. 8 is on CIFAR-10.")
        section.addTable(table)
        section.addFigure(
            LineChart(
                title: "Accuracy on a 1:1 clean/FGSM mix", xLabel: "FGSM eps (L-inf)", yLabel: "accuracy",
                series: zip(systems, points).map { PlotSeries(name: $0, points: $1) },
                yRange: 0...1, yFormat: .percent),
            fileName: "fig8-filter.svg",
            caption: "Fig. 8: accuracy (Wilson 95 % intervals) of the classifier alone, with a median filter, with DAFAR "
                + "rejection, and with both, on a 1:1 mix of clean and FGSM inputs")
        return ExperimentResult(section: section, results: ["filter": .array(json)])
    }

    /// The adaptive attack, made once against DAFAR as published (at its active threshold) and once
    /// against DAFAR fused (at its operating threshold), with the undetected examples as pictures.
    func adaptiveSection() -> ExperimentResult {
        var section = ReportSection(title: ExperimentKind.adaptive.title)
        let paper = detectors[0]
        let operatingLabel = "\(format(settings.operatingRate * 100)) %"
        struct Target {
            let name: String, detector: Int, attacked: Float, attackedLabel: String
            let set: (Float, Float) -> PerturbedSet
            let carliniWagner: (Float) -> PerturbedSet
        }
        var targets = [
            Target(
                name: "DAFAR", detector: 0, attacked: model.threshold ?? paper.thresholds[0].value,
                attackedLabel: model.threshold == nil ? paper.thresholds[0].label : "active",
                set: { self.inputs.adaptive(lambda: $0, epsilon: $1) },
                carliniWagner: { self.inputs.adaptiveCarliniWagner(lambda: $0) })
        ]
        if let fused = suite.fused, let index = detectors.firstIndex(where: { $0.name == "DAFAR fused" }) {
            targets.append(
                Target(
                    name: "DAFAR fused", detector: index, attacked: fused.threshold, attackedLabel: operatingLabel,
                    set: { self.inputs.adaptive(lambda: $0, epsilon: $1, against: fused) },
                    carliniWagner: { self.inputs.adaptiveCarliniWagner(lambda: $0, against: fused) }))
        }
        var table = ReportTable(columns: [
            "detector attacked", "attack", "lambda", "eps", "images", "misclassified",
            "misclassified and not flagged (attack success)", "detected (threshold attacked)",
            "detected (\(operatingLabel))", "mean L2 / L-inf of undetected successes"
        ])
        var json: [JSONValue] = []
        var outcomes: [AdaptiveOutcome] = []
        var series: [PlotSeries] = []
        var gallery: [(caption: String, images: [GridImage])] = []
        let lambdas = Array(Set(settings.adaptiveLambdas + inputs.providedSets.filter { $0.family == .adaptivePGD }.compactMap(\.lambda)))
            .sorted()
        let budgets = Array(Set(settings.adaptiveEpsilons + inputs.providedSets.filter { $0.family == .adaptivePGD }.compactMap(\.epsilon)))
            .sorted()
        for target in targets {
            let evaluated = detectors[target.detector]
            let operating = evaluated.thresholds.first { $0.label == operatingLabel } ?? evaluated.thresholds[0]
            /// One row of the table (and of results.json) for `set`, an adaptive attack on `target`.
            func measure(_ set: PerturbedSet, attack: String, lambda: Float, eps: Float?) -> (evaded: Rate, undetected: [Bool]) {
                let scores = book.perturbed(target.detector, set)
                let fooled = set.successful
                let correct = set.count - set.alreadyWrong
                let fooledScores = selected(scores, fooled)
                let undetected = zip(fooled, scores).map { $0 && $1 <= target.attacked }
                let evaded = Rate(undetected.filter { $0 }.count, of: correct)
                let detectedAttacked = DetectionCounts(scores: fooledScores, threshold: Double(target.attacked)).rate
                let detectedOperating = DetectionCounts(scores: fooledScores, threshold: Double(operating.value)).rate
                let misclassified = Rate(fooledScores.count, of: correct)
                let l2 = mean(selected(set.l2Distances, undetected).map(Double.init))
                let lInf = mean(selected(set.lInfinityDistances, undetected).map(Double.init))
                table.addRow([
                    .text(target.name), .text(attack), .number(Double(lambda), decimals: 2),
                    eps.map { .number(Double($0), decimals: 2) } ?? .text("-"),
                    .integer(set.count), .rate(misclassified), .rate(evaded), .rate(detectedAttacked),
                    .rate(detectedOperating),
                    .text(l2.isNaN ? "-" : "\(String(format: "%.3f", l2)) / \(String(format: "%.3f", lInf))")
                ])
                let outcome = AdaptiveOutcome(
                    detector: target.name, attack: attack, lambda: lambda, epsilon: eps,
                    threshold: target.attacked, misclassified: misclassified, evaded: evaded,
                    detectedAttacked: detectedAttacked, detectedOperating: detectedOperating,
                    undetectedMeanL2: l2.isNaN ? nil : l2, undetectedMeanLInfinity: lInf.isNaN ? nil : lInf)
                outcomes.append(outcome)
                json.append(outcome.json)
                return (evaded, undetected)
            }
            for lambda in lambdas {
                var points: [PlotPoint] = []
                for eps in budgets {
                    let set = target.set(lambda, eps)
                    let (evaded, undetected) = measure(set, attack: "PGD", lambda: lambda, eps: eps)
                    points.append(PlotPoint(x: Double(eps), rate: evaded))
                    if lambda == lambdas.last, eps == budgets.last {
                        gallery += adaptiveGallery(set, undetected: undetected, detector: "\(target.name) PGD", limit: 3)
                    }
                }
                series.append(PlotSeries(name: "\(target.name) lambda \(format(lambda))", points: points))
            }
            if let lambda = lambdas.last, lambda > 0 {
                let set = target.carliniWagner(lambda)
                let (_, undetected) = measure(set, attack: "CW-L2", lambda: lambda, eps: nil)
                gallery += adaptiveGallery(set, undetected: undetected, detector: "\(target.name) CW-L2", limit: 2)
            }
        }
        let thresholds = targets.map { "\($0.name) t = \(String(format: "%.4f", $0.attacked)) (\($0.attackedLabel))" }
        section.addParagraph(
            "Adaptive PGD (random start, step 0.01, \(settings.adaptiveSteps) steps) maximises CE(F(E(x'))) - lambda * "
                + "max(0, score(x') - t) with gradients through the attacked detector's score (DAFAR: E, D and C; "
                + "DAFAR fused: also the JSD through softmax, F and E on D(E(x'))), against its threshold t: "
                + thresholds.joined(separator: ", ") + ". Attack success = misclassified AND not flagged at t, over the "
                + "images classified correctly before. lambda = 0 is plain PGD. Rates are out of the correctly classified images; "
                + "detection rates out of the misclassified ones. Adaptive CW-L2 (the CW budget of this run, at the largest lambda) adds "
                + "lambda * max(0, score(x') - t) to the CW loss and keeps only iterates below t; the last column is the "
                + "size of the perturbations that got through.")
        section.addTable(table)
        section.addFigure(
            LineChart(
                title: "Adaptive attack: misclassified and not flagged", xLabel: "eps (L-inf)",
                yLabel: "attack success", series: series, yRange: 0...1, yFormat: .percent),
            fileName: "adaptive-attack.svg",
            caption: "Adaptive PGD through each detector's score: fraction of test images misclassified without being flagged, per lambda")
        if !gallery.isEmpty {
            section.addFigure(
                ImageGrid(
                    title: "Undetected adaptive examples (lambda \(format(lambdas.last!)); PGD at eps \(format(budgets.last!)))",
                    columns: ["clean x", "adversarial x'", "D(E(x'))", "x' - x"], rows: gallery),
                fileName: "adaptive-undetected.svg",
                caption: "Adaptive examples that fooled the classifier and were not flagged: do they still look like their source class?")
        } else {
            section.addParagraph("No adaptive example at the largest lambda and eps fooled the classifier without being flagged.")
        }
        return ExperimentResult(section: section, results: ["adaptive": .array(json)], adaptiveOutcomes: outcomes)
    }

    /// Up to `limit` undetected successes of `set` as picture rows: clean, adversarial, its feedback
    /// reconstruction and the perturbation.
    func adaptiveGallery(_ set: PerturbedSet, undetected: [Bool], detector: String, limit: Int) -> [(caption: String, images: [GridImage])]
    {
        let indices = Array(undetected.indices.filter { undetected[$0] }.prefix(limit))
        guard !indices.isEmpty else { return [] }
        let shape = model.inputShape
        let chosen = set.perturbed.gather(indices)
        let reconstructed = model.reconstruct(chosen)
        let item = shape.reduce(1, *)
        func picture(_ t: Tensor, _ row: Int, signed: Bool = false) -> GridImage {
            GridImage(
                channels: shape[0], height: shape[1], width: shape[2], pixels: Array(t.storage[row * item..<(row + 1) * item]),
                signed: signed)
        }
        return indices.enumerated().map { row, index in
            let clean = set.clean.gather([index]), adversarial = chosen.gather([row])
            let perturbation = Tensor(shape: clean.shape, storage: zip(adversarial.storage, clean.storage).map { $0 - $1 })
            return (
                caption: "\(detector): label \(set.labels[index]) -> \(set.predictedPerturbed[index])",
                images: [picture(clean, 0), picture(chosen, row), picture(reconstructed, row), picture(perturbation, 0, signed: true)]
            )
        }
    }
}

/// One run of the adaptive attack against one detector, as measured.
struct AdaptiveOutcome {
    /// The detector attacked (`DAFAR`, `DAFAR fused`).
    let detector: String
    /// `PGD` or `CW-L2`.
    let attack: String
    /// The weight of the detector term.
    let lambda: Float
    /// The L-inf budget (nil for CW-L2).
    let epsilon: Float?
    /// The threshold attacked.
    let threshold: Float
    /// Misclassified, out of the correctly classified images.
    let misclassified: Rate
    /// Misclassified and not flagged at `threshold` (the attack's success), out of the same images.
    let evaded: Rate
    /// Misclassified examples flagged at the attacked and at the operating threshold.
    let detectedAttacked: Rate
    let detectedOperating: Rate
    /// Mean L2 and L-inf of the undetected successes (nil when there are none).
    let undetectedMeanL2: Double?
    let undetectedMeanLInfinity: Double?

    /// The row of `results.json`.
    var json: JSONValue {
        [
            "detector": .string(detector), "attack": .string(attack), "lambda": .number(Double(lambda)),
            "epsilon": epsilon.map { .number(Double($0)) } ?? .null, "threshold": .number(Double(threshold)),
            "misclassified": misclassified.json, "evaded": evaded.json, "detectedActive": detectedAttacked.json,
            "detectedOperating": detectedOperating.json, "undetectedMeanL2": undetectedMeanL2.map { .number($0) } ?? .null,
            "undetectedMeanLInf": undetectedMeanLInfinity.map { .number($0) } ?? .null
        ]
    }
}
