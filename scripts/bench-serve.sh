#!/usr/bin/env bash
# Drive dafar-serve with wrk (Debian package `wrk`) on loopback: a 28x28 PNG POSTed to
# /v1/inspect at concurrency 1, 8 and 64 for SECONDS_EACH seconds each, for every batch setting
# of SERVE_CONFIGS (separated by |; or SERVE_ARGS for a single one); prints wrk's requests/s and
# latency, the errors, the mean batch size from /metrics (dafar_batch_size_sum / _count) and
# the RSS before and after. Then dafar-bench's batch-128 inference figure in the same sitting,
# and images/s at concurrency 64 as a fraction of it (issue 14's target: >= 0.70). `uptime` is
# printed before and after: the machine may be shared.
#
#   MODEL=runs/model.safetensors DETECTOR=runs/detector.safetensors SECONDS_EACH=10 \
#     SERVE_ARGS="--max-batch 32 --max-wait-ms 5" bash scripts/bench-serve.sh
#
# PNG (optional): the image to send; by default the last test seven of data/mnist_5k.csv.gz
# (`make data`), written as a grey PNG with python3's standard library.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${MODEL:?set MODEL}" "${DETECTOR:?set DETECTOR}"
seconds=${SECONDS_EACH:-10}
bin=${BIN:-$(swift build -c release --scratch-path "${SCRATCH:-.build}" --show-bin-path)}
command -v wrk >/dev/null || { echo "bench-serve: wrk is missing (apt-get install -y wrk; make bench-serve installs it)" >&2; exit 69; }
configs=$(printf '%s\n' "${SERVE_CONFIGS:-${SERVE_ARGS:---max-batch 32}}" | tr '|' '\n')

out=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; [ -n "$pid" ] && wait "$pid" 2>/dev/null; rm -rf "$out"' EXIT

png=${PNG:-}
if [ -z "$png" ]; then
    png="$out/seven.png"
    [ -f data/mnist_5k.csv.gz ] || { echo "bench-serve: no PNG given and data/mnist_5k.csv.gz is missing (make data)" >&2; exit 66; }
    python3 - "$png" <<'PY'
import gzip, struct, sys, zlib
row = gzip.open("data/mnist_5k.csv.gz", "rt").read().splitlines()[3999].split(",")  # the last 7: a test image
pixels = bytes(int(v) for v in row[:784])
chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
rows = b"".join(b"\0" + pixels[28 * y:28 * y + 28] for y in range(28))
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0))
                              + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
PY
fi

echo "load before: $(uptime)"
declare -a at64=()
while IFS= read -r args; do
    [ -n "$args" ] || continue
    # shellcheck disable=SC2086
    "$bin/dafar-serve" --model "$MODEL" --detector "$DETECTOR" --host 127.0.0.1 --port 0 $args >"$out/stdout" 2>"$out/stderr" &
    pid=$!
    for _ in $(seq 100); do grep -q '^listening on ' "$out/stdout" && break; sleep 0.1; done
    address=$(sed -n 's/^listening on //p' "$out/stdout")
    [ -n "$address" ] || { echo "bench-serve: dafar-serve did not start: $(cat "$out/stderr")" >&2; exit 70; }
    echo "dafar-serve $args at $address, rss $(ps -o rss= -p "$pid") KiB"

    batch_stats() { curl -s "$address/metrics" | awk '/^dafar_batch_size_sum /{s=$2} /^dafar_batch_size_count /{c=$2} END{print s, c}'; }
    for connections in 1 8 64; do
        read -r sum0 count0 < <(batch_stats)
        DAFAR_PNG="$png" wrk -t "$([ "$connections" -lt 2 ] && echo 1 || echo 2)" -c "$connections" -d "${seconds}s" \
            -s scripts/serve-post-png.lua "$address" >"$out/wrk" 2>&1
        read -r sum1 count1 < <(batch_stats)
        rps=$(awk '/^Requests\/sec/{print $2}' "$out/wrk")
        latency=$(sed -n 's/^latency_ms //p' "$out/wrk")
        errors=$(sed -n 's/^requests [0-9]*, errors: //p' "$out/wrk")
        mean=$(awk -v s="$sum1" -v s0="$sum0" -v c="$count1" -v c0="$count0" 'BEGIN{ if (c > c0) printf "%.1f", (s - s0) / (c - c0); else print "-" }')
        echo "c=$connections: $rps req/s, latency $latency ms, mean batch $mean, errors: $errors"
        [ "$connections" = 64 ] && at64+=("$rps $args")
    done
    echo "rss after: $(ps -o rss= -p "$pid") KiB"
    kill -TERM "$pid"; status=0; wait "$pid" || status=$?; pid=
    echo "exit status after SIGTERM: $status"
done <<<"$configs"

if [ "${BENCH_INFERENCE:-1}" = 1 ]; then
    inference=$("$bin/dafar-bench" --only inference_images_per_s_batch128 --json \
        | python3 -c 'import json, sys; print(round(json.load(sys.stdin)["inference_images_per_s_batch128"], 1))')
    echo "dafar-bench inference_images_per_s_batch128: $inference images/s"
    for entry in "${at64[@]}"; do
        awk -v r="${entry%% *}" -v i="$inference" -v a="${entry#* }" 'BEGIN{ printf "c=64 with %s: %.0f images/s = %.2f of batch-128 inference (target >= 0.70)\n", a, r, r / i }'
    done
fi
echo "load after: $(uptime)"
