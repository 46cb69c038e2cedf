import Attacks
import DAFAR
import Datasets
import Distributed
import Foundation
import Reporting
import Tensors

/// What the report says about where its inputs came from and how to rerun it.
public struct ReportContext: Sendable {
    /// The dataset evaluated.
    public var dataset: DatasetName
    /// The model and detector files.
    public var modelFile: String
    public var detectorFile: String
    /// Shell commands that reproduce the run, in order.
    public var commands: [String]
    /// Further (name, value) rows for the settings table (threads, toolkit version...).
    public var extraSettings: [(String, String)]

    /// A context; every field but the dataset has a default.
    public init(
        dataset: DatasetName, modelFile: String = "(in memory)", detectorFile: String = "(in memory)",
        commands: [String] = [], extraSettings: [(String, String)] = []
    ) {
        (self.dataset, self.modelFile, self.detectorFile) = (dataset, modelFile, detectorFile)
        (self.commands, self.extraSettings) = (commands, extraSettings)
    }
}

/// Runs the experiments of `dafar-eval` for one trained DAFAR model and detector and
/// builds the report: every rate with its counts, detection counted on successful
/// adversarial examples (failed ones separately), every threshold fitted on clean
/// validation images, and the random-sign-noise control beside every attack.
///
/// ```swift
/// let runner = ExperimentRunner(model: dafar, splits: splits, settings: settings)
/// let report = try runner.run(context: ReportContext(dataset: .mnist5k))
/// try report.write(to: URL(fileURLWithPath: "runs/report"))
/// print(runner.summaryTable.plainText())
/// ```
public final class ExperimentRunner {
    public let model: DAFARModel
    public let splits: DatasetSplits
    public let settings: ExperimentSettings
    /// The perturbed sets (add files written by `dafar-attack` before `run`).
    public let inputs: ExperimentInputs
    let log: (String) -> Void
    /// The detectors of the last `run`.
    public private(set) var suite: DetectorSuite?
    /// The compact summary printed on the terminal (filled by `run`).
    public private(set) var summaryTable = ReportTable(columns: ["detector"])

    /// A runner; `log` receives status lines (the command prints them on standard error). The attacks
    /// are sharded over the ranks of `communicator` (the rest runs on every rank alike); every rank
    /// builds the same report, and the caller writes it from rank 0.
    public init(
        model: DAFARModel, splits: DatasetSplits, settings: ExperimentSettings, log: @escaping (String) -> Void = { _ in },
        communicator: any Communicator = SingleProcessCommunicator()
    ) {
        precondition(model.detector != nil, "ExperimentRunner needs a model with its detector")
        self.model = model
        self.splits = splits
        self.settings = settings
        self.log = log
        inputs = ExperimentInputs(model: model, test: splits.test, settings: settings, log: log, communicator: communicator)
    }

    /// Runs every selected experiment and returns the report. Each experiment returns its section
    /// and its entries of `results.json` (`ExperimentResult`); the summary is made from the same
    /// scores and typed outcomes, never by reading the report back.
    public func run(context: ReportContext) throws -> Report {
        try settings.validate()
        guard splits.test.count >= 1, splits.validation.count >= 1 else {
            throw ExperimentError(
                "the evaluation needs test and validation images, got \(splits.test.count) and \(splits.validation.count)")
        }
        let started = Date()
        var timings: [(String, Double)] = []
        func timed<T>(_ phase: String, _ body: () throws -> T) rethrows -> T {
            let start = Date()
            defer { timings.append((phase, Date().timeIntervalSince(start))) }
            return try body()
        }
        let needsBaselines = settings.experiments.contains { $0.needsBaselines }
        let built = try timed("detectors") {
            try DetectorSuite.build(model: model, splits: splits, inputs: inputs, settings: settings, baselines: needsBaselines, log: log)
        }
        suite = built
        let run = EvaluationRun(model: model, splits: splits, settings: settings, inputs: inputs, suite: built, log: log)
        var results = [timed("clean data") { run.cleanSection() }]
        for experiment in settings.experiments {
            log("experiment: \(experiment.title)")
            let result: ExperimentResult = timed(experiment.rawValue) {
                switch experiment {
                case .features: return run.featureSection()
                case .reconstruction: return run.reconstructionSection()
                case .scores: return run.scoreSection()
                case .intensity: return run.intensitySection()
                case .attacks: return run.attackSection()
                case .filter: return run.filterSection()
                case .adaptive: return run.adaptiveSection()
                case .roc: return run.rocSection()
                }
            }
            results.append(result)
        }
        let summary = timed("summary") { run.summarySection(context: context, adaptive: results.flatMap(\.adaptiveOutcomes)) }
        summaryTable = summary.table ?? summaryTable
        timings.append(("total", Date().timeIntervalSince(started)))
        let settingsResult = run.settingsSection(context: context, timings: timings)
        var report = Report(title: "DAFAR evaluation: \(context.dataset.rawValue)")
        for result in [summary] + results + [settingsResult] {
            report.addSection(result.section)
            report.results.merge(result.results) { _, new in new }
        }
        return report
    }
}

