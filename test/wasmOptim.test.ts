// In-place optimizer updates (assembly/optim.ts) against src/training/optimizers.ts over several steps, and the
// BatchNorm kernels (assembly/norm.ts) against the engine's batchNorm (forward bit for bit, backward against
// float64 autograd).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Tensor } from "../src/engine/tensor.js";
import * as E from "../src/engine/elementwise.js";
import * as op from "../src/engine/ops.js";
import { grad } from "../src/engine/autograd.js";
import {
  adam,
  addDecayedWeights,
  applyUpdates,
  chain,
  sgd,
  type GradientTransformation,
} from "../src/training/optimizers.js";
import { adamMoments, axpby } from "../src/engine/updates.js";
import type { Params } from "../src/models/network.js";
import { Rng } from "../src/util/rng.js";
import { loadHarness } from "./wasmHarness.js";
import { setBackend } from "../src/engine/backend.js";

// The references are the JS kernels: run the engine on its JS backend whatever the default backend is.
setBackend("js");

function randF32(n: number, rng: Rng, std = 1): Float32Array {
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = std * rng.normal();
  return d;
}

function assertBitEqual(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) assert.ok(Object.is(got[i], want[i]), `${what}[${i}]: ${got[i]} vs ${want[i]}`);
}

interface Case {
  name: string;
  opt: GradientTransformation;
  /** Runs one wasm step on the given pointers (p, g, then state arrays in the JS state's order). */
  step(x: Record<string, (...a: number[]) => unknown>, p: number, g: number, s: number[], n: number, t: number): void;
  /** JS state arrays (per parameter) the kernel keeps, by prefix. */
  state: string[];
}

test("wasm SGD, momentum and Adam steps (with and without weight decay) equal the JS optimizers bit for bit", (t) => {
  const h = loadHarness();
  if (!h) return t.skip("dist/wasm/kernels.wasm not built");
  const lr = 0.05,
    mu = 0.9,
    wd = 5e-4;
  const b1 = 0.9,
    b2 = 0.999,
    eps = 1e-8;
  const cases: Case[] = [
    { name: "sgd", opt: sgd(lr), state: [], step: (x, p, g, _s, n) => x.sgd_step(p, g, n, lr, 0) },
    {
      name: "sgd+wd",
      opt: chain(addDecayedWeights(wd), sgd(lr)),
      state: [],
      step: (x, p, g, _s, n) => x.sgd_step(p, g, n, lr, wd),
    },
    {
      name: "momentum",
      opt: sgd(lr, mu),
      state: ["momentum."],
      step: (x, p, g, s, n) => x.sgd_momentum_step(p, g, s[0], n, lr, mu, 0),
    },
    {
      name: "momentum+wd",
      opt: chain(addDecayedWeights(wd), sgd(lr, mu)),
      state: ["1/momentum."],
      step: (x, p, g, s, n) => x.sgd_momentum_step(p, g, s[0], n, lr, mu, wd),
    },
    {
      name: "adam",
      opt: adam(1e-3),
      state: ["m.", "v."],
      step: (x, p, g, s, n, t) => x.adam_step(p, g, s[0], s[1], n, 1e-3, b1, b2, eps, 1 - b1 ** t, 1 - b2 ** t, 0),
    },
    {
      name: "adam+wd",
      opt: chain(addDecayedWeights(wd), adam(1e-3)),
      state: ["1/m.", "1/v."],
      step: (x, p, g, s, n, t) => x.adam_step(p, g, s[0], s[1], n, 1e-3, b1, b2, eps, 1 - b1 ** t, 1 - b2 ** t, wd),
    },
  ];
  const rng = new Rng(11);
  for (const c of cases) {
    for (const n of [1, 3, 4, 7, 130, 1029]) {
      h.reset();
      const P0 = randF32(n, rng);
      let params: Params = { w: new Tensor(Float32Array.from(P0), [n]) };
      let state = c.opt.init(params);
      const p = h.put(P0),
        g = h.alloc(n),
        s = c.state.map(() => h.alloc(n));
      for (let step = 1; step <= 5; step++) {
        const G = randF32(n, rng, step === 3 ? 1e-3 : 1);
        if (n > 3) G[2] = 0; // a zero gradient (Adam's v stays small)
        new Float32Array(h.memory.buffer, g, n).set(G);
        const r = c.opt.update({ w: new Tensor(G, [n]) }, state, params);
        params = applyUpdates(params, r.updates);
        state = r.state;
        c.step(h.exports, p, g, s, n, step);
        assertBitEqual(h.get(p, n), params.w.data, `${c.name} n=${n} step ${step}: parameters`);
        c.state.forEach((prefix, i) => {
          assertBitEqual(
            h.get(s[i], n),
            state.arrays[`${prefix}w`] as Float32Array,
            `${c.name} n=${n} step ${step}: ${prefix}`,
          );
        });
      }
    }
  }
});

