import Foundation
import NeuralNetworks
import Tensors
import ToolkitCore

/// A model or detector file that does not fit: wrong kind, missing metadata, a
/// detector made for another model.
public struct ModelFileError: ToolkitError {
    public let description: String
    public let cause: ErrorCause
    public init(_ description: String, cause: ErrorCause = .invalidData) {
        self.description = description
        self.cause = cause
    }
}

/// Version of this toolkit, written into every output file.
public let toolkitVersion = "0.1.0"

extension SafetensorsArchive {
    /// Reads a required metadata value, with an error naming the key and the file.
    func required(_ key: String, in file: String) throws -> String {
        guard let value = metadata[key] else {
            throw ModelFileError("\(file) has no '\(key)' in its metadata; is it a DAFAR-Swift file?")
        }
        return value
    }

    func requiredInt(_ key: String, in file: String) throws -> Int {
        guard let value = Int(try required(key, in: file)) else {
            throw ModelFileError("\(file): metadata '\(key)' is not an integer")
        }
        return value
    }

    func requiredFloat(_ key: String, in file: String) throws -> Float {
        guard let value = Float(try required(key, in: file)), value.isFinite else {
            throw ModelFileError("\(file): metadata '\(key)' is not a finite number")
        }
        return value
    }
}

/// Throws when a loaded weight is NaN or infinite: such a file is corrupt, and every score and
/// prediction computed from it would be meaningless.
func checkFinite(_ parameters: [NamedParameter], file: String) throws {
    for (name, parameter) in parameters where !parameter.value.isFinite {
        throw ModelFileError("\(file): tensor '\(name)' holds NaN or infinite values; the file is corrupt")
    }
}

/// Encodes a string dictionary as compact sorted JSON (for metadata values).
func jsonString(_ object: Any) -> String {
    guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return "{}" }
    return String(decoding: data, as: UTF8.self)
}

extension JointNetwork {
    /// The network as a safetensors archive (`target.*`, `decoder.*`) with its architecture
    /// in `__metadata__`, plus `extra` metadata (dataset, settings, accuracy...).
    public func archive(metadata extra: [String: String] = [:]) -> SafetensorsArchive {
        var archive = SafetensorsArchive()
        archive.add(namedParameters, prefix: "")
        archive.metadata = extra.merging([
            "format": "dafar-model",
            "format_version": "1",
            "toolkit_version": toolkitVersion,
            "architecture": architecture.rawValue,
            "class_count": String(classCount),
            "feedback_layer": String(feedbackLayer),
            "input_shape": architecture.inputShape.map(String.init).joined(separator: ","),
            "decoder": "mirror (nearest upsampling for pools, transposed convolutions, sigmoid output)",
            "layers": jsonString(layerSummary)
        ]) { _, new in new }
        return archive
    }

    /// Rebuilds a network from an archive written by `archive(metadata:)`.
    public convenience init(archive: SafetensorsArchive, file: String = "model file") throws {
        guard archive.metadata["format"] == "dafar-model" else {
            throw ModelFileError(
                "\(file) is not a DAFAR model (its metadata 'format' is \(archive.metadata["format"].map { "'\($0)'" } ?? "missing"))")
        }
        guard let architecture = Architecture(rawValue: try archive.required("architecture", in: file)) else {
            throw ModelFileError("\(file): unknown architecture '\(archive.metadata["architecture"]!)'")
        }
        let classCount = try archive.requiredInt("class_count", in: file)
        let feedback = try archive.requiredInt("feedback_layer", in: file)
        guard classCount >= 2 && classCount <= 1000 else { throw ModelFileError("\(file): class count \(classCount) is out of range") }
        let layerCount = architecture == .mnist ? 10 : 14
        guard feedback >= 1 && feedback <= layerCount else {
            throw ModelFileError("\(file): feedback layer \(feedback) is out of range 1...\(layerCount)")
        }
        self.init(architecture: architecture, classCount: classCount, feedbackLayer: feedback, seed: 0)
        try archive.load(into: namedParameters, prefix: "")
        try checkFinite(namedParameters, file: file)
    }

    /// Loads a model file.
    public static func load(contentsOf url: URL) throws -> (network: JointNetwork, metadata: [String: String]) {
        let archive = try SafetensorsArchive(contentsOf: url)
        return (try JointNetwork(archive: archive, file: url.path), archive.metadata)
    }
}

extension AnomalyDetector {
    /// The detector as a safetensors archive (`detector.*`) with its calibration,
    /// tied to the model whose residuals it reads by `modelHash` (SHA-256 of the model file).
    public func archive(modelHash: String, metadata extra: [String: String] = [:]) -> SafetensorsArchive {
        var archive = SafetensorsArchive()
        archive.add(namedParameters, prefix: "")
        var metadata = extra.merging([
            "format": "dafar-detector",
            "format_version": "1",
            "toolkit_version": toolkitVersion,
            "model_sha256": modelHash,
            "input_size": String(inputSize),
            "hidden_sizes": hiddenSizes.map(String.init).joined(separator: ","),
            "score_norm": norm.rawValue,
            "layers": network.summary
        ]) { _, new in new }
        if scoreDefinition.kind != .residual {  // residual files stay as they were before score kinds existed
            metadata["score_kind"] = scoreDefinition.kind.rawValue
            metadata["decision_temperature"] = String(scoreDefinition.temperature)
            if scoreDefinition.kind == .fused {
                metadata["fused_residual_scale"] = String(scoreDefinition.residualScale)
                metadata["fused_decision_scale"] = String(scoreDefinition.decisionScale)
            }
        }
        if let c = calibration {
            metadata["score_mean"] = String(c.statistics.mean)
            metadata["score_std"] = String(c.statistics.standardDeviation)
            metadata["score_count"] = String(c.statistics.count)
            metadata["statistics_source"] = c.statisticsSource
            metadata["z"] = String(c.z)
            metadata["alpha"] = String(c.alpha)
            metadata["threshold"] = String(c.active)
            for (rate, value) in c.thresholdsAtRate {
                metadata["threshold_fpr_\(Self.rateKey(rate))"] = String(value)
            }
        }
        archive.metadata = metadata
        return archive
    }

