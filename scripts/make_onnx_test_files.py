#!/usr/bin/python3
"""Export tiny PyTorch models to ONNX for the ONNX import tests (test/onnx.test.ts).

Needs Debian's python3-torch (1.13, CPU): `apt-get install -y python3-torch`, then run with the system Python:

    /usr/bin/python3 scripts/make_onnx_test_files.py

Writes test/fixtures/onnx/<name>.onnx and <name>.json. The JSON sidecar records the export settings, the
state_dict (names, shapes, value checksums), the expected node op list, and the model output on a fixed input,
so the TypeScript tests can check the decoder against what torch wrote. Deterministic (fixed seeds).
"""
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "onnx")


def checksum(t):
    """Sum, index-weighted sum (weights 1..7 cycling) and the first values, in float64, of a flattened tensor."""
    v = t.detach().double().flatten().tolist()
    return {
        "sum": math.fsum(v),
        "wsum": math.fsum(x * ((i % 7) + 1) for i, x in enumerate(v)),
        "head": v[:4],
        "count": len(v),
    }


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, stride=2, padding=1, bias=True)
        self.bn1 = nn.BatchNorm2d(4)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * 2 * 2, 3)

    def forward(self, x):
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        x = x.view(x.size(0), -1)
        return self.fc(x)


class GeluLN(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 8)
        self.ln = nn.LayerNorm(8)
        self.fc2 = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc2(self.ln(F.gelu(self.fc1(x))))


class Upsampler(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, x):
        return self.up(self.conv(x))


def randomize_bn(bn):
    # Non-trivial running statistics so fused/unfused exports differ from the defaults.
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(bn.num_features) * 0.1)
        bn.running_var.copy_(torch.rand(bn.num_features) + 0.5)
        bn.weight.copy_(torch.rand(bn.num_features) + 0.5)
        bn.bias.copy_(torch.randn(bn.num_features) * 0.1)


def export(name, model, example, opset, training=torch.onnx.TrainingMode.EVAL, dynamic_batch=True,
           keep_initializers_as_inputs=False, extra=None):
    model.eval() if training == torch.onnx.TrainingMode.EVAL else None
    path = os.path.join(OUT, name + ".onnx")
    kwargs = dict(
        input_names=["input"],
        output_names=["output"],
        opset_version=opset,
        training=training,
        do_constant_folding=True,
        keep_initializers_as_inputs=keep_initializers_as_inputs,
    )
    if dynamic_batch:
        kwargs["dynamic_axes"] = {"input": {0: "batch"}, "output": {0: "batch"}}
    torch.onnx.export(model, (example,), path, **kwargs)
    model.eval()
    with torch.no_grad():
        out = model(example)
    sidecar = {
        "name": name,
        "opset": opset,
        "training": str(training).split(".")[-1],
        "dynamicBatch": dynamic_batch,
        "keepInitializersAsInputs": keep_initializers_as_inputs,
        "inputShape": list(example.shape),
        "stateDict": [
            {"name": k, "shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", ""), **checksum(v)}
            for k, v in model.state_dict().items()
        ],
        # Eval-mode output on the example input (flattened), for whoever runs the converted graph.
        "example": {"input": example.flatten().tolist(), "output": out.flatten().tolist(),
                    "outputShape": list(out.shape)},
    }
    if extra:
        sidecar.update(extra(model))
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(sidecar, f, indent=1)
        f.write("\n")
    print(f"{name}: {os.path.getsize(path)} bytes")


def fused_conv(model):
    """What torch's eval-mode export folds Conv+BatchNorm into (weight and bias checksums)."""
    conv, bn = model.conv1, model.bn1
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    w = conv.weight * scale.reshape(-1, 1, 1, 1)
    b = (conv.bias - bn.running_mean) * scale + bn.bias
    return {"fusedConv": {"weight": {"shape": list(w.shape), **checksum(w)},
                          "bias": {"shape": list(b.shape), **checksum(b)}}}


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)

    mlp = MLP()
    export("mlp", mlp, torch.randn(2, 4), opset=13)

    torch.manual_seed(1)
    cnn = CNN()
    randomize_bn(cnn.bn1)
    x = torch.randn(2, 1, 8, 8)
    export("cnn_eval", cnn, x, opset=13, extra=fused_conv)
    # PRESERVE keeps BatchNormalization (module is in eval mode, so it exports inference-mode BN) and a fixed
    # batch of 2 (no dynamic_axes).
    cnn.eval()
    export("cnn_preserve", cnn, x, opset=13, training=torch.onnx.TrainingMode.PRESERVE, dynamic_batch=False)

    torch.manual_seed(2)
    gl = GeluLN()
    with torch.no_grad():
        gl.ln.weight.copy_(torch.rand(8) + 0.5)
        gl.ln.bias.copy_(torch.randn(8) * 0.1)
    xg = torch.randn(3, 6)
    # Older-style export: initializers also listed as graph inputs.
    export("gelu_ln_opset13", gl, xg, opset=13, keep_initializers_as_inputs=True)
    export("gelu_ln_opset17", gl, xg, opset=17)

    torch.manual_seed(3)
    export("upsample", Upsampler(), torch.randn(1, 1, 4, 4), opset=13)


if __name__ == "__main__":
    sys.exit(main())
