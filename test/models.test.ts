import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Tensor } from "../src/engine/tensor.js";
import { compileNetwork, forward, type Params } from "../src/models/network.js";
import { initParams, weightStd } from "../src/models/init.js";
import { loadModel, saveModel, WEIGHTS_FILE, MODEL_FILE } from "../src/models/io.js";
import { decodeSafetensors, encodeSafetensors } from "../src/models/safetensors.js";
import { defaultCnnSpec, type ModelSpec } from "../src/models/spec.js";
import { UserError } from "../src/util/errors.js";
import { Rng } from "../src/util/rng.js";

const tmp = () => mkdtempSync(join(tmpdir(), "gcx-model-"));

test("init schemes give the documented standard deviations", () => {
  const net = compileNetwork({ kind: "mlp", sizes: [400, 300, 10], activation: "relu" });
  for (const scheme of ["he", "glorot", "lecun"] as const) {
    for (const distribution of ["normal", "uniform"] as const) {
      const p = initParams(net, { scheme, distribution, scale: 2, bias: 0.1, seed: 4 });
      const w = Array.from(p["layers.0.weight"].data);
      const mean = w.reduce((a, b) => a + b, 0) / w.length;
      const std = Math.sqrt(w.reduce((a, b) => a + (b - mean) ** 2, 0) / w.length);
      const expected = 2 * (scheme === "he" ? Math.sqrt(2 / 400) : scheme === "glorot" ? Math.sqrt(2 / 700) : Math.sqrt(1 / 400));
      assert.ok(Math.abs(std / expected - 1) < 0.02, `${scheme}/${distribution}: std ${std} vs ${expected}`);
      assert.equal(weightStd(net.params[0], scheme) * 2, expected);
      assert.ok(p["layers.0.bias"].data.every((b) => Math.abs(b - 0.1) < 1e-7));
    }
  }
});

test("same seed gives the same parameters, another seed others", () => {
  const net = compileNetwork({ kind: "mlp", sizes: [5, 4, 3], activation: "tanh" });
  const a = initParams(net, { scheme: "he", distribution: "normal", scale: 1, bias: 0, seed: 1 });
  const b = initParams(net, { scheme: "he", distribution: "normal", scale: 1, bias: 0, seed: 1 });
  const c = initParams(net, { scheme: "he", distribution: "normal", scale: 1, bias: 0, seed: 2 });
  assert.deepEqual(a["layers.1.weight"].data, b["layers.1.weight"].data);
  assert.notDeepEqual(a["layers.1.weight"].data, c["layers.1.weight"].data);
});

test("CNN shapes: default CNN maps 28x28x1 to 10 logits and matches a direct NHWC convolution", () => {
  const spec = defaultCnnSpec();
  const net = compileNetwork(spec);
  assert.equal(net.inputSize, 784);
  assert.equal(net.outputSize, 10);
  assert.deepEqual(net.params.map((p) => p.name), [
    "layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias", "layers.2.weight", "layers.2.bias",
  ]);
  assert.deepEqual(net.params[4].shape, [10, 64 * 7 * 7]);
  const p = initParams(net, { scheme: "he", distribution: "normal", scale: 1, bias: 0, seed: 0 });
  const y = forward(net, p, new Tensor(new Float32Array(2 * 784).fill(0.5), [2, 784]));
  assert.deepEqual(y.shape, [2, 10]);
});

test("a conv layer computes the textbook cross-correlation (PyTorch semantics) with same padding", () => {
  const spec: ModelSpec = { kind: "cnn", input: [4, 5, 2], layers: [{ type: "conv", filters: 3, kernel: 3, stride: 1, padding: "same" }, { type: "flatten" }, { type: "dense", units: 1 }] };
  const net = compileNetwork(spec);
  const p = initParams(net, { scheme: "he", distribution: "normal", scale: 1, bias: 0.3, seed: 2 });
  const rng = new Rng(3);
  const x = Float32Array.from({ length: 40 }, () => rng.normal());
  // Dense layer = identity-like readout of conv output position (1,2), channel 1.
  const dw = new Float32Array(60);
  dw[(1 * 5 + 2) * 3 + 1] = 1;
  p["layers.1.weight"] = new Tensor(dw, [1, 60]);
  p["layers.1.bias"] = new Tensor(new Float32Array(1), [1]);
  const y = forward(net, p, new Tensor(x, [1, 40])).item();
  const w = p["layers.0.weight"].data; // [out, kh, kw, in]
  let expect = p["layers.0.bias"].data[1];
  for (let ky = 0; ky < 3; ky++)
    for (let kx = 0; kx < 3; kx++)
      for (let c = 0; c < 2; c++) {
        const iy = 1 + ky - 1, ix = 2 + kx - 1;
        expect += w[((1 * 3 + ky) * 3 + kx) * 2 + c] * x[(iy * 5 + ix) * 2 + c];
      }
  assert.ok(Math.abs(y - expect) < 1e-5, `${y} vs ${expect}`);
});

