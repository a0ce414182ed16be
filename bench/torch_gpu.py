#!/usr/bin/env python3
"""PyTorch CUDA reference timings for `npm run bench:gpu` (benchmark only; never a runtime dependency).

Same tasks and shapes as bench/gpuTasks.ts: MLP 784-256-256-10 and the bench CNN at batch 128, float32 with TF32 off;
forward, SGD step, exact GC of the batch (k = 10 VJPs, batched with is_grads_batched) and SGD step + 0.01·GC (double
backprop). Each timing ends with torch.cuda.synchronize(). Prints one JSON object {task: median_ms} on the last line;
exits 3 when CUDA is not available.
Usage: python3 bench/torch_gpu.py [--reps N]"""
import json, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

if not torch.cuda.is_available():
    print("torch_gpu.py: CUDA is not available", file=sys.stderr)
    sys.exit(3)
reps = int(sys.argv[sys.argv.index("--reps") + 1]) if "--reps" in sys.argv else 20
dev = torch.device("cuda")
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.manual_seed(0)

def median_ms(fn, n, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ts.append((time.perf_counter() - t) * 1000)
    ts.sort()
    return ts[len(ts) // 2]

def mlp():
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))

def cnn():  # defaultCnnSpec(): NHWC in gcx, NCHW here (same arithmetic)
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * 7 * 7, 10))

def gc_of(model, x, create_graph=False):
    x = x.detach().requires_grad_(True)
    y = model(x)
    k = y.shape[1]
    eye = torch.eye(k, device=dev).unsqueeze(1).expand(k, *y.shape)
    (g,) = torch.autograd.grad(y, x, eye, is_grads_batched=True, create_graph=create_graph)
    return g.pow(2).sum() / x.shape[0]

def tasks(name, model, x, labels):
    model = model.to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    out = {}
    with torch.no_grad():
        out[f"{name} forward"] = median_ms(lambda: model(x), reps)
    def step(penalty):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), labels)
        if penalty:
            loss = loss + 0.01 * gc_of(model, x, create_graph=True)
        loss.backward()
        opt.step()
    out[f"{name} SGD step"] = median_ms(lambda: step(False), reps)
    out[f"{name} exact GC of the batch"] = median_ms(lambda: gc_of(model, x), reps)
    out[f"{name} SGD step + GC penalty"] = median_ms(lambda: step(True), max(5, reps // 2))
    return out

res = {}
res.update(tasks("MLP", mlp(), torch.rand(128, 784, device=dev), torch.randint(0, 10, (128,), device=dev)))
res.update(tasks("CNN", cnn(), torch.rand(128, 1, 28, 28, device=dev), torch.randint(0, 10, (128,), device=dev)))
print(json.dumps(res))
