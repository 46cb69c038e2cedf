/// DAFAR: target network E/F, feedback decoder D, detector C, thresholds and the
/// combined verdict of Eq. 4 (paper section 4).
public enum DAFARFormat {
    /// Version of the model/detector file layout written in `__metadata__`.
    public static let version = "1"
}
