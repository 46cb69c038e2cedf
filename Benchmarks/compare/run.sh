#!/usr/bin/env bash
# Runs dafar-bench, the PyTorch script and the ONNX Runtime script back to back on the same
# machine with the same thread count and prints ours / PyTorch for every figure, then
# ours / ONNX Runtime for the two inference figures.
#
#   Benchmarks/compare/run.sh [--threads N] [--quick] [--pairs N]
#
# Then (--pairs N, default 3; 0: none) N rounds of back-to-back pairs: each of the seven throughput figures
# (training, inference, attacks) measured alone by ours, then by PyTorch, then, for the two inference figures,
# by ONNX Runtime (even rounds: the peers first, then ours), each side within seconds of the other. The main runs time each program's figures in one
# go, minutes apart; on this host, whose speed moves by up to 2x from minute to minute, their ratios compare
# two moments as much as two programs (ours and PyTorch even moved in opposite directions from run to run).
# A pair's two sides see the same moment, so the median of a figure's pair ratios is the like-for-like
# reading, and the targets are judged on it: ours / PyTorch >= 1.3 for every throughput figure, ours / ONNX
# Runtime >= 1.0 at batch 128 and >= 1.5 at batch 1.
#
# Needs a release build of dafar-bench (DAFAR_BENCH, default: what `swift build -c release`
# builds) and a Python with torch, onnxscript and onnxruntime (PYTHON, default: .venv/bin/python);
# `make bench-compare` provides both. Writes the three JSON reports, the exported model
# (inspect.onnx), the pairs (pairs.jsonl: one line per figure per round) and the ratio tables
# (ratios.txt) to OUT (default: .build/bench-compare).
set -euo pipefail
cd "$(dirname "$0")/../.."
usage="usage: $0 [--threads N] [--quick] [--pairs N]  (--pairs: rounds of back-to-back pairs, default 3; 0: none)"
threads=$(nproc)
quick=()
pairs=3
while [ $# -gt 0 ]; do
    case "$1" in
        --threads|--pairs) [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; echo "$usage" >&2; exit 64; }
            if [ "$1" = --threads ]; then threads="$2"; else pairs="$2"; fi; shift 2 ;;
        --quick) quick=(--quick); shift ;;
        -h|--help) echo "$usage"; exit 0 ;;
        *) echo "$usage" >&2; exit 64 ;;
    esac
done
case "$threads" in ''|*[!0-9]*|0) echo "$0: --threads takes a whole number above 0, got '$threads'" >&2; exit 64 ;; esac
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
# The back-to-back pairs (see the top): per round, each throughput figure alone, ours then PyTorch's (then ONNX
# Runtime's for inference; the other way round in even rounds), then the cache-line round trip; ours records its
# placement around its own run.
# ONNX Runtime runs the model the main run has just exported (the export takes ~10 s; the outputs are checked
# against PyTorch's all the same).
keys=(joint_train_images_per_s detector_train_images_per_s inference_images_per_s_batch128
      inference_images_per_s_batch1 fgsm_images_per_s pgd40_images_per_s cw_images_per_s)
ours_figure() { "$bench" --json --threads "$threads" "${quick[@]}" --only "$1"; }
pair_line() {  # round key ours-json pytorch-json onnxruntime-json-or-empty round-trip-ns: one line of pairs.jsonl
    "$python" - "$@" <<'PY'
import json, sys
number, key, ours, torch, onnx, trip = sys.argv[1:]
ours, torch = json.loads(ours), json.loads(torch)
print(json.dumps({"round": int(number), "key": key, "ours": ours[key], "pytorch": torch[key],
                  "onnxruntime": json.loads(onnx)[key] if onnx else None,
                  "ours_cores": ours["details"][key].get("cores", "-"), "round_trip_after_ns": float(trip)}))
PY
}
: > "$out/pairs.jsonl"
for number in $(seq 1 "$pairs"); do
    for key in "${keys[@]}"; do
        echo "pairs, round $number of $pairs: $key..." >&2
        # odd rounds ours first, even rounds the peers first: a drift of the host within a pair favours
        # neither side over the rounds
        if [ $((number % 2)) -eq 1 ]; then ours_pair=$(ours_figure "$key"); fi
        torch_pair=$("$python" Benchmarks/compare/compare.py --json --threads "$threads" "${quick[@]}" --only "$key")
        onnx_pair=""
        case "$key" in inference_*)
            onnx_pair=$("$python" Benchmarks/compare/onnx_peer.py --json --threads "$threads" "${quick[@]}" \
                --only "$key" --model "$out/inspect.onnx" --reuse-model) ;;
        esac
        if [ $((number % 2)) -eq 0 ]; then ours_pair=$(ours_figure "$key"); fi
        trip=$(round_trip)
        pair_line "$number" "$key" "$ours_pair" "$torch_pair" "$onnx_pair" "$trip" >> "$out/pairs.jsonl"
    done
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
    # one row per figure: ours / PyTorch per round and their median, and for inference ours / ONNX Runtime
    # likewise; the targets are judged on the medians (the like-for-like reading, see run.sh's header)
    import statistics
    rounds = max(p["round"] for p in pairs)
    onnx_targets = {"inference_images_per_s_batch128": 1.0, "inference_images_per_s_batch1": 1.5}
    verdicts = []

    def judged(median, target):
        if not full:
            return ""
        verdicts.append(median >= target)
        return f">= {target} {'met' if median >= target else 'missed'}"

    def column(rows, side, target):
        """(the ratios per round, their median, the verdict), or three blanks when `side` did not run."""
        if rows[0][side] is None:
            return "", "", ""
        ratios = [p["ours"] / p[side] for p in rows]
        median = statistics.median(ratios)
        return " ".join(f"{r:5.2f}" for r in ratios), f"{median:.2f}", judged(median, target)

    table = []
    for key in dict.fromkeys(p["key"] for p in pairs):
        rows = sorted((p for p in pairs if p["key"] == key), key=lambda p: p["round"])
        cores = ", ".join(f"{p['ours_cores']} | {placement(p['round_trip_after_ns'], p['round_trip_after_ns'])}"
                          for p in rows)
        table.append((key, *column(rows, "pytorch", 1.3), *column(rows, "onnxruntime", onnx_targets.get(key)), cores))
    width = max(len(cell) for row in table for cell in (row[1], row[4], "ours/ONNX RT")) + 2
    print()
    print(f"back-to-back pairs (ours and PyTorch [and ONNX Runtime] seconds apart; odd rounds ours first, even rounds "
          f"the peers first), {rounds} round"
          f"{'s' if rounds > 1 else ''}; ratio per round, median{'' if full else ' (quick run: not judged)'}")
    print(f"{'figure':34}{'ours/PyTorch':{width}}{'median':>7}  {'target':15}{'ours/ONNX RT':{width}}{'median':>7}  "
          f"{'target':15}cores (ours | after)")
    for key, torch_ratios, torch_median, torch_verdict, onnx_ratios, onnx_median, onnx_verdict, cores in table:
        print(f"{key:34}{torch_ratios:{width}}{torch_median:>7}  {torch_verdict:15}"
              f"{onnx_ratios:{width}}{onnx_median:>7}  {onnx_verdict:15}{cores}")
    print("images/s of each side and the round trips: pairs.jsonl; cores: ours' placement during its run | the "
          "placement probed after the figure's last run")
    if full:
        print(f"targets on the pair medians: {sum(verdicts)} of {len(verdicts)} met")
PY