    /// `0.01` -> `1pct`, `0.05` -> `5pct`.
    static func rateKey(_ rate: Double) -> String {
        let percent = rate * 100
        return percent == percent.rounded() ? "\(Int(percent))pct" : "\(percent)pct"
    }

    /// Rebuilds a detector from an archive written by `archive(modelHash:metadata:)`.
    public convenience init(archive: SafetensorsArchive, file: String = "detector file") throws {
        guard archive.metadata["format"] == "dafar-detector" else {
            throw ModelFileError(
                "\(file) is not a DAFAR detector (its metadata 'format' is \(archive.metadata["format"].map { "'\($0)'" } ?? "missing"))")
        }
        let inputSize = try archive.requiredInt("input_size", in: file)
        let hidden = try archive.required("hidden_sizes", in: file).split(separator: ",").compactMap { Int($0) }
        guard inputSize > 0, !hidden.isEmpty, hidden.allSatisfy({ $0 > 0 && $0 <= 1 << 16 }) else {
            throw ModelFileError("\(file): invalid detector sizes \(inputSize) / \(hidden)")
        }
        guard let norm = ReconstructionNorm(rawValue: try archive.required("score_norm", in: file)), norm != .mse else {
            throw ModelFileError("\(file): unknown score norm '\(archive.metadata["score_norm"]!)'")
        }
        // The weights come from the file: sizes it cannot hold are refused before allocating.
        let sizes = detectorLayerSizes(inputSize: inputSize, hiddenSizes: hidden)
        var weightCount = 0, overflow = false
        for (inputs, outputs) in zip(sizes, sizes.dropFirst()) {
            for count in [inputs.multipliedReportingOverflow(by: outputs), (outputs, false)] {  // weights, biases
                let total = weightCount.addingReportingOverflow(count.0)
                overflow = overflow || count.1 || total.overflow
                weightCount = total.partialValue
            }
        }
        let stored = archive.tensors.filter { $0.key.hasPrefix("detector.") }.reduce(0) { $0 + $1.value.count }
        guard !overflow && weightCount <= stored else {
            let layers = hidden.count <= 8 ? "hidden sizes \(hidden)" : "\(hidden.count) hidden layers"
            throw ModelFileError(
                "\(file): input size \(inputSize) and \(layers) need more weights than the file's \(stored); the file is corrupt")
        }
        self.init(inputSize: inputSize, hiddenSizes: hidden, norm: norm, seed: 0)
        try archive.load(into: namedParameters, prefix: "")
        try checkFinite(namedParameters, file: file)
        scoreDefinition = try Self.scoreDefinition(archive, file: file)
        if archive.metadata["score_mean"] != nil {
            let statistics = ScoreStatistics(
                mean: try archive.requiredFloat("score_mean", in: file),
                standardDeviation: try archive.requiredFloat("score_std", in: file),
                count: try archive.requiredInt("score_count", in: file))
            var rates: [Double: Float] = [:]
            for rate in [0.01, 0.05] {
                if let value = archive.metadata["threshold_fpr_\(Self.rateKey(rate))"].flatMap(Float.init) { rates[rate] = value }
            }
            calibration = Calibration(
                statisticsSource: archive.metadata["statistics_source"] ?? "unknown",
                statistics: statistics, z: try archive.requiredFloat("z", in: file),
                thresholdsAtRate: rates, active: try archive.requiredFloat("threshold", in: file))
        }
    }

    /// The score a detector file defines: `score_kind` (absent: the paper's residual score),
    /// `decision_temperature`, `fused_residual_scale` and `fused_decision_scale`, each checked.
    static func scoreDefinition(_ archive: SafetensorsArchive, file: String) throws -> FeedbackScore {
        guard let name = archive.metadata["score_kind"] else { return .residual }
        guard let kind = ScoreKind(rawValue: name) else {
            throw ModelFileError(
                "\(file): unknown score kind '\(name)' (expected \(ScoreKind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        func positive(_ key: String) throws -> Float {
            let value = try archive.requiredFloat(key, in: file)
            guard value > 0 && value.isFinite else { throw ModelFileError("\(file): '\(key)' must be a positive number, got \(value)") }
            return value
        }
        let temperature = try positive("decision_temperature")
        guard kind == .fused else { return FeedbackScore(kind: kind, temperature: temperature) }
        return FeedbackScore(
            kind: kind, temperature: temperature, residualScale: try positive("fused_residual_scale"),
            decisionScale: try positive("fused_decision_scale"))
    }
}