test("save then load gives the same model and outputs; conv weights are stored as PyTorch [out,in,kh,kw]", () => {
  const spec = defaultCnnSpec([8, 8, 2], 3);
  const net = compileNetwork(spec);
  const p = initParams(net, { scheme: "glorot", distribution: "uniform", scale: 1, bias: 0.01, seed: 5 });
  const dir = tmp();
  saveModel(dir, spec, p);
  const stored = decodeSafetensors(readFileSync(join(dir, WEIGHTS_FILE)), "w");
  assert.deepEqual(stored["layers.0.weight"].shape, [32, 2, 3, 3]);
  // element [o=3, i=1, y=2, x=0] in the file equals [o=3, y=2, x=0, i=1] in memory
  assert.equal(stored["layers.0.weight"].data[((3 * 2 + 1) * 3 + 2) * 3 + 0], p["layers.0.weight"].data[((3 * 3 + 2) * 3 + 0) * 2 + 1]);
  const loaded = loadModel(dir);
  assert.deepEqual(loaded.spec, spec);
  const x = new Tensor(Float32Array.from({ length: 2 * 128 }, (_, i) => Math.sin(i)), [2, 128]);
  assert.deepEqual(forward(loaded.net, loaded.params, x).data, forward(net, p, x).data);
});

test("safetensors round trip keeps float32 and float64 data and rejects corrupt files", () => {
  const enc = encodeSafetensors({ a: { shape: [2], data: Float32Array.from([1.5, -2]) }, b: { shape: [1, 1], data: Float64Array.from([Math.PI]) } });
  const dec = decodeSafetensors(enc, "x");
  assert.deepEqual(Array.from(dec.a.data), [1.5, -2]);
  assert.equal(dec.b.data[0], Math.PI);
  assert.equal((8 + Number(new DataView(enc.buffer).getBigUint64(0, true))) % 8, 0);
  assert.throws(() => decodeSafetensors(enc.subarray(0, 20), "x"), UserError);
  assert.throws(() => decodeSafetensors(new Uint8Array(4), "x"), UserError);
});

test("loading reports missing, malformed and inconsistent model directories as UserErrors", () => {
  const spec: ModelSpec = { kind: "mlp", sizes: [3, 2], activation: "relu" };
  const net = compileNetwork(spec);
  const p: Params = initParams(net, { scheme: "he", distribution: "normal", scale: 1, bias: 0, seed: 0 });
  const dir = tmp();
  assert.throws(() => loadModel(join(dir, "nope")), /not a model directory/);
  assert.throws(() => loadModel(dir), /no model\.json/);
  writeFileSync(join(dir, MODEL_FILE), "{not json");
  assert.throws(() => loadModel(dir), /malformed JSON/);
  writeFileSync(join(dir, MODEL_FILE), JSON.stringify({ kind: "mlp", sizes: [3] }));
  assert.throws(() => loadModel(dir), /invalid model description: sizes/);
  saveModel(dir, spec, p);
  writeFileSync(join(dir, MODEL_FILE), JSON.stringify({ kind: "mlp", sizes: [4, 2] }));
  assert.throws(() => loadModel(dir), /has shape \[2,3\].*needs \[2,4\]/);
  const nanWeight = Float32Array.from(p["layers.0.weight"].data);
  nanWeight[1] = NaN;
  const bad = { ...p, "layers.0.weight": new Tensor(nanWeight, p["layers.0.weight"].shape) };
  saveModel(dir, spec, bad);
  assert.throws(() => loadModel(dir), (e: unknown) => e instanceof UserError && /non-finite/.test(e.message));
});
