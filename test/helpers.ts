/** Shared test utilities: float64 finite differences and random tensors. */
import assert from "node:assert/strict";
import { Tensor } from "../src/engine/tensor.js";
import { grad } from "../src/engine/autograd.js";
import { Rng } from "../src/util/rng.js";
import { compileNetwork, forward, type Network, type Params } from "../src/models/network.js";
import { initParams } from "../src/models/init.js";

export function randomTensor(shape: number[], rng: Rng, std = 1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float64Array(n);
  for (let i = 0; i < n; i++) d[i] = std * rng.normal();
  return new Tensor(d, shape);
}

/** Central finite-difference gradient of a scalar function of a float64 array. */
export function finiteDifferenceGrad(f: (x: Float64Array) => number, x: Float64Array, eps = 1e-6): Float64Array {
  const g = new Float64Array(x.length);
  const xp = Float64Array.from(x);
  for (let i = 0; i < x.length; i++) {
    xp[i] = x[i] + eps;
    const fp = f(xp);
    xp[i] = x[i] - eps;
    const fm = f(xp);
    xp[i] = x[i];
    g[i] = (fp - fm) / (2 * eps);
  }
  return g;
}

/** max |a−b| / (max |b| + tiny): one relative error for a whole array. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0,
    den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / (den + 1e-300);
}

/** Checks the engine's gradient of scalar f(x) against float64 central differences. */
export function checkGrad(name: string, f: (x: Tensor) => Tensor, x: Tensor, tol = 1e-7): void {
  const xv = x.variable();
  const [g] = grad(f(xv), [xv]);
  const fd = finiteDifferenceGrad((d) => f(new Tensor(d, x.shape)).item(), x.data as Float64Array);
  const err = relativeError(g.data, fd);
  assert.ok(err < tol, `${name}: relative error ${err}`);
}

/** A minimal RFC 4180 parser. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [],
    cell = "",
    quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") {
      row.push(cell);
      cell = "";
    } else if (ch === "\n") {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
    } else cell += ch;
  }
  assert.equal(cell + row.join(""), "", "CSV ends with a newline");
  return rows;
}

/** ‖J‖_F² of one example from float64 central differences of each output. */
export function finiteDifferenceJacobianSq(net: Network, params: Params, x: Float64Array): number {
  let s = 0;
  for (let c = 0; c < net.outputSize; c++) {
    const g = finiteDifferenceGrad((xx) => forward(net, params, new Tensor(xx, [1, xx.length])).data[c], x);
    s += g.reduce((a, b) => a + b * b, 0);
  }
  return s;
}
/**
 * Options for a long statistical or end-to-end test: `npm run test:fast` (GCX_TEST_FAST=1) skips it, saying so.
 * Whole slow files are listed in scripts/run-tests.mjs instead.
 */
export const SLOW_TEST = { skip: process.env.GCX_TEST_FAST === "1" && "slow: left out of npm run test:fast" };

/** A 4-16-16-3 ReLU MLP with a batch of 32 examples: the small training setup of the backend and kept-state tests. */
export function smallRun() {
  const net = compileNetwork({ kind: "mlp", sizes: [4, 16, 16, 3], activation: "relu" });
  const params = initParams(net, { scheme: "he", distribution: "normal", scale: 1, bias: 0, seed: 1 });
  const rng = new Rng(2);
  const x = new Tensor(
    Float32Array.from({ length: 32 * 4 }, () => rng.normal()),
    [32, 4],
  );
  const labels = Int32Array.from({ length: 32 }, () => rng.int(3));
  return { net, params, batch: { x, labels, numOutputs: 3 } };
}
