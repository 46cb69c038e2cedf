#!/usr/bin/env bash
# Runs dafar-bench, the PyTorch script and the ONNX Runtime script back to back on the same
# machine with the same thread count and prints ours / PyTorch for every figure, then
# ours / ONNX Runtime for the two inference figures.
#
#   Benchmarks/compare/run.sh [--threads N] [--quick] [--pairs N]
#
# Then (--pairs, default 5; 0: none) the batch-1 inference figure again as back-to-back pairs, ours then ONNX
# Runtime's, each pair within seconds: on a host whose speed moves from minute to minute, the median of the
# pairs' ratios compares the two under the same conditions, where the main runs time them minutes apart.
#
# Needs a release build of dafar-bench (DAFAR_BENCH, default: what `swift build -c release`
# builds) and a Python with torch, onnxscript and onnxruntime (PYTHON, default: .venv/bin/python);
# `make bench-compare` provides both. Writes the three JSON reports, the exported model
# (inspect.onnx) and the ratio tables to OUT (default: .build/bench-compare).
set -euo pipefail
cd "$(dirname "$0")/../.."
threads=$(nproc)
quick=()
pairs=5
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) threads="$2"; shift 2 ;;
        --quick) quick=(--quick); shift ;;
        --pairs) pairs="$2"; shift 2 ;;
        *) echo "usage: $0 [--threads N] [--quick] [--pairs N]" >&2; exit 64 ;;
    esac
done
case "$pairs" in ''|*[!0-9]*) echo "$0: --pairs takes a whole number, got '$pairs'" >&2; exit 64 ;; esac
bench="${DAFAR_BENCH:-$(swift build -c release --show-bin-path)/dafar-bench}"
python="${PYTHON:-.venv/bin/python}"
out="${OUT:-.build/bench-compare}"
mkdir -p "$out"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "running dafar-bench --threads $threads ${quick[*]}..." >&2
"$bench" --json --threads "$threads" "${quick[@]}" > "$out/ours.json"
# The host may place the two cores near each other or far apart and move them (Benchmarks/README.md,
# "Near and far cores"): dafar-bench records the cache-line round trip around each of its figures; the
# peers' runs are bracketed by the same probe, so that every ratio can be read with both placements.
round_trip() { "$bench" --only core_round_trip --json "${quick[@]}" | "$python" -c 'import json, sys; print(json.load(sys.stdin)["core_round_trip_ns"])'; }
trip_before_torch=$(round_trip)
echo "running PyTorch (Benchmarks/compare/compare.py) --threads $threads ${quick[*]}..." >&2
"$python" Benchmarks/compare/compare.py --json --threads "$threads" "${quick[@]}" > "$out/pytorch.json"
trip_before_onnx=$(round_trip)
echo "running ONNX Runtime (Benchmarks/compare/onnx_peer.py) --threads $threads ${quick[*]}..." >&2
"$python" Benchmarks/compare/onnx_peer.py --json --threads "$threads" --model "$out/inspect.onnx" "${quick[@]}" \
    > "$out/onnxruntime.json"
trip_after=$(round_trip)
printf '{"pytorch_ns": [%s, %s], "onnxruntime_ns": [%s, %s]}\n' "$trip_before_torch" "$trip_before_onnx" \
    "$trip_before_onnx" "$trip_after" > "$out/round_trips.json"
# batch 1 in back-to-back pairs (see the top), each side with its own cache-line round trip
key=inference_images_per_s_batch1
: > "$out/pairs.jsonl"
for pair in $(seq 1 "$pairs"); do
    echo "batch-1 pair $pair of $pairs..." >&2
    ours_pair=$("$bench" --json --threads "$threads" "${quick[@]}" --only "$key")
    theirs_pair=$("$python" Benchmarks/compare/onnx_peer.py --json --threads "$threads" --only "$key" \
        --model "$out/inspect-pairs.onnx" "${quick[@]}")
    trip=$(round_trip)
    "$python" -c 'import json, sys; o, t = json.loads(sys.argv[1]), json.loads(sys.argv[2]); print(json.dumps({"ours": o[sys.argv[3]], "onnxruntime": t[sys.argv[3]], "ours_cores": o["details"][sys.argv[3]].get("cores", "-"), "round_trip_after_ns": float(sys.argv[4])}))' \
        "$ours_pair" "$theirs_pair" "$key" "$trip" >> "$out/pairs.jsonl"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
python3 - "$out/ours.json" "$out/pytorch.json" "$out/onnxruntime.json" "$out/round_trips.json" "$out/pairs.jsonl" <<'PY' | tee "$out/ratios.txt"
import json, sys
ours, torch, onnx, trips = (json.load(open(path)) for path in sys.argv[1:5])
pairs = [json.loads(line) for line in open(sys.argv[5]) if line.strip()]


def placement(before, after, near=150.0):
    """dafar-bench's words for a round trip before and after a run (PeakFigures.placement)."""
    words = ["near" if t < near else "far" for t in (before, after)]
    return words[0] if words[0] == words[1] else f"moved ({words[0]} -> {words[1]})"