/// What one experiment (or the summary, or the settings) adds to the report: its section and its
/// entries of `results.json`, made from the same numbers.
struct ExperimentResult {
    /// The report section (tables, figures, prose).
    var section: ReportSection
    /// Top-level entries of `results.json` (`"attacks": [...]`).
    var results: [String: JSONValue]
    /// The adaptive attack's outcomes, typed (the summary's worst case reads them).
    var adaptiveOutcomes: [AdaptiveOutcome] = []
    /// The compact summary table (the summary only).
    var table: ReportTable?
}

/// One evaluation in progress: the model, the data, the detectors built for them and the scores
/// computed so far. Every experiment reads it; nothing in it is optional.
final class EvaluationRun {
    let model: DAFARModel
    let splits: DatasetSplits
    let settings: ExperimentSettings
    let inputs: ExperimentInputs
    let suite: DetectorSuite
    /// Every detector's scores of every set, computed once.
    let book: ScoreBook
    let log: (String) -> Void

    init(
        model: DAFARModel, splits: DatasetSplits, settings: ExperimentSettings, inputs: ExperimentInputs, suite: DetectorSuite,
        log: @escaping (String) -> Void
    ) {
        (self.model, self.splits, self.settings, self.inputs, self.suite, self.log) = (model, splits, settings, inputs, suite, log)
        book = ScoreBook(suite: suite, test: splits.test)
        book.dafar = model
    }

    var detectors: [EvaluatedDetector] { suite.detectors }

    /// The progress reporter of one stage (see `ExperimentSettings.progress`).
    func progress(_ label: String, total: Int) -> any ProgressReporter {
        settings.progress(label, total)
    }

    // MARK: - Shared pieces

    /// Detection of `set` by detector column `column`: successful and failed examples counted apart.
    func detection(_ set: PerturbedSet, _ column: DetectorSuite.Column) -> AdversarialDetection {
        let scores = book.perturbed(column.detector, set)
        let threshold = Double(detectors[column.detector].thresholds[column.threshold].value)
        let kept = (0..<set.count).filter { set.predictedClean[$0] == set.labels[$0] }  // already-wrong images are in neither group
        return AdversarialDetection(
            scores: kept.map { scores[$0] }, attackSucceeded: kept.map { set.successful[$0] },
            threshold: threshold)
    }

    /// Flag rate of a noise set (every image counts: noise is not an attack).
    func flagRate(_ set: PerturbedSet, _ column: DetectorSuite.Column) -> Rate {
        DetectionCounts(
            scores: book.perturbed(column.detector, set),
            threshold: Double(detectors[column.detector].thresholds[column.threshold].value)
        ).rate
    }

