#!/usr/bin/env python3
"""OpenBLAS (through PyTorch) GFLOP/s on the products of bench/gemmBound.ts: reads its shape list (JSON) on stdin,
prints {name: [GFLOP/s with 1 thread by CPU time, with 2 threads by wall time]} (median of `reps` batches of
>= ~15 ms; CPU time = this process's, so time spent descheduled on a shared machine is not counted).
GEMMs run as torch.mm on the same transposed views as our engine's; convolutions as F.conv2d and its input and
weight gradients (torch.nn.grad), NCHW as PyTorch's own models run them. Run with OMP_WAIT_POLICY=PASSIVE."""
import json, sys, time
import torch
import torch.nn.functional as F
from torch.nn.grad import conv2d_input, conv2d_weight

reps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
shapes = json.load(sys.stdin)


def flops(s):
    if s["kind"] == "gemm":
        return 2 * s["M"] * s["K"] * s["N"]
    p = 1 if s["k"] == 3 else 0
    out = (s["h"] + 2 * p - s["k"]) // s["s"] + 1
    return 2 * s["n"] * out * out * s["k"] * s["k"] * s["c"] * s["cout"]


def call(s):
    if s["kind"] == "gemm":
        M, K, N = s["M"], s["K"], s["N"]
        a = torch.rand(K, M).t() if s["tA"] else torch.rand(M, K)
        b = torch.rand(N, K).t() if s["tB"] else torch.rand(K, N)
        return lambda: torch.mm(a, b)
    p = 1 if s["k"] == 3 else 0
    x = torch.rand(s["n"], s["c"], s["h"], s["w"])
    w = torch.rand(s["cout"], s["c"], s["k"], s["k"])
    y = F.conv2d(x, w, stride=s["s"], padding=p)
    dy = torch.rand_like(y)
    if s["pass"] == "forward":
        return lambda: F.conv2d(x, w, stride=s["s"], padding=p)
    if s["pass"] == "input":
        return lambda: conv2d_input(x.shape, w, dy, stride=s["s"], padding=p)
    return lambda: conv2d_weight(x, w.shape, dy, stride=s["s"], padding=p)


res = {}
fns = [(s, call(s)) for s in shapes]
for threads in (1, 2):
    torch.set_num_threads(threads)
    for s, fn in fns:
        f = flops(s)
        n = max(1, round(3e8 / f))
        fn()
        ts = []
        for _ in range(reps):
            clock = time.process_time if threads == 1 else time.perf_counter
            t = clock()
            for _ in range(n):
                fn()
            ts.append((clock() - t) / n)
        ts.sort()
        res.setdefault(s["name"], []).append(f / ts[len(ts) // 2] / 1e9)
print(json.dumps(res))