test("wasm out-of-place update kernels equal updates.ts (axpby, adamMoments) bit for bit", (t) => {
  const h = loadHarness();
  if (!h) return t.skip("dist/wasm/kernels.wasm not built");
  const x = h.exports;
  const rng = new Rng(13);
  for (const n of [1, 3, 4, 7, 130, 1029]) {
    h.reset();
    const G = randF32(n, rng),
      D = randF32(n, rng),
      M = randF32(n, rng, 0.1),
      V = randF32(n, rng, 0.01).map(Math.abs);
    G[0] = -0;
    const gp = h.put(G),
      dp = h.put(D),
      mp = h.put(M),
      vp = h.put(V),
      o = h.alloc(n),
      m2 = h.alloc(n),
      v2 = h.alloc(n);
    for (const c of [-0.05, 0.9, 1]) {
      x.ew_scale(gp, o, n, c);
      assertBitEqual(h.get(o, n), axpby(c, G), `axpby(${c}, g) n=${n}`);
      for (const b of [1, 5e-4, -0.3]) {
        x.ew_axpby(gp, dp, o, n, c, b);
        assertBitEqual(h.get(o, n), axpby(c, G, b, D), `axpby(${c}, g, ${b}, d) n=${n}`);
      }
    }
    for (const step of [1, 2, 10]) {
      const c1 = 1 - 0.9 ** step,
        c2 = 1 - 0.999 ** step;
      const r = adamMoments(G, M, V, 1e-3, 0.9, 0.999, c1, c2, 1e-8);
      x.adam_moments(gp, mp, vp, m2, v2, o, n, 1e-3, 0.9, 0.999, 1e-8, c1, c2);
      assertBitEqual(h.get(m2, n), r.m, `adam m n=${n} t=${step}`);
      assertBitEqual(h.get(v2, n), r.v, `adam v n=${n} t=${step}`);
      assertBitEqual(h.get(o, n), r.update, `adam update n=${n} t=${step}`);
    }
    x.adam_moments(gp, mp, vp, mp, vp, o, n, 1e-3, 0.9, 0.999, 1e-8, 0.1, 0.001); // in place on the moments
    const r = adamMoments(G, M, V, 1e-3, 0.9, 0.999, 0.1, 0.001, 1e-8);
    assertBitEqual(h.get(mp, n), r.m, `adam in place m n=${n}`);
    assertBitEqual(h.get(o, n), r.update, `adam in place update n=${n}`);
  }
});

test("wasm BatchNorm forward equals the engine's batchNorm bit for bit; backward matches float64 autograd", (t) => {
  const h = loadHarness();
  if (!h) return t.skip("dist/wasm/kernels.wasm not built");
  const x = h.exports;
  const rng = new Rng(12);
  const eps = 1e-5;
  for (const [rows, C] of [
    [2, 1],
    [6, 3],
    [50, 8],
    [2 * 7 * 7, 19],
  ]) {
    h.reset();
    const X = randF32(rows * C, rng, 2).map((v, i) => v + (i % C)); // channel offsets
    const gamma = randF32(C, rng),
      beta = randF32(C, rng),
      G = randF32(rows * C, rng);
    const xp = h.put(X),
      gp = h.put(gamma),
      bp = h.put(beta),
      gr = h.put(G);
    const mean = h.alloc(C),
      variance = h.alloc(C),
      k = h.alloc(C),
      out = h.alloc(rows * C);
    x.channel_moments(xp, mean, variance, rows, C, 0, C);
    x.bn_scale(variance, gp, k, C, eps);
    x.bn_apply(xp, mean, k, bp, out, C, 0, rows >> 1);
    x.bn_apply(xp, mean, k, bp, out, C, rows >> 1, rows);
    const T = new Tensor(X, [rows, C]);
    const { mean: m, variance: v } = E.channelMoments(T);
    const y = E.batchNorm(T, m, v, new Tensor(gamma, [C]), new Tensor(beta, [C]), eps);
    assertBitEqual(h.get(out, rows * C), y.data, `bn forward ${rows}x${C}`);

    // Backward of L = Σ G ⊙ y with batch statistics, in float64 through the engine's autograd.
    const x64 = new Tensor(Float64Array.from(X), [rows, C], true);
    const g64 = new Tensor(Float64Array.from(gamma), [C], true),
      b64 = new Tensor(Float64Array.from(beta), [C], true);
    const st = E.channelMoments(x64);
    const y64 = E.batchNorm(x64, st.mean, st.variance, g64, b64, eps);
    const loss = op.sum(op.mul(y64, new Tensor(Float64Array.from(G), [rows, C])));
    const [dx, dg, db] = grad(loss, [x64, g64, b64]);
    const sumG = h.alloc(C),
      sumGX = h.alloc(C),
      coef = h.alloc(3 * C),
      dgp = h.alloc(C),
      dbp = h.alloc(C),
      dxp = h.alloc(rows * C);
    x.bn_backward_sums(gr, xp, mean, sumG, sumGX, rows, C, 0, C);
    x.bn_backward_coeffs(variance, gp, sumG, sumGX, rows, eps, coef, dgp, dbp, C);
    x.bn_backward_input(gr, xp, mean, coef, dxp, C, 0, rows);
    const close = (got: Float32Array, want: ArrayLike<number>, what: string) => {
      let scale = 0;
      for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
      for (let i = 0; i < want.length; i++) {
        assert.ok(Math.abs(got[i] - want[i]) <= 2e-5 * scale + 1e-6, `${what}[${i}]: ${got[i]} vs ${want[i]}`);
      }
    };
    close(h.get(dxp, rows * C), dx.data, `dx ${rows}x${C}`);
    close(h.get(dgp, C), dg.data, `dgamma ${rows}x${C}`);
    close(h.get(dbp, C), db.data, `dbeta ${rows}x${C}`);
  }
});