    /// Detection rows for an attack: successful, failed, and the controls (not attacks) beside them.
    func detectionRows(attack: PerturbedSet, controls: [PerturbedSet], into table: inout ReportTable) -> JSONValue {
        let columns = suite.columns
        let found = columns.map { detection(attack, $0) }
        table.addRow([.text("\(attack.name): successful")] + found.map { .rate($0.successful.rate) })
        table.addRow([.text("\(attack.name): failed")] + found.map { .rate($0.failed.rate) })
        let controlRates = controls.map { control in columns.map { flagRate(control, $0) } }
        for (control, rates) in zip(controls, controlRates) { table.addRow([.text(control.name)] + rates.map { .rate($0) }) }
        var json: [String: JSONValue] = [
            "attack": .string(attack.name), "controls": .array(controls.map { .string($0.name) }),
            "attackSuccess": attack.successRate.json, "alreadyMisclassified": .int(attack.alreadyWrong)
        ]
        for (index, column) in columns.enumerated() {
            var entry: [String: JSONValue] = [
                "detection": found[index].json,
                "threshold": .number(Double(detectors[column.detector].thresholds[column.threshold].value))
            ]
            for (control, rates) in zip(controls, controlRates) {
                entry[control.family == .signNoise ? "noiseFlagged" : "shuffledFlagged"] = rates[index].json
            }
            json[column.header] = .object(entry)
        }
        return .object(json)
    }

    /// The attack sets of Fig. 7 (and of the ROC section): FGSM and PGD at eps, CW-L2, JSMA, extras.
    func attackSets() -> [PerturbedSet] {
        [inputs.fgsm(settings.epsilon), inputs.pgd(), inputs.carliniWagner(), inputs.jsma()] + inputs.extraAttacks
    }

    /// Headers of the detection tables: the input, then one column per detector threshold.
    var detectionColumns: [String] { ["input"] + suite.columns.map(\.header) }

    // MARK: - Clean data

    func cleanSection() -> ExperimentResult {
        var section = ReportSection(title: "Clean data: accuracy and false positives")
        let accuracy = Metrics.accuracy(predictions: model.classify(splits.test.images), labels: splits.test.labels)
        let validationAccuracy = Metrics.accuracy(predictions: model.classify(splits.validation.images), labels: splits.validation.labels)
        var table = ReportTable(columns: ["split", "accuracy"])
        table.addRow([.text("test (all \(splits.test.count) images)"), .rate(accuracy)])
        table.addRow([.text("validation (\(splits.validation.count) held-out training images)"), .rate(validationAccuracy)])
        section.addTable(table)
        let count = splits.test.count
        section.addParagraph(
            "Every threshold is fitted on the \(splits.validation.count) clean validation images only; "
                + "false positives are then measured on all \(count) clean test images.")
        var thresholds = ReportTable(columns: ["detector", "threshold", "value", "FPR validation", "FPR test", "how it was chosen"])
        var json: [JSONValue] = []
        for column in suite.columns {
            let detector = detectors[column.detector], threshold = detector.thresholds[column.threshold]
            let validation = Metrics.falsePositiveRate(cleanScores: detector.validationScores, threshold: Double(threshold.value))
            let test = Metrics.falsePositiveRate(
                cleanScores: book.testClean(column.detector, count: count), threshold: Double(threshold.value))
            thresholds.addRow([
                .text(detector.name), .text(threshold.label), .number(Double(threshold.value), decimals: 4),
                .rate(validation), .rate(test), .text(threshold.note)
            ])
            json.append([
                "detector": .string(detector.name), "threshold": .string(threshold.label), "value": .number(Double(threshold.value)),
                "falsePositivesValidation": validation.json, "falsePositivesTest": test.json
            ])
        }
        section.addTable(thresholds)
        var described = ReportTable(columns: ["detector", "what it scores"])
        for detector in detectors { described.addRow([.text(detector.name), .text(detector.description)]) }
        section.addTable(described)
        return ExperimentResult(
            section: section,
            results: [
                "clean": [
                    "testAccuracy": accuracy.json, "validationAccuracy": validationAccuracy.json,
                    "thresholds": .array(json)
                ]
            ])
    }
}
