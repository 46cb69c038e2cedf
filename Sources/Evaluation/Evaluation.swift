/// Metrics, experiments and reports for DAFAR and its baselines.
public enum EvaluationFormat {
    public static let version = "1"
}
