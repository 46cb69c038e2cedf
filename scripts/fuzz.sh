#!/usr/bin/env bash
# `make fuzz`: fuzz every file parser for FUZZ_SECONDS seconds each and report executions,
# corpus size, crashes and hangs per parser. Exit status 1 when anything crashed or hung.
#
# Engine (FUZZ_ENGINE): `libfuzzer` builds dafar-fuzz with coverage instrumentation and
# AddressSanitizer and links the toolchain's libFuzzer (libclang_rt.fuzzer_no_main); `loop`
# uses dafar-fuzz's seeded mutation loop (no coverage feedback, no sanitizer); `auto` (default)
# takes libFuzzer when the toolchain ships it.
#
#   FUZZ_SECONDS=60 FUZZ_TARGETS="safetensors idx" FUZZ_ENGINE=auto bash scripts/fuzz.sh
# Outputs: .build-fuzz/out/<target>/{corpus,artifacts,log}; crashing inputs are in artifacts/.
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-"safetensors idx cifar10 mnist-csv adversarial-set detector model png npy pixels-json"}
engine=${FUZZ_ENGINE:-auto}
scratch=.build-fuzz
out=$scratch/out
swift=${SWIFT:-swift}
mkdir -p "$out"
export SWIFT_BACKTRACE=enable=no  # a crash ends at once; libFuzzer or this script keeps the input

runtime=""
if swiftc_path=$(command -v swiftc); then
    runtime="$(dirname "$(readlink -f "$swiftc_path")")/../lib/swift/clang/lib/linux/libclang_rt.fuzzer_no_main-$(uname -m).a"
fi
if [ "$engine" = auto ]; then
    if [ -f "$runtime" ]; then engine=libfuzzer; else engine=loop; fi
fi

echo "fuzz: engine $engine, $seconds s per target, targets: $targets"
if [ "$engine" = libfuzzer ]; then
    [ -f "$runtime" ] || { echo "fuzz: libFuzzer runtime $runtime not found; use FUZZ_ENGINE=loop" >&2; exit 69; }
    build=("$swift" build -c release --scratch-path "$scratch/libfuzzer" --product dafar-fuzz --sanitize=address
           -Xswiftc -sanitize-coverage=edge,trace-cmp,inline-8bit-counters,pc-table -Xswiftc -DDAFAR_LIBFUZZER
           -Xlinker "$runtime" -Xlinker -lstdc++)
    bin_dir=$("${build[@]}" --show-bin-path)
else
    build=("$swift" build -c release --scratch-path "$scratch/loop" --product dafar-fuzz)
    bin_dir=$("${build[@]}" --show-bin-path)
fi
echo "fuzz: building dafar-fuzz (${build[*]})"
"${build[@]}" 2>&1 | grep -Ev "warning: Cannot export local symbol|^\[" || true
fuzzer="$bin_dir/dafar-fuzz"
[ -x "$fuzzer" ] || { echo "fuzz: the build failed" >&2; exit 70; }
"$fuzzer" --write-seeds "$out/seeds" || exit 70

failed=0
summary=()
for target in $targets; do
    dir="$out/$target"
    mkdir -p "$dir/corpus" "$dir/artifacts"
    start=$(date +%s)
    if [ "$engine" = libfuzzer ]; then
        # detect_leaks=0: the Swift runtime keeps caches until exit; leaks are not what is sought.
        DAFAR_FUZZ_TARGET=$target DAFAR_FUZZ_SCRATCH=$dir ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=0 \
            "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
            -print_final_stats=1 -artifact_prefix="$dir/artifacts/" "$dir/corpus" "$out/seeds/$target" \
            >"$dir/log" 2>&1
        status=$?
        executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log" | tail -1)
        coverage=$(grep -Eo 'cov: [0-9]+' "$dir/log" | tail -1)
    else
        "$fuzzer" "$target" --seconds "$seconds" --seed "$RANDOM" --timeout 10 --corpus "$dir/corpus" \
            --findings "$dir/artifacts" --scratch "$dir" >"$dir/log" 2>&1
        status=$?
        if [ $status -ge 128 ] && [ -f "$dir/input-$target" ]; then
            cp "$dir/input-$target" "$dir/artifacts/crash-$target-$(date +%s)"
        fi
        executions=$(grep -Eo '[0-9]+ executions' "$dir/log" | tail -1 | cut -d' ' -f1)
        rate=""; coverage=""
    fi
    elapsed=$(( $(date +%s) - start ))
    corpus=$(find "$dir/corpus" -type f | wc -l)
    crashes=$(find "$dir/artifacts" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'leak-*' -o -name 'finding-*' \) | wc -l)
    hangs=$(find "$dir/artifacts" -type f \( -name 'timeout-*' -o -name 'hang-*' -o -name 'slow-*' \) | wc -l)
    if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ] && [ "$hangs" -eq 0 ]; then crashes=1; fi  # died without an artifact
    [ "$crashes" -eq 0 ] && [ "$hangs" -eq 0 ] || failed=1
    line=$(printf '%-16s %10s executions %5s s %8s/s  corpus %5s  %s  crashes %s  hangs %s' \
        "$target" "${executions:-?}" "$elapsed" "${rate:--}" "$corpus" "${coverage:-}" "$crashes" "$hangs")
    echo "$line"
    summary+=("$line")
done

echo
echo "fuzz summary ($engine, $seconds s per target):"
printf '%s\n' "${summary[@]}"
if [ $failed -ne 0 ]; then
    echo "fuzz: crashes or hangs found; inputs are in $out/<target>/artifacts, logs in $out/<target>/log" >&2
    exit 1
fi
