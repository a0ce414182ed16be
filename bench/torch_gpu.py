#!/usr/bin/env python3
"""PyTorch CUDA reference timings for `npm run bench:gpu` (benchmark only; never a runtime dependency).

Same tasks and shapes as bench/gpuTasks.ts: MLP 784-256-256-10, the bench CNN and ResNet-18 (CIFAR variant,
scripts/make_torch_fixtures.py's CifarResNet with 2-2-2-2 blocks and widths 64-128-256-512, the network of
`resnet:18` in src/models/zoo.ts) at batch 128, float32 with TF32 off; forward, SGD step, exact GC of the batch
(k = 10 VJPs, batched with is_grads_batched), SGD step + 0.01·GC (double backprop), SGD step + 0.01·‖∇_θL‖²
(flatness) and exact GC over 10k synthetic inputs (uniform [0, 1), resident on the device, chunks of 128).
BatchNorm as gcx runs it: forward and exact GC in inference mode (running statistics), steps in training mode, the
GC penalty's forward with the batch statistics detached (gcx train's detachBatchStats). Each timing ends with
torch.cuda.synchronize(). Prints one JSON object {task: median_ms, _device, _torch} on the last line; exits 3 when
CUDA is not available. `--device cpu --tiny` runs tiny shapes on the CPU (to try the script without a GPU).
Usage: python3 bench/torch_gpu.py [--reps N] [--device cpu --tiny]"""
import json, os, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from make_torch_fixtures import CifarResNet  # noqa: E402

arg = lambda name, default: sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default
dev = torch.device(arg("--device", "cuda"))
tiny = "--tiny" in sys.argv
if dev.type == "cuda" and not torch.cuda.is_available():
    print("torch_gpu.py: CUDA is not available", file=sys.stderr)
    sys.exit(3)
reps = int(arg("--reps", 20))
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.manual_seed(0)

def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()

def median_ms(fn, n, warmup=3):
    for _ in range(warmup):
        fn()
    sync()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        sync()
        ts.append((time.perf_counter() - t) * 1000)
    ts.sort()
    return ts[len(ts) // 2]

def mlp():
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))

def cnn():  # defaultCnnSpec(): NHWC in gcx, NCHW here (same arithmetic)
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * 7 * 7, 10))

DETACH = [False]  # while True, BatchNorm in training mode normalizes with detached batch statistics

def bn_forward(self, x):
    if self.training and DETACH[0]:
        m, v = x.mean((0, 2, 3)).detach(), x.var((0, 2, 3), unbiased=False).detach()
        return F.batch_norm(x, m, v, self.weight, self.bias, False, 0.0, self.eps)
    return nn.BatchNorm2d.forward(self, x)

def resnet18(width=64):
    m = CifarResNet([2, 2, 2, 2], [width, 2 * width, 4 * width, 8 * width], in_ch=3, num_classes=10)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.forward = bn_forward.__get__(mod)
    return m

def gc_sum(model, x, create_graph=False):
    x = x.detach().requires_grad_(True)
    y = model(x)
    k = y.shape[1]
    eye = torch.eye(k, device=dev).unsqueeze(1).expand(k, *y.shape)
    (g,) = torch.autograd.grad(y, x, eye, is_grads_batched=True, create_graph=create_graph)
    return g.pow(2).sum()

def tasks(name, model, x, labels, many):
    model = model.to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    out = {}
    model.eval()
    with torch.no_grad():
        out[f"{name} forward"] = median_ms(lambda: model(x), reps)
    def step(extra=None):
        model.train()
        opt.zero_grad()
        loss = F.cross_entropy(model(x), labels)
        if extra == "gc":
            DETACH[0] = True
            try:
                loss = loss + 0.01 * gc_sum(model, x, create_graph=True) / x.shape[0]
            finally:
                DETACH[0] = False
        elif extra == "flat":
            gs = torch.autograd.grad(loss, list(model.parameters()), create_graph=True)
            loss = loss + 0.01 * sum(g.pow(2).sum() for g in gs)
        loss.backward()
        opt.step()
        model.eval()
    def gc_many():
        total = torch.zeros((), device=dev)
        for i in range(0, many.shape[0], x.shape[0]):
            total = total + gc_sum(model, many[i:i + x.shape[0]]).detach()
        return total / many.shape[0]
    out[f"{name} SGD step"] = median_ms(step, reps)
    out[f"{name} exact GC of the batch"] = median_ms(lambda: gc_sum(model, x) / x.shape[0], reps)
    out[f"{name} SGD step + GC penalty"] = median_ms(lambda: step("gc"), max(5, reps // 2))
    out[f"{name} SGD step + flatness penalty"] = median_ms(lambda: step("flat"), max(5, reps // 2))
    out[f"{name} exact GC over 10k inputs"] = median_ms(gc_many, min(reps, 3), 1)
    return out

b, n = (4, 10) if tiny else (128, 10000)
lab = lambda: torch.randint(0, 10, (b,), device=dev)
res = {}
res.update(tasks("MLP", mlp(), torch.rand(b, 784, device=dev), lab(), torch.rand(n, 784, device=dev)))
res.update(tasks("CNN", cnn(), torch.rand(b, 1, 28, 28, device=dev), lab(), torch.rand(n, 1, 28, 28, device=dev)))
side, width = (16, 4) if tiny else (32, 64)
res.update(tasks("ResNet-18", resnet18(width), torch.rand(b, 3, side, side, device=dev), lab(),
                 torch.rand(n, 3, side, side, device=dev)))
res["_device"] = torch.cuda.get_device_name() if dev.type == "cuda" else "cpu"
res["_torch"] = torch.__version__
print(json.dumps(res))
