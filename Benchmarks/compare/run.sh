#!/usr/bin/env bash
# Runs dafar-bench, the PyTorch script and the ONNX Runtime script back to back on the same
# machine with the same thread count and prints ours / PyTorch for every figure, then
# ours / ONNX Runtime for the two inference figures.
#
#   Benchmarks/compare/run.sh [--threads N] [--quick]
#
# Needs a release build of dafar-bench (DAFAR_BENCH, default: what `swift build -c release`
# builds) and a Python with torch, onnxscript and onnxruntime (PYTHON, default: .venv/bin/python);
# `make bench-compare` provides both. Writes the three JSON reports, the exported model
# (inspect.onnx) and the ratio tables to OUT (default: .build/bench-compare).
set -euo pipefail
cd "$(dirname "$0")/../.."
threads=$(nproc)
quick=()
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) threads="$2"; shift 2 ;;
        --quick) quick=(--quick); shift ;;
        *) echo "usage: $0 [--threads N] [--quick]" >&2; exit 64 ;;
    esac
done
bench="${DAFAR_BENCH:-$(swift build -c release --show-bin-path)/dafar-bench}"
python="${PYTHON:-.venv/bin/python}"
out="${OUT:-.build/bench-compare}"
mkdir -p "$out"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "running dafar-bench --threads $threads ${quick[*]}..." >&2
"$bench" --json --threads "$threads" "${quick[@]}" > "$out/ours.json"
echo "running PyTorch (Benchmarks/compare/compare.py) --threads $threads ${quick[*]}..." >&2
"$python" Benchmarks/compare/compare.py --json --threads "$threads" "${quick[@]}" > "$out/pytorch.json"
echo "running ONNX Runtime (Benchmarks/compare/onnx_peer.py) --threads $threads ${quick[*]}..." >&2
"$python" Benchmarks/compare/onnx_peer.py --json --threads "$threads" --model "$out/inspect.onnx" "${quick[@]}" \
    > "$out/onnxruntime.json"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
python3 - "$out/ours.json" "$out/pytorch.json" "$out/onnxruntime.json" <<'PY' | tee "$out/ratios.txt"
import json, sys
ours, torch, onnx = (json.load(open(path)) for path in sys.argv[1:4])
print(f"ours: {ours['machine']['framework']}, {ours['machine']['blas']}; "
      f"PyTorch: {torch['machine']['framework']}, {torch['machine']['blas']}")
print(f"cpu: {ours['machine']['cpu']}, cores: {ours['machine']['cores']}, threads: {ours['machine']['threads']}, "
      f"workload: {ours['machine']['workload']}")
print()
print(f"{'figure':34}{'ours':>11}{'PyTorch':>11}{'ours/PyTorch':>14}  (median; min-max in the JSON files)")
order = ["sgemm_gflops", "conv_forward_efficiency", "conv_backward_efficiency", "joint_train_images_per_s",
         "detector_train_images_per_s", "inference_images_per_s_batch128", "inference_images_per_s_batch1",
         "fgsm_images_per_s", "pgd40_images_per_s", "cw_images_per_s", "peak_rss_mib"]
for key in order + sorted(k for k in ours if k not in order + ["details", "machine"]):
    a, b = ours[key], torch.get(key)
    ratio = f"{a / b:.2f}" if b else "n/a"
    print(f"{key:34}{a:11.4g}{(b if b is not None else float('nan')):11.4g}{ratio:>14}")
print()
print("peak_rss_mib: lower is better (ratio < 1 means we use less memory); every other figure: higher is better.")
print()
print(f"ONNX Runtime: {onnx['machine']['framework']}, {onnx['machine']['blas']}; model: {onnx['machine']['model']}")
difference = onnx["max_abs_diff"]
print(f"max |ONNX Runtime - PyTorch| on the batch and on one image: logits {difference['logits']:.3g}, "
      f"scores {difference['scores']:.3g} (tolerance {difference['tolerance']:g}); classes and verdicts equal")
print()
full = ours["machine"]["workload"] == "full"
print(f"{'figure':34}{'ours':>11}{'ONNX RT':>11}{'ours/ONNX RT':>14}  target{'' if full else ' (quick run: not judged)'}")
for key, target in [("inference_images_per_s_batch128", 1.0), ("inference_images_per_s_batch1", 1.5)]:
    ratio = ours[key] / onnx[key]
    verdict = ("met" if ratio >= target else "missed") if full else ""
    print(f"{key:34}{ours[key]:11.4g}{onnx[key]:11.4g}{ratio:14.2f}  >= {target} {verdict}".rstrip())
PY
