import Foundation
import Reporting

/// Metrics, distributions, plots and reports for DAFAR and its baselines.
///
/// The module follows the reporting practice of Carlini & Wagner (2017) and
/// Carlini et al. ("On evaluating adversarial robustness"): every rate carries
/// its counts and a Wilson 95 % interval (`Rate`), detection is counted
/// separately on successful and failed adversarial examples, detectors are
/// compared at a false-positive rate fixed on clean data (`OperatingPoint`) and
/// by ROC-AUC (`ROCCurve`). The convention throughout is that a higher score is
/// more anomalous and an input is flagged when `score > threshold`.
///
/// Reports (`Report`) are written as `report.md`, `results.json` and SVG
/// figures (`LineChart`, `DensityChart`, `BarChart`), each file atomically; those live in
/// the Foundation-only `Reporting` module.
public enum Evaluation {}
