/**
 * Graph models against PyTorch (issue 10): fixtures built, saved and measured by torch 1.13 in float64
 * (scripts/make_torch_fixtures.py; regenerate as scripts/README.md says). Our GC through the safetensors path must
 * agree within 1e-4 relative, exact and estimated (within 4 standard errors), and the Jacobian of one image too.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Tensor } from "../src/engine/tensor.js";
import { grad } from "../src/engine/autograd.js";
import { loadModel } from "../src/models/io.js";
import { forward } from "../src/models/network.js";
import { exactGC, estimateGC } from "../src/measures/gc.js";
import { loadDataset } from "../src/data/registry.js";
import { relativeError } from "./helpers.js";
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
    assert.ok(relativeError(logits.data, ref.logits.flat()) < 1e-5, `logits: ${relativeError(logits.data, ref.logits.flat())}`);
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
    assert.ok(relativeError(jac, ref.jacobian0.flat()) < 1e-4, `jacobian0: ${relativeError(jac, ref.jacobian0.flat())}`);
    const exact = exactGC(model.net, model.params, ds, { perClass: false });
    const perExample = exactGC(model.net, model.params, head1(ds), {}).gc;
    assert.ok(Math.abs(perExample - ref.per_example_sq_norms[0]) < 1e-4 * ref.per_example_sq_norms[0], `example 0: ${perExample} vs ${ref.per_example_sq_norms[0]}`);
    assert.ok(Math.abs(exact.gc - ref.gc) < 1e-4 * ref.gc, `gc ${exact.gc} vs torch ${ref.gc}`);
    const est = estimateGC(model.net, model.params, ds, { probes: 16, seed: 3 });
    assert.ok(Math.abs(est.gc - ref.gc) < 4 * est.stderr!, `estimate ${est.gc} ± ${est.stderr} vs torch ${ref.gc}`);
  });
}
