/// Baseline detectors the paper compares DAFAR with: MagNet, Feature Squeezing,
/// a binary classifier detector and a median image filter.
public enum BaselineNames {
    /// Identifiers of the baselines, as used in reports and command-line options.
    public static let all = ["magnet", "feature-squeezing", "binary-classifier", "median-filter"]
}
