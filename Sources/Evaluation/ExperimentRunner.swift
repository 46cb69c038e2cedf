import Attacks
import DAFAR
import Datasets
import Distributed
import Foundation
import Reporting
import Tensors

/// What the report says about where its inputs came from and how to rerun it.
public struct ReportContext: Sendable {
    /// Dataset name as given on the command line (`mnist5k`).
    public var dataset: String
    /// The model and detector files.
    public var modelFile: String
    public var detectorFile: String
    /// Shell commands that reproduce the run, in order.
    public var commands: [String]
    /// Further (name, value) rows for the settings table (threads, toolkit version...).
    public var extraSettings: [(String, String)]

    /// A context; every field but the dataset has a default.
    public init(dataset: String, modelFile: String = "(in memory)", detectorFile: String = "(in memory)",
                commands: [String] = [], extraSettings: [(String, String)] = []) {
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
/// let report = try runner.run(context: ReportContext(dataset: "mnist5k"))
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
    /// Built by `run`.
    public private(set) var suite: DetectorSuite?
    var book: ScoreBook!
    /// Machine-readable results, written to `results.json`.
    var results: [String: JSONValue] = [:]
    /// The adaptive attack's outcomes, typed (the summary reads these, results.json is made from them).
    var adaptiveOutcomes: [AdaptiveOutcome] = []
    /// Seconds per phase, in order.
    var timings: [(String, Double)] = []
    /// The compact summary printed on the terminal (filled by `run`).
    public internal(set) var summaryTable = ReportTable(columns: ["detector"])

    /// A runner; `log` receives status lines (the command prints them on standard error). The attacks
    /// are sharded over the ranks of `communicator` (the rest runs on every rank alike); every rank
    /// builds the same report, and the caller writes it from rank 0.
    public init(model: DAFARModel, splits: DatasetSplits, settings: ExperimentSettings, log: @escaping (String) -> Void = { _ in },
                communicator: any Communicator = SingleProcessCommunicator()) {
        precondition(model.detector != nil, "ExperimentRunner needs a model with its detector")
        self.model = model
        self.splits = splits
        self.settings = settings
        self.log = log
        inputs = ExperimentInputs(model: model, test: splits.test, settings: settings, log: log, communicator: communicator)
    }

    var detectors: [EvaluatedDetector] { suite?.detectors ?? [] }

    /// Runs every selected experiment and returns the report.
    public func run(context: ReportContext) throws -> Report {
        try settings.validate()
        guard splits.test.count >= 1, splits.validation.count >= 1 else {
            throw ExperimentError("the evaluation needs test and validation images, got \(splits.test.count) and \(splits.validation.count)")
        }
        let started = Date()
        let needsBaselines = settings.experiments.contains { $0.needsBaselines }
        let built = try timed("detectors") {
            try DetectorSuite.build(model: model, splits: splits, inputs: inputs, settings: settings, baselines: needsBaselines, log: log)
        }
        suite = built
        book = ScoreBook(suite: built, test: splits.test)
        book.dafar = model
        var sections = [timed("clean data") { cleanSection() }]
        for experiment in settings.experiments {
            log("experiment: \(experiment.title)")
            let section: ReportSection = timed(experiment.rawValue) {
                switch experiment {
                case .features: return featureSection()
                case .reconstruction: return reconstructionSection()
                case .scores: return scoreSection()
                case .intensity: return intensitySection()
                case .attacks: return attackSection()
                case .filter: return filterSection()
                case .adaptive: return adaptiveSection()
                case .roc: return rocSection()
                }
            }
            sections.append(section)
        }
        let summary = timed("summary") { summarySection(context: context) }
        timings.append(("total", Date().timeIntervalSince(started)))
        var report = Report(title: "DAFAR evaluation: \(context.dataset)")
        report.addSection(summary)
        sections.forEach { report.addSection($0) }
        report.addSection(settingsSection(context: context))
        report.results = results
        return report
    }

    /// The progress reporter of one stage (see `ExperimentSettings.progress`).
    func progress(_ label: String, total: Int) -> any ProgressReporter {
        settings.progress(label, total)
    }

    func timed<T>(_ phase: String, _ body: () throws -> T) rethrows -> T {
        let start = Date()
        let value = try body()
        timings.append((phase, Date().timeIntervalSince(start)))
        return value
    }

    // MARK: - Shared pieces

    /// Detection of `set` by detector column `column`: successful and failed examples counted apart.
    func detection(_ set: PerturbedSet, _ column: DetectorSuite.Column) -> AdversarialDetection {
        let scores = book.perturbed(column.detector, set)
        let threshold = Double(detectors[column.detector].thresholds[column.threshold].value)
        let kept = (0..<set.count).filter { set.predictedClean[$0] == set.labels[$0] }   // already-wrong images are in neither group
        return AdversarialDetection(scores: kept.map { scores[$0] }, attackSucceeded: kept.map { set.successful[$0] },
                                    threshold: threshold)
    }

    /// Flag rate of a noise set (every image counts: noise is not an attack).
    func flagRate(_ set: PerturbedSet, _ column: DetectorSuite.Column) -> Rate {
        DetectionCounts(scores: book.perturbed(column.detector, set),
                        threshold: Double(detectors[column.detector].thresholds[column.threshold].value)).rate
    }

    /// Detection rows for an attack: successful, failed, and the controls (not attacks) beside them.
    func detectionRows(attack: PerturbedSet, controls: [PerturbedSet], into table: inout ReportTable) -> JSONValue {
        let columns = suite!.columns
        let found = columns.map { detection(attack, $0) }
        table.addRow([.text("\(attack.name): successful")] + found.map { .rate($0.successful.rate) })
        table.addRow([.text("\(attack.name): failed")] + found.map { .rate($0.failed.rate) })
        let controlRates = controls.map { control in columns.map { flagRate(control, $0) } }
        for (control, rates) in zip(controls, controlRates) { table.addRow([.text(control.name)] + rates.map { .rate($0) }) }
        var json: [String: JSONValue] = ["attack": .string(attack.name), "controls": .array(controls.map { .string($0.name) }),
                                         "attackSuccess": attack.successRate.json, "alreadyMisclassified": .int(attack.alreadyWrong)]
        for (index, column) in columns.enumerated() {
            var entry: [String: JSONValue] = ["detection": found[index].json,
                                              "threshold": .number(Double(detectors[column.detector].thresholds[column.threshold].value))]
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
    var detectionColumns: [String] { ["input"] + suite!.columns.map(\.header) }

    // MARK: - Clean data

    func cleanSection() -> ReportSection {
        var section = ReportSection(title: "Clean data: accuracy and false positives")
        let accuracy = Metrics.accuracy(predictions: model.classify(splits.test.images), labels: splits.test.labels)
        let validationAccuracy = Metrics.accuracy(predictions: model.classify(splits.validation.images), labels: splits.validation.labels)
        var table = ReportTable(columns: ["split", "accuracy"])
        table.addRow([.text("test (all \(splits.test.count) images)"), .rate(accuracy)])
        table.addRow([.text("validation (\(splits.validation.count) held-out training images)"), .rate(validationAccuracy)])
        section.addTable(table)
        let count = splits.test.count
        section.addParagraph("Every threshold is fitted on the \(splits.validation.count) clean validation images only; "
                             + "false positives are then measured on all \(count) clean test images.")
        var thresholds = ReportTable(columns: ["detector", "threshold", "value", "FPR validation", "FPR test", "how it was chosen"])
        var json: [JSONValue] = []
        for column in suite!.columns {
            let detector = detectors[column.detector], threshold = detector.thresholds[column.threshold]
            let validation = Metrics.falsePositiveRate(cleanScores: detector.validationScores, threshold: Double(threshold.value))
            let test = Metrics.falsePositiveRate(cleanScores: book.testClean(column.detector, count: count), threshold: Double(threshold.value))
            thresholds.addRow([.text(detector.name), .text(threshold.label), .number(Double(threshold.value), decimals: 4),
                               .rate(validation), .rate(test), .text(threshold.note)])
            json.append(["detector": .string(detector.name), "threshold": .string(threshold.label), "value": .number(Double(threshold.value)),
                         "falsePositivesValidation": validation.json, "falsePositivesTest": test.json])
        }
        section.addTable(thresholds)
        var described = ReportTable(columns: ["detector", "what it scores"])
        for detector in detectors { described.addRow([.text(detector.name), .text(detector.description)]) }
        section.addTable(described)
        results["clean"] = ["testAccuracy": accuracy.json, "validationAccuracy": validationAccuracy.json, "thresholds": .array(json)]
        return section
    }
}
