import Attacks
import Autodiff
import DAFAR
import Foundation
import NeuralNetworks
import Tensors

/// Per-layer time of one training step or one attack step: each layer's forward, timed around the
/// layer, and its backward, the time the tape spent in the nodes that layer recorded
/// (`Tape.measuresBackwardTimes`), with the GEMM floating-point operations each pass does.
///
/// FLOPs count the matrix products only (2 per multiply-add of a convolution, transposed
/// convolution or dense layer); element-wise layers, losses and the optimizer count 0.
public struct LayerProfile {
    /// One pass of one layer (or a stage without layers: the loss, the optimizer).
    public struct Row: Sendable {
        public let name: String
        public let pass: String
        public let flops: Double
        /// Median seconds over the repetitions.
        public let seconds: Double
    }

    /// What was profiled (`joint training step`).
    public let title: String
    public let rows: [Row]
    /// Median wall time of the whole step, measured around it (the rows sum to about this).
    public let stepSeconds: Double

    /// Markdown table: layer, pass, MFLOP, ms, GFLOP/s, share of the step, % of `peakGFLOPS`.
    public func markdown(peakGFLOPS: Double) -> String {
        let total = rows.reduce(0) { $0 + $1.seconds }
        // a step under a millisecond (batch 1) in microseconds' resolution, its small products in hundredths
        let (time, megaflops, step) = stepSeconds < 1e-3 ? ("%.4f", "%.2f", "%.3f") : ("%.2f", "%.0f", "%.1f")
        var lines = [
            "\(title): \(String(format: step, stepSeconds * 1e3)) ms per step (rows sum to "
                + "\(String(format: step, total * 1e3)) ms); peak \(String(format: "%.0f", peakGFLOPS)) GFLOP/s",
            "",
            "| layer | pass | MFLOP | ms | GFLOP/s | share of step | % of peak |", "|---|---|---:|---:|---:|---:|---:|"
        ]
        func row(_ name: String, _ pass: String, _ flops: Double, _ seconds: Double) -> String {
            let rate = flops / max(seconds, 1e-12) / 1e9
            return "| \(name) | \(pass) | \(flops > 0 ? String(format: megaflops, flops / 1e6) : "-") | "
                + String(format: time, seconds * 1e3) + " | \(flops > 0 ? String(format: "%.1f", rate) : "-") | "
                + String(format: "%.1f %%", 100 * seconds / max(total, 1e-12)) + " | "
                + (flops > 0 ? String(format: "%.0f %%", 100 * rate / peakGFLOPS) : "-") + " |"
        }
        for r in rows { lines.append(row(r.name, r.pass, r.flops, r.seconds)) }
        let flops = rows.reduce(0) { $0 + $1.flops }
        lines.append(row("**step**", "all", flops, total))
        return lines.joined(separator: "\n")
    }
}

/// Builds `LayerProfile`s of the benchmark's workloads.
public enum LayerProfiler {
    /// One stage of a network as `Sequential` runs it (a layer, or a convolution with its fused ReLU),
    /// named with the prefix of its state_dict name (`E.0`, `F.1`, `D.3`).
    struct NamedLayer {
        let name: String
        let network: Sequential
        let stage: Range<Int>
        var layer: any Layer { network.layers[stage.lowerBound] }
    }

    /// Times of one profiled run: forward and backward seconds per layer, then the named stages.
    struct Sample {
        var forward: [Double] = [], backward: [Double] = []
        var stages: [String: Double] = [:]
        var step = 0.0
    }

    /// What one layer did on the profiled input: its node range on the tape and its FLOPs.
    struct Trace {
        var nodes: Range<Int>
        var forwardFlops: Double
        var backwardFlops: Double
    }

    /// Runs `layers` in order on `x`, timing each; returns the output and each layer's trace.
    static func runLayers(_ layers: [NamedLayer], _ x: Variable, tape: Tape, seconds: inout [Double]) -> (Variable, [Trace]) {
        var v = x
        var traces: [Trace] = []
        for named in layers {
            let before = tape.nodeCount, input = v, layer = named.layer
            let started = Stopwatch.now
            v = named.network.apply(named.stage, v)
            seconds.append(Stopwatch.now - started)
            let flops = gemmFlops(layer, input: input.shape, output: v.shape)
            let weighted = tape.recordsParameters && !layer.namedParameters.isEmpty
            let backward = flops * (input.requiresGradient ? 1 : 0) + flops * (weighted ? 1 : 0)
            traces.append(Trace(nodes: before..<tape.nodeCount, forwardFlops: flops, backwardFlops: backward))
        }
        return (v, traces)
    }

