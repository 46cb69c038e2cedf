#!/usr/bin/env python3
"""The workloads of `dafar-bench`, in PyTorch, with the same JSON keys.

Same network (the MNIST network of Table 1 with its mirror decoder and the
784-256-128-64-128-256-784 detector), batch 128, float32, seeded synthetic
images uniform in [0, 1] with labels i mod 10, the same thread count, the same
warm-up / repetition scheme and the same attack settings as
Sources/Benchmarking/ (see BenchmarkSuite.swift and ModelWorkloads.swift).

    python compare.py --threads 2 --json      # what `make bench-compare` runs
    python compare.py --threads 2 --json --only pgd40_images_per_s   # one figure (run.sh's back-to-back pairs)
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Settings:
    """Mirrors BenchmarkSuite.Settings."""

    def __init__(self, quick=False):
        self.batch_size, self.sgemm_size, self.warmup, self.repetitions = 128, 1024, 2, 5
        self.joint_steps, self.detector_steps, self.inference_calls, self.single_image_calls = 3, 20, 5, 200
        self.fgsm_calls, self.pgd_steps, self.cw_iterations = 3, 40, 100
        self.memory_run_images, self.memory_run_epochs = 5000, 1
        if quick:
            self.batch_size, self.sgemm_size, self.warmup, self.repetitions = 8, 64, 0, 1
            self.joint_steps, self.detector_steps, self.inference_calls, self.single_image_calls = 1, 1, 1, 2
            self.fgsm_calls, self.pgd_steps, self.cw_iterations, self.memory_run_images = 1, 2, 2, 32


def figure(key, label, unit, samples):
    return {"key": key, "label": label, "unit": unit, "median": statistics.median(samples),
            "min": min(samples), "max": max(samples), "repetitions": len(samples)}


def repeated(warmup, repetitions, body):
    for _ in range(warmup):
        body()
    times = []
    for _ in range(repetitions):
        start = time.perf_counter()
        body()
        times.append(time.perf_counter() - start)
    return times


def rates(warmup, repetitions, work, body):
    return [work / max(t, 1e-12) for t in repeated(warmup, repetitions, body)]


# ---------------------------------------------------------------- the network

def features():
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3), nn.ReLU(), nn.Conv2d(64, 64, 3), nn.ReLU(), nn.MaxPool2d(2))


def classifier():
    return nn.Sequential(nn.Flatten(), nn.Linear(1024, 200), nn.ReLU(), nn.Linear(200, 200), nn.ReLU(), nn.Linear(200, 10))


def decoder():
    """makeMirrorDecoder for the MNIST features: pools become nearest upsampling, convolutions transposed ones."""
    return nn.Sequential(nn.Upsample(size=(8, 8), mode="nearest"), nn.ConvTranspose2d(64, 64, 3), nn.ReLU(),
                         nn.ConvTranspose2d(64, 32, 3), nn.ReLU(), nn.Upsample(size=(24, 24), mode="nearest"),
                         nn.ConvTranspose2d(32, 32, 3), nn.ReLU(), nn.ConvTranspose2d(32, 1, 3), nn.Sigmoid())


def detector():
    sizes = [784, 256, 128, 64, 128, 256, 784]
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class Joint(nn.Module):
    def __init__(self):
        super().__init__()
        self.features, self.classifier, self.decoder = features(), classifier(), decoder()

    def forward(self, x):
        h = self.features(x)
        return self.classifier(h), self.decoder(h)

    def logits(self, x):
        return self.classifier(self.features(x))


class Inspection(nn.Module):
    """DAFARModel.inspect as one module: classify + reconstruct + score of images [batch, 1, 28, 28].

    Returns classes [batch] (arg-max of the logits), verdicts [batch] (score > threshold), and the
    logits [batch, 10] and scores [batch] they come from. onnx_peer.py exports this module.
    """

    def __init__(self, network, detector, threshold):
        super().__init__()
        self.network, self.detector, self.threshold = network, detector, threshold

    def forward(self, x):
        h = self.network.features(x)
        logits = self.network.classifier(h)
        delta = (x - self.network.decoder(h)).flatten(1)
        scores = l2_per_sample(delta - self.detector(delta))
        return logits.argmax(dim=1), scores > self.threshold, logits, scores


def synthetic(count, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(count, 1, 28, 28, generator=g), torch.arange(count) % 10


def l2_per_sample(d):
    return d.flatten(1).norm(dim=1)


class Workloads:
    """Mirrors ModelWorkloads."""

    def __init__(self, batch_size, seed=0):
        torch.manual_seed(seed)
        self.network, self.detector = Joint(), detector()
        self.images, self.labels = synthetic(batch_size, seed + 2)
        self.joint_optimizer = torch.optim.Adam(self.network.parameters(), lr=1e-3)
        self.detector_optimizer = torch.optim.Adam(self.detector.parameters(), lr=1e-3)
        with torch.no_grad():
            self.residuals = self.images - self.network.decoder(self.network.features(self.images))
            scores = l2_per_sample(self.residuals.flatten(1) - self.detector(self.residuals.flatten(1)))
            self.threshold = (scores.mean() + 3 * scores.std()).item()
        self.inspection = Inspection(self.network, self.detector, self.threshold)

    def joint_step(self):
        logits, reconstruction = self.network(self.images)
        loss = F.cross_entropy(logits, self.labels) + 1.0 * l2_per_sample(reconstruction - self.images).mean()
        self.joint_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.joint_optimizer.step()

    def detector_step(self, residuals=None):
        r = (self.residuals if residuals is None else residuals).flatten(1)
        loss = l2_per_sample(r - self.detector(r)).mean()
        self.detector_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.detector_optimizer.step()

    def inspect(self, count):
        """Classify + reconstruct + score: DAFARModel.inspect."""
        with torch.no_grad():
            classes, verdicts, _, _ = self.inspection(self.images[:count])
            return classes.tolist(), verdicts.tolist()

    def gradient(self, x, labels):
        x = x.detach().requires_grad_(True)
        loss = F.cross_entropy(self.network.logits(x), labels, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
        return grad

    def fgsm(self, epsilon=0.3):
        with torch.no_grad():
            self.network.logits(self.images[:1])  # the class count, as DifferentiableClassifier.classCount
        grad = self.gradient(self.images, self.labels)
        return (self.images + epsilon * grad.sign()).clamp(0, 1)

    def pgd(self, steps, epsilon=0.3, step_size=0.01, seed=3):
        with torch.no_grad():
            self.network.logits(self.images[:1])
        g = torch.Generator().manual_seed(seed)
        x0 = self.images
        x = (x0 + (torch.rand(x0.shape, generator=g) * 2 - 1) * epsilon).clamp(0, 1)
        for _ in range(steps):
            grad = self.gradient(x, self.labels)
            x = (x0 + (x + step_size * grad.sign() - x0).clamp(-epsilon, epsilon)).clamp(0, 1)
        return x

    def carlini_wagner(self, iterations, learning_rate=5e-3, constant=1e-2, confidence=0.0):
        """One binary-search step of CW-L2 (tanh box, logit margin with the true class masked by -10000),
        Adam in TensorFlow's form, no early abort, best-L2 bookkeeping each iteration."""
        x0, labels = self.images, self.labels
        with torch.no_grad():
            classes = self.network.logits(x0[:1]).shape[1]
        w = torch.atanh((2 * x0.clamp(0, 1) - 1) * 0.999999).detach()
        original = (torch.tanh(w) + 1) / 2
        m, v = torch.zeros_like(w), torch.zeros_like(w)
        one_hot = F.one_hot(labels, classes).float()
        best_l2 = torch.full((x0.shape[0],), 1e10)
        best = x0.clone()
        for t in range(1, iterations + 1):
            w.requires_grad_(True)
            adversarial = (torch.tanh(w) + 1) / 2
            distance = (adversarial - original).pow(2).flatten(1).sum(1)
            z = self.network.logits(adversarial)
            other = (z * (1 - one_hot) - one_hot * 10000).max(dim=1).values
            real = (z * one_hot).sum(1)
            loss = (distance + constant * (real - other + confidence).clamp(min=0)).sum()
            (grad,) = torch.autograd.grad(loss, w)
            with torch.no_grad():
                m = 0.9 * m + 0.1 * grad
                v = 0.999 * v + 0.001 * grad * grad
                rate = learning_rate * (1 - 0.999 ** t) ** 0.5 / (1 - 0.9 ** t)
                w = w - rate * m / (v.sqrt() + 1e-8)
                success = (z + confidence * one_hot).argmax(1) != labels
                improved = success & (distance < best_l2)
                best_l2 = torch.where(improved, distance, best_l2)
                best[improved] = adversarial[improved]
        return best


