#!/usr/bin/env python3
"""PyTorch's own profile of one benchmark step, for comparison with `npm run bench:profile -- TASK`.

Usage: OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/torch_profile.py TASK [--steps N]
TASK: mlp-forward, mlp-step, mlp-gc, mlp-gcpen, mlp-flat, cnn-*, resnet-* (same models, shapes and steps as
bench/torch_bench.py). Prints the median step time without the profiler, then torch.profiler's CPU table
(self time per aten op, per step) as markdown."""
import os, sys, time
import torch
from torch.profiler import profile, ProfilerActivity

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_bench import cnn, gc_of, make_step, mlp  # noqa: E402  (also sets 2 threads and the seed)


def resnet():
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
    from make_torch_fixtures import CifarResNet
    return CifarResNet([1, 1, 1], [16, 32, 64], in_ch=1, num_classes=10)


args = sys.argv[1:]
task = next((a for a in args if not a.startswith("--")), None)
if task is None or "-" not in task:
    sys.exit("torch_profile: error: name a task, e.g. cnn-step")
name, kind = task.split("-", 1)
if name == "mlp":
    model, x = mlp([784, 256, 256, 10]), torch.rand(128, 784)
elif name == "cnn":
    model, x = cnn(), torch.rand(128, 1, 28, 28)
elif name == "resnet":
    model, x = resnet(), torch.rand(128, 1, 28, 28)
else:
    sys.exit(f"torch_profile: error: unknown model {name}")
labels = torch.randint(0, 10, (128,))
steps = int(args[args.index("--steps") + 1]) if "--steps" in args else (30 if name == "mlp" else 6)
step = make_step(model, x, labels)


def forward():
    model.eval()
    with torch.no_grad():
        model(x)


fn = {"forward": forward, "step": step, "gc": lambda: gc_of(model.eval(), x),
      "gcpen": lambda: step("gc"), "flat": lambda: step("flat")}.get(kind)
if fn is None:
    sys.exit(f"torch_profile: error: unknown task kind {kind}")
for _ in range(3):
    fn()
ts = []
for _ in range(steps):
    t = time.perf_counter()
    fn()
    ts.append((time.perf_counter() - t) * 1000)
ts.sort()
print(f"## PyTorch {torch.__version__} profile of {task} (2 threads, {torch.get_num_threads()} intra-op)\n")
print(f"step median {ts[len(ts) // 2]:.2f} ms over {steps} steps (no profiler)\n")
with profile(activities=[ProfilerActivity.CPU]) as prof:
    for _ in range(steps):
        fn()
ev = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
total = sum(e.self_cpu_time_total for e in ev)
ev.sort(key=lambda e: -e.self_cpu_time_total)
print(f"### torch.profiler: self CPU time per aten op ({total / 1000 / steps:.2f} ms/step profiled)\n")
print("| op | calls/step | self ms/step | % |")
print("|---|---:|---:|---:|")
for e in ev[:18]:
    print(f"| {e.key} | {e.count / steps:g} | {e.self_cpu_time_total / 1000 / steps:.3f} | "
          f"{100 * e.self_cpu_time_total / total:.1f} |")