    /// The multiply-add FLOPs of one forward pass of `layer` (0 for layers without a matrix product).
    static func gemmFlops(_ layer: any Layer, input: [Int], output: [Int]) -> Double {
        switch layer {
        case let conv as Conv2D:
            // [N, O, OH, OW] outputs (from the input: `output` is the pooled one when a pooling runs in the stage),
            // each a dot product of length C * K * K
            let side = { (input[$0] + 2 * conv.padding - conv.kernelSize) / conv.stride + 1 }
            let outputs = Double(input[0] * conv.outputChannels * side(2) * side(3))
            return 2 * outputs * Double(conv.inputChannels * conv.kernelSize * conv.kernelSize)
        case let conv as ConvTranspose2D:
            // [N, I, H, W] inputs, each scattered to O * K * K outputs
            return 2 * Double(input.elementCount) * Double(conv.outputChannels * conv.kernelSize * conv.kernelSize)
        case let dense as Dense:
            return 2 * Double(input[0]) * Double(dense.inputSize) * Double(dense.outputSize)
        default:
            return 0
        }
    }

    static func named(_ prefix: String, _ network: Sequential) -> [NamedLayer] {
        network.stages().map { stage in
            let names = stage.map { network.layers[$0].summary }.joined(separator: " + ")
            return NamedLayer(name: "\(prefix).\(stage.lowerBound) \(names)", network: network, stage: stage)
        }
    }

    /// Collects `repetitions` samples of `body` after `warmup` and makes the table from the medians.
    static func profile(
        title: String, layers: [NamedLayer], warmup: Int, repetitions: Int,
        stageNames: [String], _ body: () throws -> (Sample, [Trace])
    ) rethrows -> LayerProfile {
        for _ in 0..<warmup { _ = try body() }
        var samples: [Sample] = []
        var traces: [Trace] = []
        for _ in 0..<max(1, repetitions) {
            let (sample, t) = try body()
            samples.append(sample)
            traces = t
        }
        let median = Figure.median
        var rows: [LayerProfile.Row] = []
        for (i, layer) in layers.enumerated() {
            rows.append(
                .init(
                    name: layer.name, pass: "forward", flops: traces[i].forwardFlops,
                    seconds: median(samples.map { $0.forward[i] })))
        }
        for (i, layer) in layers.enumerated().reversed() where !traces[i].nodes.isEmpty {
            rows.append(
                .init(
                    name: layer.name, pass: "backward", flops: traces[i].backwardFlops,
                    seconds: median(samples.map { $0.backward[i] })))
        }
        for stage in stageNames {
            rows.append(.init(name: stage, pass: "", flops: 0, seconds: median(samples.map { $0.stages[stage] ?? 0 })))
        }
        return LayerProfile(title: title, rows: rows, stepSeconds: median(samples.map(\.step)))
    }

    /// Splits the tape's per-node backward seconds into the layers' node ranges; the rest is returned.
    static func backwardByLayer(_ tape: Tape, _ traces: [Trace]) -> (perLayer: [Double], rest: Double) {
        let seconds = tape.backwardSeconds
        var perLayer = [Double](repeating: 0, count: traces.count)
        var owned = 0.0
        for (i, trace) in traces.enumerated() {
            for node in trace.nodes where node < seconds.count { perLayer[i] += seconds[node] }
            owned += perLayer[i]
        }
        return (perLayer, seconds.reduce(0, +) - owned)
    }

