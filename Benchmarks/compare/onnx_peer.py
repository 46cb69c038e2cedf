#!/usr/bin/env python3
"""The inference figures of `dafar-bench` in ONNX Runtime, with the same JSON keys.

compare.py's network, built with the same seed (so the same weights, images and
detector threshold), as its `Inspection` module (classify + reconstruct + score,
what `inference_images_per_s_batch128` and `_batch1` time on both sides) is
exported with torch.onnx.export (batch axis dynamic) and run by onnxruntime on
the CPUExecutionProvider with intra-op threads = --threads, one inter-op thread
and every graph optimisation (ORT_ENABLE_ALL). Before timing, the outputs are
checked against PyTorch's on the whole batch and on one image: logits and
scores within 1e-4, classes and verdicts equal, else the script exits non-zero.
Timing: compare.py's settings, warm-up, repetitions and median. With
--reuse-model, an existing --model file is run instead of exporting again
(run.sh's back-to-back pairs; the export takes about 10 s); the check above
still runs, so a file that no longer matches compare.py's network fails it.

    python onnx_peer.py --threads 2 --json     # what `make bench-compare` runs
"""
import argparse
import json
import logging
import os
import sys
import tempfile
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import torch

import compare

TOLERANCE = 1e-4
OUTPUTS = ["classes", "verdicts", "logits", "scores"]


def export(model, images, path):
    """torch.onnx.export of `model` on `images` [batch, 1, 28, 28], batch axis dynamic; returns the opset.

    Exports in eval mode (the network has no dropout or batch norm: no output changes). Quiet: torch's
    progress lines, its "torchvision is not installed" notes and its own deprecation warnings would
    otherwise fill the terminal (and the progress lines stdout, which holds the JSON).
    """
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        program = torch.onnx.export(model.eval(), (images,), path, input_names=["images"], output_names=OUTPUTS,
                                    dynamic_shapes={"x": {0: torch.export.Dim("batch")}}, external_data=False,
                                    verbose=False)
    return program.model_proto.opset_import[0].version


def opset_of(path):
    """The opset of an exported file, as export() reports it (the first opset import)."""
    return onnx.load(path, load_external_data=False).opset_import[0].version


def session(path, threads):
    """An InferenceSession on the CPUExecutionProvider: `threads` intra-op threads, 1 inter-op, ORT_ENABLE_ALL."""
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def check(model, runtime, images):
    """Largest |ONNX Runtime - PyTorch| of the logits and of the scores, over the whole batch and one image.

    Exits with a message when either is over TOLERANCE or a class or verdict differs.
    """
    worst = {"logits": 0.0, "scores": 0.0}
    for count in (images.shape[0], 1):
        x = images[:count]
        with torch.no_grad():
            expected = [t.numpy() for t in model(x)]
        for name, want, got in zip(OUTPUTS, expected, runtime.run(OUTPUTS, {"images": x.numpy()})):
            if got.shape != want.shape:
                sys.exit(f"onnx_peer.py: ONNX Runtime's {name} at batch {count} has shape {got.shape}, "
                         f"PyTorch's {want.shape}")
            if name in worst:
                worst[name] = max(worst[name], float(np.abs(got - want).max()))
            elif not np.array_equal(got, want):
                sys.exit(f"onnx_peer.py: ONNX Runtime's {name} differ from PyTorch's at batch {count} "
                         f"({int((got != want).sum())} of {count})")
    print(f"max |ONNX Runtime - PyTorch|: logits {worst['logits']:.3g}, scores {worst['scores']:.3g} "
          f"(tolerance {TOLERANCE:g}); classes and verdicts equal", file=sys.stderr)
    if max(worst.values()) > TOLERANCE:
        sys.exit(f"onnx_peer.py: ONNX Runtime's outputs differ from PyTorch's by more than {TOLERANCE:g}")
    return worst


def run(settings, runtime, images, progress, only=None):
    """The two inference figures (or the one named `only`), timed as compare.run times them."""
    s, n = settings, settings.batch_size

    def inspect(count):
        classes, verdicts = runtime.run(["classes", "verdicts"], {"images": images[:count]})
        return classes.tolist(), verdicts.tolist()

    def rate(key, label, count, calls, warmup):
        progress(label)

        def repetition():
            for _ in range(calls):
                inspect(count)
        return compare.figure(key, label, "images/s", compare.rates(warmup, s.repetitions, count * calls, repetition))

    figures = [("inference_images_per_s_batch128", f"inference, batch {n} (classify+reconstruct+score)", n,
                s.inference_calls, s.warmup),
               ("inference_images_per_s_batch1", "inference, batch 1", 1, s.single_image_calls, s.warmup * 5)]
    return [rate(*f) for f in figures if only in (None, f[0])]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="intra-op threads (default: all cores)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--quick", action="store_true", help="a tiny workload that only checks that everything runs")
    parser.add_argument("--model", help="where to write the exported .onnx file (default: a temporary folder)")
    parser.add_argument("--only", choices=["inference_images_per_s_batch128", "inference_images_per_s_batch1"],
                        help="measure this figure only (run.sh's back-to-back pairs)")
    parser.add_argument("--reuse-model", action="store_true",
                        help="run the --model file when it exists instead of exporting again (outputs still checked)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = compare.Settings(args.quick)
    work = compare.Workloads(settings.batch_size)
    with tempfile.TemporaryDirectory() as folder:
        path = args.model or os.path.join(folder, "inspect.onnx")
        reused = args.reuse_model and args.model is not None and os.path.exists(path)
        opset = opset_of(path) if reused else export(work.inspection, work.images, path)
        runtime = session(path, args.threads)
    difference = check(work.inspection, runtime, work.images)
    figures = run(settings, runtime, work.images.numpy(),
                  lambda label: None if args.json else print(f"measuring {label}...", file=sys.stderr), args.only)
    machine = {**compare.machine(args.threads, args.quick), "framework": f"ONNX Runtime {ort.__version__}",
               "blas": f"CPUExecutionProvider (MLAS), ORT_ENABLE_ALL, intra-op threads {args.threads}, inter-op 1",
               "model": f"torch.onnx.export, torch {torch.__version__}, opset {opset}, batch axis dynamic"
                        + (f" (reused {path})" if reused else "")}
    if args.json:
        report = {f["key"]: f["median"] for f in figures}
        report["details"] = {f["key"]: {k: f[k] for k in ("median", "min", "max", "unit", "repetitions", "label")}
                             for f in figures}
        report["max_abs_diff"] = {**difference, "tolerance": TOLERANCE}
        report["machine"] = machine
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(", ".join(f"{k}: {v}" for k, v in sorted(machine.items())))
        for f in figures:
            print(f"{f['key']:34}{f['median']:11.4g}{f['min']:11.4g}{f['max']:11.4g}  {f['unit']}  {f['label']}")


if __name__ == "__main__":
    main()