# ---------------------------------------------------------------- kernel figures

def sgemm_gflops(size, warmup, repetitions):
    a, b = torch.full((size, size), 0.5), torch.full((size, size), 0.25)
    calls = max(1, (1 << 31) // max(1, 2 * size ** 3))

    def body():
        for _ in range(calls):
            torch.mm(a, b)
    return [calls * 2 * size ** 3 / t / 1e9 for t in repeated(warmup, repetitions, body)]


def convolution_cases(net, batch_size):
    """Each Conv2d of the features with its input at the batch size, as KernelFigures.convolutionCases."""
    g = torch.Generator().manual_seed(1)
    x = torch.zeros(batch_size, 1, 28, 28)
    cases = []
    with torch.no_grad():
        for layer in net.features:
            if isinstance(layer, nn.Conv2d):
                inp = torch.rand(x.shape, generator=g)
                out_shape = layer(x).shape
                dy = torch.randn(out_shape, generator=g)
                o, c, kh, kw = layer.weight.shape
                length, patch = out_shape[0] * out_shape[2] * out_shape[3], c * kh * kw
                cases.append({"input": inp, "weight": layer.weight.detach(), "bias": layer.bias.detach(), "dy": dy,
                              "forward": [(o, length, patch, False, False)],
                              "backward": [(o, patch, length, False, True), (patch, length, o, True, False)]})
            x = layer(x)
    return cases


def convolution_efficiency(cases, backward, warmup, repetitions):
    shapes = [s for c in cases for s in (c["backward"] if backward else c["forward"])]
    operands = []
    for (m, n, k, ta, tb) in shapes:
        a = torch.full((k, m) if ta else (m, k), 0.5)
        b = torch.full((n, k) if tb else (k, n), 0.25)
        operands.append((a.t() if ta else a, b.t() if tb else b))

    def gemm_time():
        start = time.perf_counter()
        for a, b in operands:
            torch.mm(a, b)
        return time.perf_counter() - start

    def convolution_time():
        start = time.perf_counter()
        with torch.no_grad():
            for c in cases:
                if backward:
                    torch.ops.aten.convolution_backward(c["dy"], c["input"], c["weight"], [c["weight"].shape[0]],
                                                        [1, 1], [0, 0], [1, 1], False, [0, 0], 1, [True, True, True])
                else:
                    F.conv2d(c["input"], c["weight"], c["bias"])
        return time.perf_counter() - start

    for _ in range(warmup):
        gemm_time(), convolution_time()
    samples = []
    for _ in range(repetitions):
        gemm = convolution = 0.0
        for _ in range(3):
            gemm += gemm_time()
            convolution += convolution_time()
        samples.append(gemm / convolution)
    return samples


# ---------------------------------------------------------------- memory

def peak_resident_mib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def training_run(settings, seed=0):
    """ModelWorkloads.trainingRun: epochs of joint training, residuals, epochs of detector training."""
    torch.manual_seed(seed)
    images, labels = synthetic(settings.memory_run_images, seed + 4)
    work = Workloads(settings.batch_size, seed)
    g = torch.Generator().manual_seed(seed)
    n, b = images.shape[0], settings.batch_size
    for _ in range(settings.memory_run_epochs):
        order = torch.randperm(n, generator=g)
        for start in range(0, n, b):
            index = order[start:start + b]
            work.images, work.labels = images[index], labels[index]
            work.joint_step()
    with torch.no_grad():
        residuals = torch.cat([images[s:s + 256] - work.network.decoder(work.network.features(images[s:s + 256]))
                               for s in range(0, n, 256)])
    for _ in range(settings.memory_run_epochs):
        order = torch.randperm(n, generator=g)
        for start in range(0, n, b):
            work.detector_step(residuals[order[start:start + b]])


# ---------------------------------------------------------------- the suite

# the figures run() produces, in its order (--only takes one of them)
KEYS = ["sgemm_gflops", "conv_forward_efficiency", "conv_backward_efficiency", "joint_train_images_per_s",
        "detector_train_images_per_s", "inference_images_per_s_batch128", "inference_images_per_s_batch1",
        "fgsm_images_per_s", "pgd40_images_per_s", "cw_images_per_s"]


def run(settings, threads, progress, only=None):
    """Every figure in KEYS, or only the one named `only` (then the network is built only when that figure uses it;
    it starts from the seeded weights, where the full run's later figures see the weights after the training steps)."""
    s = settings
    figures = []

    def wanted(key):
        return only in (None, key)

    def rate(key, label, images, calls, body, warmup=None):
        if not wanted(key):
            return
        progress(label)

        def repetition():
            for _ in range(calls):
                body()
        samples = rates(s.warmup if warmup is None else warmup, s.repetitions, images * calls, repetition)
        figures.append(figure(key, label, "images/s", samples))

    if wanted("sgemm_gflops"):
        progress("sgemm")
        figures.append(figure("sgemm_gflops", f"torch.mm {s.sgemm_size}^3", "GFLOP/s",
                              sgemm_gflops(s.sgemm_size, s.warmup, s.repetitions)))
    if only == "sgemm_gflops":
        return figures
    work = Workloads(s.batch_size)
    if only is None or only.startswith("conv_"):
        cases = convolution_cases(work.network, s.batch_size)
        for backward in (False, True):
            name = "backward" if backward else "forward"
            if not wanted(f"conv_{name}_efficiency"):
                continue
            progress(f"conv {name}")
            figures.append(figure(f"conv_{name}_efficiency", f"conv {name} / torch.mm on its GEMM shapes", "",
                                  convolution_efficiency(cases, backward, s.warmup, s.repetitions)))
    n = s.batch_size
    rate("joint_train_images_per_s", "joint training step (E+F+D, Eq. 5, Adam)", n, s.joint_steps, work.joint_step)
    rate("detector_train_images_per_s", "detector training step (C, Eq. 6, Adam)", n, s.detector_steps,
         work.detector_step)
    rate("inference_images_per_s_batch128", f"inference, batch {n} (classify+reconstruct+score)", n, s.inference_calls,
         lambda: work.inspect(n))
    rate("inference_images_per_s_batch1", "inference, batch 1", 1, s.single_image_calls, lambda: work.inspect(1),
         warmup=s.warmup * 5)
    rate("fgsm_images_per_s", "FGSM (L-inf, eps 0.3)", n, s.fgsm_calls, work.fgsm)
    rate("pgd40_images_per_s", f"PGD-{s.pgd_steps} (L-inf, eps 0.3, step 0.01)", n, 1, lambda: work.pgd(s.pgd_steps),
         warmup=min(1, s.warmup))
    rate("cw_images_per_s", f"CW-L2 ({s.cw_iterations} iterations, 1 search step)", n, 1,
         lambda: work.carlini_wagner(s.cw_iterations), warmup=min(1, s.warmup))
    return figures


def machine(threads, quick):
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": str(os.cpu_count()), "threads": str(threads), "framework": f"PyTorch {torch.__version__}",
            "blas": f"{torch.backends.cpu.get_cpu_capability()}, mkldnn={torch.backends.mkldnn.is_available()}",
            "python": platform.python_version(), "workload": "quick" if quick else "full"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="intra-op threads (default: all cores)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--quick", action="store_true", help="a tiny workload that only checks that everything runs")
    parser.add_argument("--only", choices=KEYS, metavar="KEY",
                        help="measure this figure only, without the peak-RSS run (run.sh's back-to-back pairs); "
                             "one of: " + ", ".join(KEYS))
    parser.add_argument("--training-memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = Settings(args.quick)
    if args.training_memory_child:
        training_run(settings)
        print(f"peak_rss_mib={peak_resident_mib()}")
        return
    if args.only is None:
        child = subprocess.run([sys.executable, os.path.abspath(__file__), "--training-memory-child", "--threads",
                                str(args.threads)] + (["--quick"] if args.quick else []),
                               check=True, capture_output=True, text=True)
        peak = float(child.stdout.strip().splitlines()[-1].split("=", 1)[1])
    figures = run(settings, args.threads, lambda label: None if args.json else print(f"measuring {label}...",
                                                                                      file=sys.stderr), args.only)
    if args.only is None:
        figures.append(figure("peak_rss_mib", "peak RSS of a training run (child process, VmHWM)", "MiB", [peak]))
    if args.json:
        report = {f["key"]: f["median"] for f in figures}
        report["details"] = {f["key"]: {k: f[k] for k in ("median", "min", "max", "unit", "repetitions", "label")}
                             for f in figures}
        report["machine"] = machine(args.threads, args.quick)
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(", ".join(f"{k}: {v}" for k, v in sorted(machine(args.threads, args.quick).items())))
        for f in figures:
            print(f"{f['key']:34}{f['median']:11.4g}{f['min']:11.4g}{f['max']:11.4g}  {f['unit'] or 'ratio'}  {f['label']}")


if __name__ == "__main__":
    main()