    /// GEMM FLOPs per image (counted as the profile counts them) of a joint training step (E, F and D forward,
    /// every weight gradient, every input gradient but the first layer's) and of one PGD step (E and F forward
    /// and their input gradients, no weight gradients): what `dafar-bench` multiplies its rates by to give
    /// them as a share of the FMA peak (about 117.6 and 39.8 MFLOP for the MNIST network).
    public static func flopsPerImage(_ work: ModelWorkloads) -> (jointStep: Double, attackStep: Double) {
        let network = work.network
        let image = work.batch.images.slice(0..<1)
        var seconds: [Double] = []
        let training = Tape()
        let (fed, tracesE) = runLayers(named("E", network.features), training.constant(image), tape: training, seconds: &seconds)
        let tracesF = runLayers(named("F", network.classifier), fed, tape: training, seconds: &seconds).1
        let tracesD = runLayers(named("D", network.decoder), fed, tape: training, seconds: &seconds).1
        let attack = Tape(recordsParameters: false)
        let (attacked, tracesAE) = runLayers(named("E", network.features), attack.watch(image), tape: attack, seconds: &seconds)
        let tracesAF = runLayers(named("F", network.classifier), attacked, tape: attack, seconds: &seconds).1
        let total = { (traces: [Trace]) in traces.reduce(0) { $0 + $1.forwardFlops + $1.backwardFlops } }
        return (total(tracesE + tracesF + tracesD), total(tracesAE + tracesAF))
    }

    /// The joint training step of `ModelWorkloads.jointTrainStep` (E, then F and D on E's output, Eq. 5
    /// with the default settings, backward, Adam), layer by layer.
    public static func jointTrainingStep(_ work: ModelWorkloads, warmup: Int = 1, repetitions: Int = 5) throws -> LayerProfile {
        let network = work.network, settings = JointTrainingSettings()
        let encoder = named("E", network.features), classifier = named("F", network.classifier), decoder = named("D", network.decoder)
        let layers = encoder + classifier + decoder
        let optimizer = try Adam(learningRate: settings.learningRate)
        let stages = ["loss (cross-entropy + reconstruction), forward", "loss, backward", "Adam update"]
        return profile(
            title: "Joint training step (batch \(work.batchSize))", layers: layers, warmup: warmup,
            repetitions: repetitions, stageNames: stages
        ) {
            var sample = Sample()
            let stepStarted = Stopwatch.now
            let tape = Tape()
            tape.measuresBackwardTimes = true
            let x = tape.constant(work.batch.images)
            let (fed, tracesE) = runLayers(encoder, x, tape: tape, seconds: &sample.forward)
            let (logits, tracesF) = runLayers(classifier, fed, tape: tape, seconds: &sample.forward)
            let (reconstruction, tracesD) = runLayers(decoder, fed, tape: tape, seconds: &sample.forward)
            var started = Stopwatch.now
            let crossEntropy = softmaxCrossEntropy(logits: logits, labels: work.batch.labels)
            let distance = settings.reconstructionNorm.perSample(reconstruction, x).mean()
            let loss = crossEntropy + distance * settings.reconstructionWeight
            sample.stages[stages[0]] = Stopwatch.now - started
            let gradients = tape.gradients(of: loss)
            let traces = tracesE + tracesF + tracesD
            (sample.backward, sample.stages[stages[1]]) = backwardByLayer(tape, traces)
            started = Stopwatch.now
            optimizer.step(network.namedParameters, gradients: gradients)
            sample.stages[stages[2]] = Stopwatch.now - started
            sample.step = Stopwatch.now - stepStarted
            return (sample, traces)
        }
    }

