/**
 * Graph models against PyTorch (issue 10): fixtures built, saved and measured by torch 1.13 in float64
 * (scripts/make_torch_fixtures.py; regenerate as scripts/README.md says). Our GC through the safetensors path must
 * agree within 1e-4 relative, exact and estimated (within 4 standard errors), and the Jacobian of one image too.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Tensor } from "../src/engine/tensor.js";
import { grad } from "../src/engine/autograd.js";
import { loadModel } from "../src/models/io.js";
import { forward } from "../src/models/network.js";
import { exactGC, estimateGC } from "../src/measures/gc.js";
import { loadDataset } from "../src/data/registry.js";
import { relativeError } from "./helpers.js";
import { loadOnnx } from "../src/models/onnx/load.js";
import { assertOneLineError, gcx } from "./cliRun.js";
import { head } from "../src/data/select.js";
import type { Dataset } from "../src/data/dataset.js";

const head1 = (ds: Dataset) => head(ds, 1);

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "test", "fixtures", "torch");
const FIXTURES = ["mlp_gelu", "cnn_bn", "resnet8_w8", "avgpool_pad"];

interface Reference {
  n: number;
  gc: number;
  jacobian0: number[] | number[][];
  jacobian0_shape: [number, number];
  per_example_sq_norms: number[];
  logits: number[][];
}

for (const name of FIXTURES) {
  test(`torch fixture ${name}: logits, Jacobian of image 0, per-example norms and GC agree with PyTorch`, () => {
    const ref = JSON.parse(readFileSync(join(root, name, "reference.json"), "utf8")) as Reference;
    const model = loadModel(join(root, name));
    const ds = loadDataset("mnist", { split: "test", seed: 0, limit: ref.n });
    const x4 = new Tensor(ds.x.subarray(0, 4 * 784), [4, 784]);
    const logits = forward(model.net, model.params, x4);
    assert.ok(
      relativeError(logits.data, ref.logits.flat()) < 1e-5,
      `logits: ${relativeError(logits.data, ref.logits.flat())}`,
    );
    // Jacobian of image 0, row by row.
    const [k, d] = ref.jacobian0_shape;
    const x0 = new Tensor(ds.x.slice(0, d), [1, d]).variable();
    const y = forward(model.net, model.params, x0);
    const jac = new Float64Array(k * d);
    for (let c = 0; c < k; c++) {
      const cot = new Float32Array(k);
      cot[c] = 1;
      const [g] = grad(y, [x0], { cotangent: new Tensor(cot, [1, k]) });
      jac.set(g.data, c * d);
    }
    assert.ok(
      relativeError(jac, ref.jacobian0.flat()) < 1e-4,
      `jacobian0: ${relativeError(jac, ref.jacobian0.flat())}`,
    );
    const exact = exactGC(model.net, model.params, ds, { perClass: false });
    const perExample = exactGC(model.net, model.params, head1(ds), {}).gc;
    assert.ok(
      Math.abs(perExample - ref.per_example_sq_norms[0]) < 1e-4 * ref.per_example_sq_norms[0],
      `example 0: ${perExample} vs ${ref.per_example_sq_norms[0]}`,
    );
    assert.ok(Math.abs(exact.gc - ref.gc) < 1e-4 * ref.gc, `gc ${exact.gc} vs torch ${ref.gc}`);
    const est = estimateGC(model.net, model.params, ds, { probes: 16, seed: 3 });
    assert.ok(Math.abs(est.gc - ref.gc) < 4 * est.stderr!, `estimate ${est.gc} ± ${est.stderr} vs torch ${ref.gc}`);
  });
}

const ONNX_FILES: [string, string][] = [
  ["mlp_gelu", "model.onnx"],
  ["mlp_gelu", "model-opset17.onnx"],
  ["cnn_bn", "model.onnx"],
  ["cnn_bn", "model-train-bn.onnx"],
  ["resnet8_w8", "model.onnx"],
  ["avgpool_pad", "model.onnx"],
];

for (const [name, file] of ONNX_FILES) {
  test(`ONNX import of torch fixture ${name}/${file}: GC (exact and estimated) and the Jacobian agree with PyTorch`, () => {
    const ref = JSON.parse(readFileSync(join(root, name, "reference.json"), "utf8")) as Reference;
    const model = loadOnnx(join(root, name, file));
    const ds = loadDataset("mnist", { split: "test", seed: 0, limit: ref.n });
    const exact = exactGC(model.net, model.params, ds);
    assert.ok(Math.abs(exact.gc - ref.gc) < 1e-4 * ref.gc, `gc ${exact.gc} vs torch ${ref.gc}`);
    const est = estimateGC(model.net, model.params, ds, { probes: 16, seed: 5 });
    assert.ok(Math.abs(est.gc - ref.gc) < 4 * est.stderr!, `estimate ${est.gc} ± ${est.stderr} vs torch ${ref.gc}`);
    const logits = forward(model.net, model.params, new Tensor(ds.x.subarray(0, 4 * 784), [4, 784]));
    assert.ok(
      relativeError(logits.data, ref.logits.flat()) < 1e-5,
      `logits: ${relativeError(logits.data, ref.logits.flat())}`,
    );
  });
}

test("ONNX parameters keep PyTorch's names (from initializers or scopes)", () => {
  const train = loadOnnx(join(root, "cnn_bn", "model-train-bn.onnx"));
  for (const k of ["conv1.weight", "bn1.running_var", "bn2.weight", "fc.bias"]) assert.ok(k in train.params, k);
  const folded = loadOnnx(join(root, "resnet8_w8", "model.onnx"));
  for (const k of ["conv1.weight", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight", "fc.weight"])
    assert.ok(k in folded.params, k);
});

test("ONNX mistakes are one line, exit 2: unsupported op, damaged file, shape mismatch", () => {
  const dir = mkdtempSync(join(tmpdir(), "gcx-onnx-"));
  const damaged = join(dir, "damaged.onnx");
  const bytes = readFileSync(join(root, "cnn_bn", "model.onnx"));
  writeFileSync(damaged, bytes.subarray(0, bytes.length >> 1));
  const onnxDir = join(root, "..", "onnx");
  const cases: [string[], RegExp][] = [
    [
      ["measure", "--model", join(onnxDir, "upsample.onnx"), "--data", "mnist", "--limit", "4"],
      /node "\/up\/Resize" \(Resize, opset 13\): op Resize is not supported/,
    ],
    [["measure", "--model", damaged, "--data", "mnist", "--limit", "4"], /damaged\.onnx: not a valid ONNX model/],
    [
      ["measure", "--model", join(root, "cnn_bn", "model.onnx"), "--data", "moons"],
      /shape mismatch: the model takes 784 inputs/,
    ],
  ];
  for (const [args, pattern] of cases) assertOneLineError(gcx(args), pattern, args.join(" "));
  const ok = gcx([
    "measure",
    "--model",
    join(root, "resnet8_w8", "model.onnx"),
    "--data",
    "mnist",
    "--limit",
    "8",
    "--all",
  ]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /T1 bound .*not applicable/);
});
