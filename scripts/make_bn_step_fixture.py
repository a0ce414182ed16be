#!/usr/bin/env python3
"""
One PyTorch training step (model.train(), SGD) of a tiny residual net with BatchNorm, as a fixture for
test/graphTraining.test.ts: test/fixtures/torch/bn_step/

  model.json           the gcx graph model (node names = torch module paths)
  weights.safetensors  the state_dict before the step (F32; num_batches_tracked I64), non-trivial BN parameters/buffers
  step.json            the batch (float32-representable values), lr, and what torch computes in float64 for one
                       step: the loss, every parameter's gradient, the parameters and BN buffers after the step

Run with the system interpreter (torch 1.13): /usr/bin/python3 scripts/make_bn_step_fixture.py
"""
import json, os, struct, sys
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "torch", "bn_step")
LR = 0.1


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, momentum=0.3)
        self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.downsample(x))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 3, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(3)
        self.layer1 = nn.Sequential(Block(3, 4, 2))
        self.bn_fc = nn.BatchNorm1d(4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer1(x)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(self.bn_fc(x))


def conv(name, inp, m):
    return {"name": name, "op": "conv2d", "inputs": [inp], "out": m.out_channels, "kernel": list(m.kernel_size),
            "stride": list(m.stride), "padding": [m.padding[0], m.padding[1], m.padding[0], m.padding[1]],
            "dilation": list(m.dilation), "groups": m.groups, "bias": m.bias is not None}


def bn(name, inp, m):
    return {"name": name, "op": "batchnorm", "inputs": [inp], "eps": m.eps, "momentum": m.momentum}


def graph(m):
    b = m.layer1[0]
    n = [conv("conv1", "input", m.conv1), bn("bn1", "conv1", m.bn1), {"name": "relu", "op": "relu", "inputs": ["bn1"]},
         conv("layer1.0.conv1", "relu", b.conv1), bn("layer1.0.bn1", "layer1.0.conv1", b.bn1),
         {"name": "layer1.0.relu1", "op": "relu", "inputs": ["layer1.0.bn1"]},
         conv("layer1.0.conv2", "layer1.0.relu1", b.conv2), bn("layer1.0.bn2", "layer1.0.conv2", b.bn2),
         conv("layer1.0.downsample.0", "relu", b.downsample[0]), bn("layer1.0.downsample.1", "layer1.0.downsample.0", b.downsample[1]),
         {"name": "layer1.0.add", "op": "add", "inputs": ["layer1.0.bn2", "layer1.0.downsample.1"]},
         {"name": "layer1.0.relu2", "op": "relu", "inputs": ["layer1.0.add"]},
         {"name": "avgpool", "op": "global_avgpool", "inputs": ["layer1.0.relu2"]},
         {"name": "flatten", "op": "flatten", "inputs": ["avgpool"]},
         bn("bn_fc", "flatten", m.bn_fc),
         {"name": "fc", "op": "linear", "inputs": ["bn_fc"], "out": 3, "bias": True}]
    return {"kind": "graph", "input": [2, 6, 6], "nodes": n, "output": "fc"}


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for k in sorted(tensors):
        t = tensors[k].contiguous()
        dtype = {torch.float32: "F32", torch.int64: "I64"}[t.dtype]
        data = t.numpy().tobytes()
        header[k] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":"))
    h += " " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h.encode() + b"".join(blobs))


def main():
    torch.manual_seed(7)
    m = Net()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
                c = mod.num_features
                mod.weight.copy_(1 + 0.3 * torch.randn(c))
                mod.bias.copy_(0.2 * torch.randn(c))
                mod.running_mean.copy_(0.5 * torch.randn(c))
                mod.running_var.copy_(0.5 + torch.rand(c))
                mod.num_batches_tracked.fill_(5)
    x = torch.randn(6, 2, 6, 6).float()  # float32-representable
    labels = torch.tensor([0, 1, 2, 1, 0, 2])
    os.makedirs(OUT, exist_ok=True)
    write_safetensors(os.path.join(OUT, "weights.safetensors"), {k: v.float() if v.is_floating_point() else v for k, v in m.state_dict().items()})
    with open(os.path.join(OUT, "model.json"), "w") as f:
        json.dump(graph(m), f, indent=1)
    m64 = m.double()
    m64.train()
    opt = torch.optim.SGD(m64.parameters(), lr=LR)
    opt.zero_grad()
    loss = F.cross_entropy(m64(x.double()), labels)
    loss.backward()
    grads = {k: p.grad.clone() for k, p in m64.named_parameters()}
    opt.step()
    after = m64.state_dict()
    flat = lambda t: t.reshape(-1).tolist()
    step = {
        "lr": LR,
        "x": flat(x), "x_shape": list(x.shape), "labels": labels.tolist(),
        "loss": loss.item(),
        "grads": {k: flat(v) for k, v in grads.items()},
        "after": {k: flat(v.double()) for k, v in after.items()},
        "torch": torch.__version__,
    }
    with open(os.path.join(OUT, "step.json"), "w") as f:
        json.dump(step, f)
    print("wrote", OUT, "loss", loss.item())


if __name__ == "__main__":
    sys.exit(main())
