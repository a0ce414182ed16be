#!/usr/bin/env python3
"""PyTorch reference timings for `npm run bench` (benchmark only; never a runtime dependency).

Same tasks and shapes as bench/bench.ts; prints one JSON object {task: median_ms}. Run with
OMP_WAIT_POLICY=PASSIVE and Debian's libopenblas0-pthread installed (reference BLAS is ~25x slower)."""
import json, os, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(2)
torch.manual_seed(0)

def median_ms(fn, reps, warmup=2):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1000)
    ts.sort()
    return ts[len(ts) // 2]

def mlp(sizes):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)

def cnn():
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * 7 * 7, 10))

def gc_of(model, x, create_graph=False):
    x = x.detach().requires_grad_(True)
    y = model(x)
    k = y.shape[1]
    eye = torch.eye(k).unsqueeze(1).expand(k, *y.shape)  # k one-hot cotangents, batched (vmap)
    (g,) = torch.autograd.grad(y, x, eye, is_grads_batched=True, create_graph=create_graph)
    return g.pow(2).sum() / x.shape[0]

def make_step(model, x, labels):
    """One SGD step in training mode (extra: None, "gc" for the GC penalty, "flat" for the flatness penalty)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def step(extra=None):
        model.train()
        opt.zero_grad()
        loss = F.cross_entropy(model(x), labels)
        if extra == "gc":
            loss = loss + 0.01 * gc_of(model, x, create_graph=True)
        elif extra == "flat":
            gs = torch.autograd.grad(loss, list(model.parameters()), create_graph=True)
            loss = loss + 0.01 * sum(g.pow(2).sum() for g in gs)
        loss.backward()
        opt.step()
        model.eval()
    return step

def tasks(name, model, x, labels, reps, only=None):
    """Forward and exact GC in inference mode (model.eval(), BatchNorm's running statistics), steps in training mode,
    as gcx measure and gcx train run them."""
    out = {}
    model.eval()
    with torch.no_grad():
        out[f"{name} forward"] = median_ms(lambda: model(x), reps)
    step = make_step(model, x, labels)
    want = lambda t: only is None or t in only
    if want("SGD step"):
        out[f"{name} SGD step"] = median_ms(step, reps)
    if want("exact GC of the batch"):
        out[f"{name} exact GC of the batch"] = median_ms(lambda: gc_of(model, x), reps)
    if want("SGD step + GC penalty"):
        out[f"{name} SGD step + GC penalty"] = median_ms(lambda: step("gc"), max(3, reps // 2))
    if want("SGD step + flatness penalty"):
        out[f"{name} SGD step + flatness penalty"] = median_ms(lambda: step("flat"), max(3, reps // 2))
    return out

if __name__ == "__main__":  # importable: bench/torch_profile.py reuses the models above
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    res = {}
    if which in ("all", "mlp"):
        res.update(tasks("MLP", mlp([784, 256, 256, 10]), torch.rand(128, 784), torch.randint(0, 10, (128,)), 21))
    if which in ("all", "cnn"):
        res.update(tasks("CNN", cnn(), torch.rand(128, 1, 28, 28), torch.randint(0, 10, (128,)), 7))
    if which in ("all", "mlp2d"):
        m = mlp([2, 64, 64, 2])
        x, l = torch.randn(256, 2), torch.randint(0, 2, (256,))
        r = tasks("MLP2D", m, x, l, 21)
        res["MLP2D exact GC of the batch"] = r["MLP2D exact GC of the batch"]
        res["MLP2D SGD step"] = r["MLP2D SGD step"]
    if which in ("all", "resnet"):
        # resnet:8:w16 of the zoo (src/models/zoo.ts), the same torchvision-named CIFAR ResNet as the fixtures use.
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
        from make_torch_fixtures import CifarResNet
        m = CifarResNet([1, 1, 1], [16, 32, 64], in_ch=1, num_classes=10)
        res.update(tasks("ResNet-8", m, torch.rand(128, 1, 28, 28), torch.randint(0, 10, (128,)), 5,
                         only=("SGD step", "exact GC of the batch", "SGD step + GC penalty")))
    if which in ("all", "mnist"):
        m = mlp([784, 256, 256, 10])
        x = torch.rand(10000, 784)
        def full():
            for i in range(0, 10000, 256):
                gc_of(m, x[i:i + 256])
        res["MNIST test set exact GC (10k), s"] = median_ms(full, 3, 1) / 1000
    print(json.dumps(res))
