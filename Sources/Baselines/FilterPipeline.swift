import Tensors

/// DAFAR combined with an image filter (paper section 6.1): a detector rejects the
/// inputs it flags, a median filter cleans the inputs it accepts, and the protected
/// classifier classifies the filtered inputs.
///
/// Scoring of one input `i` (the paper reports accuracy on a 1:1 clean/adversarial mix):
/// - flagged (rejected): correct iff it is adversarial;
/// - accepted: correct iff the class of the FILTERED input equals the true label
///   (for an adversarial input, the label of the clean image it was made from).
public enum FilterPipeline {
    /// Counts of one evaluation.
    public struct Result: Equatable, Sendable, CustomStringConvertible {
        /// Inputs evaluated.
        public let total: Int
        /// Inputs counted correct (rejected adversarial + accepted and correctly classified).
        public let correct: Int
        /// Adversarial inputs rejected (correct).
        public let rejectedAdversarial: Int
        /// Clean inputs rejected (wrong: a false positive).
        public let rejectedClean: Int
        /// Accepted inputs whose filtered class equals the true label.
        public let acceptedCorrect: Int

        /// `correct / total` (0 when there are no inputs).
        public var accuracy: Double { total == 0 ? 0 : Double(correct) / Double(total) }

        public var description: String {
            "accuracy \(accuracy) (\(correct)/\(total): \(rejectedAdversarial) adversarial rejected, "
                + "\(rejectedClean) clean rejected, \(acceptedCorrect) accepted and classified correctly)"
        }
    }

    /// Scores the pipeline from plain arrays, one entry per input.
    /// - Parameters:
    ///   - flagged: the detector's verdict (true = rejected).
    ///   - isAdversarial: whether the input is adversarial.
    ///   - labels: the true class.
    ///   - filteredPredictions: the classifier's class for the filtered input; entries
    ///     of flagged inputs are ignored (any value, say -1).
    /// - Precondition: all arrays have the same length.
    public static func evaluate(
        flagged: [Bool], isAdversarial: [Bool], labels: [Int],
        filteredPredictions: [Int]
    ) -> Result {
        let n = flagged.count
        precondition(
            isAdversarial.count == n && labels.count == n && filteredPredictions.count == n,
            "filter pipeline needs one entry per input, got \(n) verdicts, \(isAdversarial.count) adversarial "
                + "marks, \(labels.count) labels and \(filteredPredictions.count) predictions")
        var rejectedAdversarial = 0, rejectedClean = 0, acceptedCorrect = 0
        for i in 0..<n {
            if flagged[i] {
                if isAdversarial[i] { rejectedAdversarial += 1 } else { rejectedClean += 1 }
            } else if filteredPredictions[i] == labels[i] {
                acceptedCorrect += 1
            }
        }
        return Result(
            total: n, correct: rejectedAdversarial + acceptedCorrect, rejectedAdversarial: rejectedAdversarial,
            rejectedClean: rejectedClean, acceptedCorrect: acceptedCorrect)
    }

    /// Runs the pipeline: median-filters (`size`, reflect border) the accepted images of
    /// `images` `[N, C, H, W]`, classifies them in batches, and scores as above.
    public static func evaluate(
        images: Tensor, flagged: [Bool], isAdversarial: [Bool], labels: [Int],
        classifier: ClassifierFunction, filterSize: Int = 2,
        batchSize: Int = Tensor.defaultInferenceBatchSize
    ) -> Result {
        preconditionImages(images, "filter pipeline")
        precondition(
            flagged.count == images.batchSize,
            "filter pipeline got \(images.batchSize) images but \(flagged.count) verdicts")
        let accepted = flagged.indices.filter { !flagged[$0] }
        var predictions = [Int](repeating: -1, count: flagged.count)
        if !accepted.isEmpty {
            let classes = classifier.predictions(medianFilter(images.gather(accepted), size: filterSize), batchSize: batchSize)
            for (index, predicted) in zip(accepted, classes) { predictions[index] = predicted }
        }
        return evaluate(flagged: flagged, isAdversarial: isAdversarial, labels: labels, filteredPredictions: predictions)
    }
}
