#!/usr/bin/env python3
"""An independent JSMA in PyTorch, to cross-check `dafar-attack --attack jsma`.

It loads a model written by `dafar-train` (PyTorch state_dict names) and the
clean images and labels of an adversarial set written by `dafar-attack`, then
runs the Jacobian saliency map attack the way cleverhans v3's `jsma_symbolic`
builds it: the Jacobian of the LOGITS (one backward pass per class), the full
pixel-pair table (`target_sum[p] + target_sum[q]`, out-of-domain pixels pushed
out of the admissible region by twice the largest gradient, zero diagonal),
the arg-max of `-(alpha_p + alpha_q)(beta_p + beta_q)` over the pairs with
`alpha > 0, beta < 0` (increase mode), both pixels set to
`min(1, x + theta)` and dropped from the domain, at most
`floor(features * gamma / 2)` iterations, a random target `!= label` per image.
When no pair is admissible the arg-max of an all-zero table is pair (0, 0), as
in cleverhans. Written from the paper and the reference's semantics, it shares
no code with the Swift implementation (which scans the pairs in O(d) memory).

    .venv/bin/python Benchmarks/compare/jsma_crosscheck.py \\
        --model runs/model.safetensors --set runs/jsma.safetensors [--count 1000]

Prints the success rates (misclassified; target reached), the number of
changed pixels and, for comparison, the rate stored in the adversarial set.
"""
import argparse
import json
import struct
import sys
import time

import torch
import torch.nn as nn

DTYPES = {"F32": torch.float32, "U8": torch.uint8, "I64": torch.int64, "I32": torch.int32}


