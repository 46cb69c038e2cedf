/// Baseline detectors the paper compares DAFAR with: MagNet, Feature Squeezing,
/// a binary classifier detector and a median image filter.
public enum BaselineNames {
    public static let all = ["magnet", "feature-squeezing", "binary-classifier", "median-filter"]
}
