#!/usr/bin/env python3
"""Manual cross-check for large ONNX models (not run in CI; needs PyTorch, a developer tool only).

Builds the CIFAR-variant ResNet-18 (3x3 stem conv, no max-pool, 4 stages of 2 BasicBlocks, widths 64-128-256-512,
option-B shortcuts, torchvision module names) for 1-channel 28x28 input, random weights (fixed seed) with
non-trivial BatchNorm statistics, eval mode; exports it to ONNX (opset 13) and prints its float64 GC over the
first N MNIST test images as JSON, so that it can be compared with

    gcx measure --model <out.onnx> ...     (on the same first N MNIST test images, pixel/255)

Usage: /usr/bin/python3 scripts/resnet18_check.py OUT.onnx [--n 16] [--mnist PATH] [--seed 0] [--threads T]
"""

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_torch_fixtures import (CifarResNet, gc_exact, load_mnist_test, non_trivial_bn,  # noqa: E402
                                 preprocess)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="path of the ONNX file to write")
    ap.add_argument("--n", type=int, default=16, help="number of MNIST test images (default 16)")
    ap.add_argument("--mnist", default=None, help="t10k-images IDX file (raw or .gz)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    ap.add_argument("--chunk", type=int, default=16, help="images per Jacobian batch")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    t0 = time.time()
    torch.manual_seed(args.seed)
    model = non_trivial_bn(CifarResNet([2, 2, 2, 2], [64, 128, 256, 512]), args.seed + 100, (1, 28, 28), passes=5)
    model.eval()
    images = load_mnist_test(args.n, args.mnist)
    torch.onnx.export(model, preprocess(images[:1], torch.float32, "NCHW"), args.out, opset_version=13,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
    t_export = time.time() - t0

    model64 = model.double().eval()
    x = preprocess(images, torch.float64, "NCHW")
    t1 = time.time()
    gc, sq = gc_exact(model64, x, chunk=args.chunk)
    t_gc = time.time() - t1
    print(json.dumps({
        "model": "cifar-resnet18 (1x28x28, widths 64-128-256-512, random weights seed %d, eval)" % args.seed,
        "onnx": os.path.abspath(args.out),
        "params": sum(p.numel() for p in model.parameters()),
        "torch": torch.__version__,
        "n": args.n,
        "gc": gc,
        "per_example_sq_norms": [float(v) for v in sq.tolist()],
        "seconds": {"build_export": round(t_export, 2), "gc_float64": round(t_gc, 2)},
        "threads": torch.get_num_threads(),
    }, indent=1))


if __name__ == "__main__":
    sys.exit(main())