def read_safetensors(path):
    """{name: tensor} and the metadata of a safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    base = 8 + length
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        start, end = entry["data_offsets"]
        flat = torch.frombuffer(bytearray(data[base + start:base + end]), dtype=DTYPES[entry["dtype"]])
        tensors[name] = flat.reshape(entry["shape"])
    return tensors, header.get("__metadata__", {})


def mnist_target_network(state):
    """E and F of the MNIST network of Table 1 with the weights of a dafar-train model file."""
    features = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(32, 64, 3), nn.ReLU(), nn.Conv2d(64, 64, 3), nn.ReLU(), nn.MaxPool2d(2))
    classifier = nn.Sequential(nn.Flatten(), nn.Linear(1024, 200), nn.ReLU(), nn.Linear(200, 200), nn.ReLU(),
                               nn.Linear(200, 10))
    network = nn.Sequential(features, classifier)
    prefix = {"target.features.": "0.", "target.classifier.": "1."}
    weights = {}
    for name, value in state.items():
        for old, new in prefix.items():
            if name.startswith(old):
                weights[new + name[len(old):]] = value
    network.load_state_dict(weights)
    return network.eval()


def jacobian(network, x):
    """Logits [n, K] and d logits / d x as [K, n, features]."""
    x = x.detach().requires_grad_(True)
    logits = network(x)
    rows = []
    for k in range(logits.shape[1]):
        (grad,) = torch.autograd.grad(logits[:, k].sum(), x, retain_graph=k + 1 < logits.shape[1])
        rows.append(grad.flatten(1))
    return logits.detach(), torch.stack(rows)


def jsma(network, x, targets, theta, gamma):
    """cleverhans-v3-style JSMA on a batch; returns the adversarial images."""
    n = x.shape[0]
    features = x[0].numel()
    increase = theta > 0
    classes = None
    x = x.clone()
    domain = (x.flatten(1) < 1) if increase else (x.flatten(1) > 0)
    domain = domain.float()
    off_diagonal = 1 - torch.eye(features)
    for _ in range(int(features * gamma / 2)):
        logits, jac = jacobian(network, x)
        classes = logits.shape[1]
        target_one_hot = torch.nn.functional.one_hot(targets, classes).float()          # [n, K]
        reached = logits.argmax(1) == targets
        active = (~reached) & (domain.sum(1) >= 2)
        if not active.any():
            break
        grads_target = (jac * target_one_hot.t()[:, :, None]).sum(0)                    # [n, features]
        grads_other = (jac * (1 - target_one_hot).t()[:, :, None]).sum(0)
        coefficient = (2.0 if increase else -2.0) * (domain == 0).float()
        target_tmp = grads_target - coefficient * grads_target.abs().max(1, keepdim=True).values
        other_tmp = grads_other + coefficient * grads_other.abs().max(1, keepdim=True).values
        target_sum = target_tmp[:, :, None] + target_tmp[:, None, :]
        other_sum = other_tmp[:, :, None] + other_tmp[:, None, :]
        if increase:
            mask = (target_sum > 0) & (other_sum < 0)
        else:
            mask = (target_sum < 0) & (other_sum > 0)
        scores = mask.float() * (-target_sum * other_sum) * off_diagonal
        best = scores.flatten(1).argmax(1)
        p1, p2 = best % features, best // features
        change = (torch.nn.functional.one_hot(p1, features) + torch.nn.functional.one_hot(p2, features)).float()
        change = change * active.float()[:, None]
        domain = domain - change
        flat = x.flatten(1) + change * theta
        x = (flat.clamp(max=1) if increase else flat.clamp(min=0)).reshape(x.shape)
    return x


def load(path, what):
    try:
        return read_safetensors(path)
    except (OSError, ValueError, KeyError, struct.error) as error:
        sys.exit(f"error: cannot read {what} {path}: {error}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="model file written by dafar-train (MNIST architecture)")
    parser.add_argument("--set", required=True, help="adversarial set written by dafar-attack (its x and y are attacked)")
    parser.add_argument("--count", type=int, default=0, help="first N images of the set (default: all)")
    parser.add_argument("--theta", type=float, default=1.0)
    parser.add_argument("--gamma", type=float, default=0.1)
    parser.add_argument("--batch", type=int, default=50, help="images per batch (the pair table is features^2 floats each)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random targets")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    state, model_metadata = load(args.model, "model")
    if model_metadata.get("architecture") != "mnist":
        sys.exit(f"error: {args.model} is a '{model_metadata.get('architecture')}' model; this cross-check knows the MNIST network only")
    network = mnist_target_network(state)
    adversarial, set_metadata = load(args.set, "adversarial set")
    if "x" not in adversarial or "y" not in adversarial:
        sys.exit(f"error: {args.set} has no x and y tensors; is it written by dafar-attack?")
    x, y = adversarial["x"].float(), adversarial["y"].long()
    if args.count:
        x, y = x[:args.count], y[:args.count]
    targets = (y + torch.randint(1, 10, y.shape)) % 10                                  # uniform over classes != label

    start = time.perf_counter()
    misclassified = reached = 0
    changed = []
    for first in range(0, len(x), args.batch):
        xb, yb, tb = x[first:first + args.batch], y[first:first + args.batch], targets[first:first + args.batch]
        xa = jsma(network, xb, tb, args.theta, args.gamma)
        with torch.no_grad():
            predicted = network(xa).argmax(1)
        misclassified += int((predicted != yb).sum())
        reached += int((predicted == tb).sum())
        changed += ((xa - xb).flatten(1).abs() > 1e-6).sum(1).tolist()
        print(f"\r{first + len(xb)}/{len(x)} images", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    count = len(x)
    print(f"PyTorch JSMA (theta {args.theta}, gamma {args.gamma}, logit Jacobian, pair table) on {count} images, "
          f"{time.perf_counter() - start:.0f} s")
    print(f"  success (misclassified): {misclassified / count:.1%} ({misclassified}/{count})")
    print(f"  target reached:          {reached / count:.1%} ({reached}/{count})")
    print(f"  changed pixels: mean {sum(changed) / count:.1f}, max {max(changed)}")
    stored = adversarial["success"][:count].sum().item()
    print(f"dafar-attack's set ({set_metadata.get('attack_settings', '')}): success {stored / count:.1%} ({stored}/{count})")


if __name__ == "__main__":
    main()
