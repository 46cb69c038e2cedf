import ArgumentParser
import CommandSupport
import DAFAR
import Foundation
import ImageFiles
import NeuralNetworks
import Tensors
#if canImport(Glibc)
    import Glibc
#endif

extension OutputFormat: ExpressibleByArgument {}

/// `dafar-inspect`: DAFAR's verdict on a user's own image files.
@main
struct DAFARInspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dafar-inspect",
        abstract: "Say whether images in your own files are adversarial (DAFAR's verdict, Eq. 4).",
        discussion: """
            Files, told apart by their first bytes and then by their extension: PNG (one image; grey, grey + alpha, \
            RGB, RGBA or palette; 8-bit, or 16-bit scaled to 8 bits); NumPy .npy (float32 in [0, 1] or uint8, \
            little-endian, C order, shaped [N, C, H, W], [N, H, W] or [H, W]); safetensors (the tensor named by \
            --tensor, by default x_adv, else x: the sets dafar-attack writes hold both; F32 in [0, 1] or U8, same \
            shapes); IDX image files as MNIST's, plain or .gz.

            Pixel values are byte / 255. Nothing is resized: an image whose [C, H, W] differs from the model's is an \
            error naming both. PNG channels are converted only in these ways: alpha is dropped (not composited); \
            grey stays grey, or is copied into R, G and B for a colour model; RGB stays RGB, and a grey model \
            accepts it only when R = G = B at every pixel (a grey image saved in colour), otherwise it is an error.

            Output, one line per image: a JSON object (JSON Lines) with file, index (the image's position in its \
            file), predicted_class, probability (softmax of the logits at that class), score (the score the detector \
            file defines: the paper's ||delta - C(delta)|| of delta = x - D(E(x)), or the decision or fused score of \
            dafar-detector --score), threshold and adversarial (score > threshold); with --format table, an aligned \
            table and a count of flagged images.

            Exit status: 0 when no image is flagged, 1 when at least one is (as grep), 64 bad option, 65 bad or \
            misfitting file, 66 missing or unreadable file, 73/74 when --explain cannot write. Every file is read \
            and checked first: a bad file or option stops the run before anything is printed or written.

            Example: dafar-inspect --model runs/model.safetensors --detector runs/detector.safetensors digit.png runs/fgsm.safetensors
            """)

    /// Usage errors in one line (`mainReportingOneLine`), run errors through `reportingErrors`.
    static func main() { mainReportingOneLine() }

    @OptionGroup var runtime: RuntimeOptions

    @Option(help: "Model written by dafar-train.")
    var model: String

    @Option(help: "Detector written by dafar-detector for this model (its calibration gives the thresholds).")
    var detector: String

    @Option(
        help:
            "Threshold of the verdict: active (the detector file's choice, default), alpha (mean + z * std of clean scores), 1% or 5% (the thresholds that gave 1 % / 5 % false positives on held-out clean images), or a number."
    )
    var threshold: String = "active"

    @Option(help: "Tensor to read from safetensors files (default: x_adv, else x).")
    var tensor: String?

    @Option(help: "Output: json (one JSON object per image, JSON Lines) or table (for people).")
    var format: OutputFormat = .json

    @Option(
        help:
            "Folder for a PNG strip per flagged image: the input, D(E(x)), the residual x - D(E(x)) and C's reconstruction of it (both residuals shown as 0.5 + 0.5 * r / max|r|: mid grey is 0), the residual part of the score. Created when missing; files <file>-<index>.png."
    )
    var explain: String?

    @Option(parsing: .unconditional, help: "Enlargement of the --explain panels (nearest neighbour, 1...16).")
    var explainScale = 4

    /// Images per forward pass: `DAFARModel.inspect` works in chunks of
    /// `Tensor.defaultInferenceBatchSize` from the start of the tensor it is given, and each file
    /// is given to it in the same chunks, so that every score is bit for bit the library's on that
    /// file (a float sum can change in its last bit with the images that share its batch).
    static let chunkSize = Tensor.defaultInferenceBatchSize

    @Argument(help: "Image files: PNG, .npy, .safetensors or IDX (.gz too).")
    var files: [String] = []

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("give at least one image file") }
        guard VerdictThreshold(threshold) != nil else {
            throw ValidationError("--threshold must be active, alpha, 1%, 5% or a non-negative number, got '\(threshold)'")
        }
        guard (1...16).contains(explainScale) else {
            throw ValidationError("--explain-scale must be between 1 and 16, got \(explainScale)")
        }
        if let tensor, tensor.isEmpty { throw ValidationError("--tensor needs a name") }
    }

    func run() throws {
        var flagged = false
        try reportingErrors {
            runtime.apply()
            try checkInputFile(model, what: "model")
            try checkInputFile(detector, what: "detector")
            if let explain { try Explanation.checkFolder(explain) }
            let dafar = try DAFARModel(contentsOf: URL(fileURLWithPath: model), detector: URL(fileURLWithPath: detector))
            let choice = VerdictThreshold(threshold)!
            let threshold = try choice.resolve(dafar.detector!.calibration!, detectorPath: detector)

            // Every file is read and checked before anything is printed or written.
            let reader = ImageFileReader(tensorNames: tensor.map { [$0] } ?? ["x_adv", "x"])
            let inputs = try files.map { try reader.read(contentsOf: URL(fileURLWithPath: $0), imageShape: dafar.inputShape) }
            let total = inputs.reduce(0) { $0 + $1.batchSize }

            let bar = ProgressBar(
                total: total, label: "inspect", enabled: !runtime.quiet && isatty(STDERR_FILENO) != 0 && total > Self.chunkSize)
            var records: [InspectionRecord] = []
            for (position, images) in inputs.enumerated() {
                for start in stride(from: 0, to: images.batchSize, by: Self.chunkSize) {
                    let chunk = images.slice(start..<min(start + Self.chunkSize, images.batchSize))
                    // The library's verdict at its active threshold; the same strict comparison at another one.
                    let verdicts = ImageVerdict.inspect(dafar, chunk, threshold: choice == .active ? nil : threshold)
                    for (i, verdict) in verdicts.enumerated() {
                        records.append(InspectionRecord(file: files[position], filePosition: position, index: start + i, verdict: verdict))
                    }
                    bar.update(records.count)
                }
            }
            bar.finish()

            switch format {
            case .json: for record in records { print(record.jsonLine) }
            case .table: for line in tableLines(records, scoreKind: dafar.detector!.scoreDefinition.kind.rawValue) { print(line) }
            }
            fflush(nil)  // every output stream: the verdicts reach the pipe before a later error line
            let flaggedRecords = records.filter(\.adversarial)
            if let explain, !flaggedRecords.isEmpty {
                try writeExplanations(flaggedRecords, inputs: inputs, dafar: dafar, folder: explain)
            }
            flagged = !flaggedRecords.isEmpty
        }
        if flagged { throw ExitCode(1) }
    }

    /// Writes one strip per flagged image into `folder` (atomically, file by file).
    func writeExplanations(_ flagged: [InspectionRecord], inputs: [Tensor], dafar: DAFARModel, folder: String) throws {
        try Explanation.makeFolder(folder)
        let stems = Explanation.stems(files)
        for start in stride(from: 0, to: flagged.count, by: Self.chunkSize) {
            let batch = Array(flagged[start..<min(start + Self.chunkSize, flagged.count)])
            let x = Tensor.concatenate(batch.map { inputs[$0.filePosition].slice($0.index..<($0.index + 1)) })  // [n, C, H, W]
            for (record, explanation) in zip(batch, ImageExplanation.explain(dafar, x)) {
                let strip = explanation.strip(scale: explainScale)
                let url = URL(fileURLWithPath: folder).appendingPathComponent("\(stems[record.filePosition])-\(record.index).png")
                try PNGFormat.write(PixelImage(tensor: strip), to: url)
            }
        }
    }
}