    /// One PGD step as `ProjectedGradientDescent` takes it: F(E(x)) on a tape that records no parameters,
    /// the per-image cross-entropy, the gradient with respect to the images, and the signed step with
    /// the projection onto the eps-ball and [0, 1].
    public static func attackStep(
        _ work: ModelWorkloads, epsilon: Float = 0.3, stepSize: Float = 0.01, warmup: Int = 1,
        repetitions: Int = 5
    ) -> LayerProfile {
        let network = work.network
        let layers = named("E", network.features) + named("F", network.classifier)
        let stages = ["loss (cross-entropy), forward", "loss, backward", "signed step + projection"]
        let images = work.batch.images
        return profile(
            title: "PGD step (batch \(work.batchSize), L-inf)", layers: layers, warmup: warmup, repetitions: repetitions,
            stageNames: stages
        ) {
            var sample = Sample()
            let stepStarted = Stopwatch.now
            let tape = Tape(recordsParameters: false)
            tape.measuresBackwardTimes = true
            let x = tape.watch(images)
            let (logits, traces) = runLayers(layers, x, tape: tape, seconds: &sample.forward)
            var started = Stopwatch.now
            let loss = softmaxCrossEntropyPerSample(logits: logits, labels: work.batch.labels).sum()
            sample.stages[stages[0]] = Stopwatch.now - started
            let gradient = tape.gradients(of: loss)[x] ?? Tensor.zeros(images.shape)
            (sample.backward, sample.stages[stages[1]]) = backwardByLayer(tape, traces)
            started = Stopwatch.now
            // the step `ProjectedAscent` takes (sign, step, projection and clamp in one pass over the pixels)
            _ = PerturbationNorm.lInfinity.ascentStep(from: images, gradient: gradient, images: images, stepSize: stepSize, radius: epsilon)
            sample.stages[stages[2]] = Stopwatch.now - started
            sample.step = Stopwatch.now - stepStarted
            return (sample, traces)
        }
    }

    /// One inference call as `DAFARModel.inspect` makes it on `count` images of the batch, without a tape:
    /// E, then F and D on E's output, the residual `x - D(E(x))`, C on the flattened residual, and the score
    /// `||delta - C(delta)||` (the verdicts' comparison with the threshold is not timed), layer by layer.
    public static func inspection(_ work: ModelWorkloads, count: Int, warmup: Int = 3, repetitions: Int = 9) -> LayerProfile {
        let network = work.network
        let encoder = named("E", network.features), classifier = named("F", network.classifier)
        let decoder = named("D", network.decoder), detector = named("C", work.detector.network)
        let layers = encoder + classifier + decoder + detector
        let stages = ["residual x - D(E(x))", "score ||delta - C(delta)||"]
        let images = count == work.batchSize ? work.batch.images : work.batch.images.slice(0..<count)
        let norm = work.detector.norm
        return profile(
            title: "Inference (batch \(count), classify + reconstruct + score)", layers: layers, warmup: warmup,
            repetitions: repetitions, stageNames: stages
        ) {
            var sample = Sample()
            let stepStarted = Stopwatch.now
            let x = Variable(images)
            let tape = Tape()  // never recorded on: `x` has none, so every layer runs tape-free
            let (fed, tracesE) = runLayers(encoder, x, tape: tape, seconds: &sample.forward)
            let (_, tracesF) = runLayers(classifier, fed, tape: tape, seconds: &sample.forward)
            let (reconstruction, tracesD) = runLayers(decoder, fed, tape: tape, seconds: &sample.forward)
            var started = Stopwatch.now
            let residual = (x - reconstruction).flattened()
            sample.stages[stages[0]] = Stopwatch.now - started
            let (restored, tracesC) = runLayers(detector, residual, tape: tape, seconds: &sample.forward)
            started = Stopwatch.now
            _ = norm.perSample(residual, restored)
            sample.stages[stages[1]] = Stopwatch.now - started
            sample.step = Stopwatch.now - stepStarted
            return (sample, tracesE + tracesF + tracesD + tracesC)
        }
    }

    /// The per-layer tables of the joint training step, of a PGD step and of inference at `batchSize` and at 1 image, with the measured FMA peak
    /// of `threads` threads (the best of several repetitions).
    public static func report(batchSize: Int, threads: Int, repetitions: Int = 5) throws -> String {
        let peak = PeakFigures.fmaGFLOPS(warmup: 1, repetitions: 5).max() ?? .nan
        let work = try ModelWorkloads(architecture: .mnist, batchSize: batchSize)
        let joint = try jointTrainingStep(work, repetitions: repetitions)
        let attack = attackStep(work, repetitions: repetitions)
        let batch = inspection(work, count: batchSize), single = inspection(work, count: 1, repetitions: 41)
        return [joint, attack, batch, single].map { $0.markdown(peakGFLOPS: peak) }.joined(separator: "\n\n")
            + "\n\nPeak: \(threads) thread(s) of `fma_loop_run` (\(PeakFigures.instructions)), "
            + "best of 5: \(String(format: "%.0f", peak)) GFLOP/s."
    }
}
