#!/usr/bin/env bash
# Drive dafar-serve with wrk (Debian package `wrk`) on loopback: a 28x28 PNG POSTed to
# /v1/inspect at concurrency 1, 8 and 64 for SECONDS each, per batch setting; prints wrk's
# requests/s and latency and the mean batch size from /metrics (dafar_batch_size_sum / _count).
#
#   MODEL=runs/model.safetensors DETECTOR=runs/detector.safetensors PNG=digit.png SECONDS_EACH=10 \
#     SERVE_ARGS="--max-batch 32 --max-wait-ms 5" bash scripts/bench-serve.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${MODEL:?set MODEL}" "${DETECTOR:?set DETECTOR}" "${PNG:?set PNG}"
seconds=${SECONDS_EACH:-10}
bin=${BIN:-$(swift build -c release --scratch-path "${SCRATCH:-.build}" --show-bin-path)}
command -v wrk >/dev/null || { echo "bench-serve: wrk is missing (apt-get install -y wrk)" >&2; exit 69; }

out=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$out"' EXIT
"$bin/dafar-serve" --model "$MODEL" --detector "$DETECTOR" --host 127.0.0.1 --port 0 ${SERVE_ARGS:-} >"$out/stdout" 2>"$out/stderr" &
pid=$!
for _ in $(seq 100); do grep -q '^listening on ' "$out/stdout" && break; sleep 0.1; done
address=$(sed -n 's/^listening on //p' "$out/stdout")
[ -n "$address" ] || { echo "bench-serve: dafar-serve did not start: $(cat "$out/stderr")" >&2; exit 70; }
echo "dafar-serve ${SERVE_ARGS:-} at $address, rss $(ps -o rss= -p "$pid") KiB"

batch_stats() { curl -s "$address/metrics" | awk '/^dafar_batch_size_sum /{s=$2} /^dafar_batch_size_count /{c=$2} END{print s, c}'; }
for connections in 1 8 64; do
    read -r sum0 count0 < <(batch_stats)
    DAFAR_PNG="$PNG" wrk -t "$([ "$connections" -lt 2 ] && echo 1 || echo 2)" -c "$connections" -d "${seconds}s" \
        -s scripts/serve-post-png.lua "$address" >"$out/wrk" 2>&1
    read -r sum1 count1 < <(batch_stats)
    rps=$(awk '/^Requests\/sec/{print $2}' "$out/wrk")
    latency=$(sed -n 's/^latency_ms //p' "$out/wrk")
    errors=$(sed -n 's/^requests [0-9]*, errors: //p' "$out/wrk")
    mean=$(awk -v s="$sum1" -v s0="$sum0" -v c="$count1" -v c0="$count0" 'BEGIN{ if (c > c0) printf "%.1f", (s - s0) / (c - c0); else print "-" }')
    echo "c=$connections: $rps req/s, latency $latency ms, mean batch $mean, errors: $errors"
done
echo "rss after: $(ps -o rss= -p "$pid") KiB"
kill -TERM "$pid"; status=0; wait "$pid" || status=$?; echo "exit status after SIGTERM: $status"
