#!/usr/bin/env bash
# make bench-mpi: 1 rank x 2 threads against 2 ranks x 1 thread (mpirun -np 2) on this machine, for
# joint training (dafar-train, MNIST-5k), PGD-40 and CW-L2 (dafar-attack); prints images/s, the
# scaling efficiency (2 ranks / 1 rank) and, for training, the gradient all-reduce time per step
# and its share of the training time. A benchmark, not a test: the figures depend on what else
# runs on the machine, so the load average is printed before and after.
#
#   BIN=$(swift build -c release --show-bin-path) EPOCHS=2 PGD_COUNT=400 CW_COUNT=100 bash scripts/bench-mpi.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-$(swift build -c release --show-bin-path)}
out=${OUT:-.build/bench-mpi}
epochs=${EPOCHS:-2}
pgd_count=${PGD_COUNT:-400}
cw_count=${CW_COUNT:-100}
mkdir -p "$out"
command -v mpirun >/dev/null || { echo "bench-mpi: mpirun is missing (make setup installs openmpi-bin)" >&2; exit 69; }
[ -f data/mnist_5k.csv.gz ] || { echo "bench-mpi: data/mnist_5k.csv.gz is missing (make data)" >&2; exit 66; }
# mpirun refuses root unless told; this benchmark is the only thing these variables reach
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
mpi=(mpirun -np 2 --oversubscribe)

echo "load before: $(uptime)"
data=(--dataset mnist5k --seed 0)

# joint training: images/s of each epoch's training steps (test evaluation excluded)
"$bin/dafar-train" "${data[@]}" --epochs "$epochs" --threads 2 --output "$out/train-1x2.safetensors" 2>"$out/train-1x2.log" >/dev/null
"${mpi[@]}" "$bin/dafar-train" "${data[@]}" --epochs "$epochs" --threads 1 --output "$out/train-2x1.safetensors" 2>"$out/train-2x1.log" >/dev/null
rate() { tr '\r' '\n' <"$1" | sed -n 's/.*training \([0-9.]*\) images\/s.*/\1/p' | tail -1; }
train1=$(rate "$out/train-1x2.log"); train2=$(rate "$out/train-2x1.log")
allreduce_ms=$(tr '\r' '\n' <"$out/train-2x1.log" | sed -n 's/.*all-reduce \([0-9.]*\) ms per step.*/\1/p' | tail -1)
allreduce_share=$(tr '\r' '\n' <"$out/train-2x1.log" | sed -n 's/.*per step, \([0-9.]*\) % of the training time.*/\1/p' | tail -1)

# compute per image on one core, for the cost model: MNIST-5k, and the CIFAR-10 network on synthetic
# CIFAR-10 binary batches (5 x 64 training and 64 test records of random pixels)
"$bin/dafar-train" "${data[@]}" --epochs 1 --threads 1 --output "$out/train-1x1.safetensors" 2>"$out/train-1x1.log" >/dev/null
python3 - "$out/cifar" <<'PY'
import os, random, sys
folder = sys.argv[1]; os.makedirs(folder, exist_ok=True); rng = random.Random(0)
for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
    with open(os.path.join(folder, name), "wb") as f:
        for k in range(64): f.write(bytes([k % 10]) + rng.randbytes(3072))
PY
"$bin/dafar-train" --dataset cifar10 --data-dir "$out/cifar" --epochs 1 --threads 1 --shift 0 --output "$out/cifar-1x1.safetensors" \
    2>"$out/cifar-1x1.log" >/dev/null
train11=$(rate "$out/train-1x1.log"); cifar11=$(rate "$out/cifar-1x1.log")

# attacks on the model just trained (one process's), test split
model="$out/train-1x2.safetensors"
attack() {   # name, threads, launcher..., -- dafar-attack options
    local name=$1 threads=$2; shift 2
    local launcher=()
    while [ "$1" != "--" ]; do launcher+=("$1"); shift; done; shift
    ${launcher[@]+"${launcher[@]}"} "$bin/dafar-attack" "${data[@]}" --model "$model" --threads "$threads" --quiet "$@" \
        --output "$out/$name.safetensors" | sed -n 's/.*, \([0-9.]*\) adversarial examples\/s.*/\1/p'
}
pgd=(--attack pgd --steps 40 --count "$pgd_count" --batch-size 100)
cw=(--attack cw2 --steps 100 --binary-steps 1 --count "$cw_count" --batch-size 50)
pgd1=$(attack pgd-1x2 2 -- "${pgd[@]}"); pgd2=$(attack pgd-2x1 1 "${mpi[@]}" -- "${pgd[@]}")
cw1=$(attack cw-1x2 2 -- "${cw[@]}"); cw2=$(attack cw-2x1 1 "${mpi[@]}" -- "${cw[@]}")
# the all-reduce alone (after a barrier, so no waiting for a slower rank): the MNIST and CIFAR-10
# networks' gradient buffers (parameters + one presence slot per tensor + 5 statistics) as Floats
# (--gradient-group-size 0), and the MNIST buffer's bytes as the exact groups send them (one Int64
# per value: as many bytes as twice the Floats)
pure_mnist=$("${mpi[@]}" "$bin/dafar-mpi-check" --time-all-reduce 377158)
pure_mnist_exact=$("${mpi[@]}" "$bin/dafar-mpi-check" --time-all-reduce 754316)
pure_cifar=$("${mpi[@]}" "$bin/dafar-mpi-check" --time-all-reduce 2412784)
pure_mnist_tcp=$("${mpi[@]}" --mca btl tcp,self "$bin/dafar-mpi-check" --time-all-reduce 377158)
echo "load after: $(uptime)"

printf '\n%-34s %14s %14s %10s %8s\n' "workload (images/s)" "1 rank x 2 thr" "2 ranks x 1 thr" "efficiency" "target"
row() { printf '%-34s %14s %14s %10s %8s\n' "$1" "$2" "$3" "$(awk -v a="$2" -v b="$3" 'BEGIN{printf "%.3f", b / a}')" "$4"; }
row "joint training (MNIST-5k, batch 64)" "$train1" "$train2" ">= 0.90"
row "PGD-40 (L-inf, $pgd_count images)" "$pgd1" "$pgd2" ">= 0.95"
row "CW-L2 (1 x 100 steps, $cw_count images)" "$cw1" "$cw2" ">= 0.95"
echo "one rank x 1 thread: MNIST joint training $train11 images/s, CIFAR-10 network $cifar11 images/s (synthetic images, batch 64)"
echo "gradient exchange (exact groups: max + Int64 all-reduce) on 2 ranks: $allreduce_ms ms per step, $allreduce_share % of the training time (last epoch)"
echo "  (measured inside the step: it includes waiting for the slower rank)"
echo "pure $pure_mnist (shared memory)"
echo "pure $pure_mnist_exact (shared memory; the bytes of the exact groups' Int64 buffer)"
echo "pure $pure_mnist_tcp (TCP over loopback)"
echo "pure $pure_cifar (shared memory; the CIFAR-10 network's buffer)"
echo "logs and files: $out/"