def ours_cores(key):
    return ours["details"].get(key, {}).get("cores", "-")
print(f"ours: {ours['machine']['framework']}, {ours['machine']['blas']}; "
      f"PyTorch: {torch['machine']['framework']}, {torch['machine']['blas']}")
print(f"cpu: {ours['machine']['cpu']}, cores: {ours['machine']['cores']}, threads: {ours['machine']['threads']}, "
      f"workload: {ours['machine']['workload']}")
print()
torch_cores, onnx_cores = placement(*trips["pytorch_ns"]), placement(*trips["onnxruntime_ns"])
print(f"cores (cache-line round trip, near < 150 ns): PyTorch's run {torch_cores} "
      f"({trips['pytorch_ns'][0]:.0f} -> {trips['pytorch_ns'][1]:.0f} ns), ONNX Runtime's {onnx_cores} "
      f"({trips['onnxruntime_ns'][0]:.0f} -> {trips['onnxruntime_ns'][1]:.0f} ns); ours per figure below")
print()
print(f"{'figure':34}{'ours':>11}{'PyTorch':>11}{'ours/PyTorch':>14}  cores (ours)  (median; min-max in the JSON files)")
order = ["sgemm_gflops", "conv_forward_efficiency", "conv_backward_efficiency", "joint_train_images_per_s",
         "detector_train_images_per_s", "inference_images_per_s_batch128", "inference_images_per_s_batch1",
         "fgsm_images_per_s", "pgd40_images_per_s", "cw_images_per_s", "peak_rss_mib"]
for key in order + sorted(k for k in ours if k not in order + ["details", "machine"]):
    a, b = ours[key], torch.get(key)
    ratio = f"{a / b:.2f}" if b else "n/a"
    print(f"{key:34}{a:11.4g}{(b if b is not None else float('nan')):11.4g}{ratio:>14}  {ours_cores(key)}")
print()
print("peak_rss_mib: lower is better (ratio < 1 means we use less memory); every other figure: higher is better.")
full = ours["machine"]["workload"] == "full"
shares = [(key, name, target, ours["details"].get(key, {}).get("percent_of_fma_peak"))
          for key, name, target in [("joint_train_images_per_s", "joint training", 65.0), ("pgd40_images_per_s", "PGD-40", 60.0)]]
print("ours as a share of the FP32 FMA peak measured in the same run (images/s x GEMM GFLOP per image / peak): "
      + ", ".join(f"{name} {share:.1f} % (target {target:.0f} %{'' if not full else ': met' if share >= target else ': missed'})"
                  for _, name, target, share in shares if share is not None))
print()
print(f"ONNX Runtime: {onnx['machine']['framework']}, {onnx['machine']['blas']}; model: {onnx['machine']['model']}")
difference = onnx["max_abs_diff"]
print(f"max |ONNX Runtime - PyTorch| on the batch and on one image: logits {difference['logits']:.3g}, "
      f"scores {difference['scores']:.3g} (tolerance {difference['tolerance']:g}); classes and verdicts equal")
print()
print(f"{'figure':34}{'ours':>11}{'ONNX RT':>11}{'ours/ONNX RT':>14}  target{'' if full else ' (quick run: not judged)'}")
for key, target in [("inference_images_per_s_batch128", 1.0), ("inference_images_per_s_batch1", 1.5)]:
    ratio = ours[key] / onnx[key]
    verdict = ("met" if ratio >= target else "missed") if full else ""
    # a ratio between runs on near and on far cores says more about the host than about either program
    alike = ours_cores(key) == onnx_cores and not onnx_cores.startswith("moved")
    caveat = "" if alike else " (not like for like: the two ran on different or moving placements)"
    print(f"{key:34}{ours[key]:11.4g}{onnx[key]:11.4g}{ratio:14.2f}  >= {target} {verdict}  cores: ours {ours_cores(key)}, "
          f"ONNX Runtime {onnx_cores}{caveat}")
if pairs:
    import statistics
    ratios = [p["ours"] / p["onnxruntime"] for p in pairs]
    median = statistics.median(ratios)
    print()
    print(f"batch 1 in {len(pairs)} back-to-back pairs (ours, then ONNX Runtime, seconds apart), ours / ONNX Runtime: "
          + ", ".join(f"{r:.2f}" for r in ratios) + f"; median {median:.2f}"
          + ("" if not full else f" (target 1.5: {'met' if median >= 1.5 else 'missed'})"))
    print("  ours " + ", ".join(f"{p['ours']:.0f}" for p in pairs) + " img/s; ONNX Runtime "
          + ", ".join(f"{p['onnxruntime']:.0f}" for p in pairs) + " img/s; cores (ours; after the pair) "
          + ", ".join(f"{p['ours_cores']}; {placement(p['round_trip_after_ns'], p['round_trip_after_ns'])}" for p in pairs))
PY
