/**
 * Kernel timings for issue 11: the elementwise / reduction / softmax-CE / optimizer / BatchNorm / fused-Jacobian wasm
 * kernels (operands resident in wasm memory) against the JS engine's ops on the same data. Medians of repetitions.
 * Run: node dist/bench/wasmElementwise.js   (after npm run build:wasm and tsc)
 */
import { Tensor } from "../src/engine/tensor.js";
import * as op from "../src/engine/ops.js";
import * as E from "../src/engine/elementwise.js";
import { adam, applyUpdates, sgd } from "../src/training/optimizers.js";
import { softmaxCrossEntropy } from "../src/training/losses.js";
import { grad } from "../src/engine/autograd.js";
import { compileNetwork, type Params } from "../src/models/network.js";
import { initParams } from "../src/models/init.js";
import { denseJacobianSqNorms } from "../src/measures/denseJacobian.js";
import { Rng } from "../src/util/rng.js";
import { loadHarness } from "../test/wasmHarness.js";
import { setBackend } from "../src/engine/backend.js";

// The JS column is the JS engine (reference backend), whatever the default backend is.
setBackend("js");

const h = loadHarness();
if (!h) throw new Error("dist/wasm/kernels.wasm not built");
const x = h.exports;
const rng = new Rng(1);
const rand = (n: number, std = 1) => Float32Array.from({ length: n }, () => std * rng.normal());

/**
 * Median milliseconds per call of f. The machine is shared (load far above its 2 cores), so a rep is kept short
 * (≈0.5 ms: most reps then run inside one scheduler time slice) and the median is over 41 reps after warm-up.
 */
function time(f: () => void, warm: number): number {
  for (let i = 0; i < warm; i++) f();
  let inner = 1;
  for (;;) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < inner; i++) f();
    if (Number(process.hrtime.bigint() - t0) / 1e6 >= 0.5 || inner >= 1 << 16) break;
    inner *= 2;
  }
  const ts: number[] = [];
  for (let r = 0; r < 41; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < inner; i++) f();
    ts.push(Number(process.hrtime.bigint() - t0) / 1e6 / inner);
  }
  ts.sort((a, b) => a - b);
  return ts[ts.length >> 1];
}

const rows: [string, number, number][] = [];
function row(name: string, js: () => void, wasm: () => void, inner: number): void {
  const a = time(js, inner * 4),
    b = time(wasm, inner * 4);
  rows.push([name, a, b]);
  console.log(
    `${name.padEnd(52)} JS ${a.toFixed(4).padStart(9)} ms   wasm ${b.toFixed(4).padStart(9)} ms   ×${(a / b).toFixed(1)}`,
  );
}

// 128×256 activations
const M = 128,
  N = 256,
  n = M * N;
const A = rand(n),
  B = rand(n),
  bias = rand(N);
const TA = new Tensor(A, [M, N]),
  TB = new Tensor(B, [M, N]),
  Tb = new Tensor(bias, [N]);
const pa = h.put(A),
  pb = h.put(B),
  pbias = h.put(bias),
  po = h.alloc(n),
  pm = h.alloc(n),
  pcol = h.alloc(N);
row(
  "add 128×256",
  () => op.add(TA, TB),
  () => x.ew_add(pa, pb, po, n),
  50,
);
row(
  "bias add 128×256 + 256",
  () => op.add(TA, Tb),
  () => x.add_row_vector(pa, pbias, po, N, 0, M),
  50,
);
row(
  "affine 128×256",
  () => op.affine(TA, 0.5, 0.1),
  () => x.ew_affine(pa, po, n, 0.5, 0.1),
  50,
);
row(
  "relu + mask 128×256",
  () => op.relu(TA),
  () => x.ew_relu(pa, po, pm, n),
  50,
);
row(
  "mulConst 128×256",
  () => op.mulConst(TA, B),
  () => x.ew_mul(pa, pb, po, n),
  50,
);
row(
  "tanh 128×256",
  () => op.tanh(TA),
  () => x.ew_tanh(pa, po, n),
  20,
);
row(
  "exp 128×256",
  () => op.exp(TA),
  () => x.ew_exp(pa, po, n),
  20,
);
row(
  "sigmoid 128×256",
  () => E.sigmoid(TA),
  () => x.ew_sigmoid(pa, po, n),
  20,
);
row(
  "gelu (tanh) 128×256",
  () => E.gelu(TA, "tanh"),
  () => x.ew_gelu_tanh(pa, po, n),
  20,
);
row(
  "gelu (erf) 128×256",
  () => E.gelu(TA),
  () => x.ew_gelu_erf(pa, po, n),
  5,
);
row(
  "sum 128×256",
  () => op.sum(TA),
  () => x.sum(pa, n),
  50,
);
row(
  "sumToLastAxis (bias grad) 128×256",
  () => op.sumToLastAxis(TA),
  () => x.sum_columns(pa, pcol, M, N, 0, N),
  50,
);
row(
  "sumRows 128×256",
  () => op.sumRows(TA),
  () => x.sum_rows(pa, po, N, 0, M),
  50,
);
row(
  "softmax rows 128×256",
  () => op.softmax(TA),
  () => x.softmax_rows(pa, po, N, 0, M),
  20,
);

// softmax cross-entropy on 128×10 logits: loss + gradient
const K = 10;
const Z = rand(M * K, 3),
  labels = Int32Array.from({ length: M }, () => rng.int(K));
const pz = h.put(Z),
  pl = h.alloc(M),
  pg = h.alloc(M * K);
new Int32Array(h.memory.buffer, pl, M).set(labels);
row(
  "softmax-CE loss + grad 128×10",
  () => {
    const zv = new Tensor(Z, [M, K], true);
    grad(softmaxCrossEntropy(zv, labels), [zv]);
  },
  () => {
    x.softmax_ce_mean(pz, pl, M, K);
    x.softmax_ce_grad(pz, pl, pg, K, 1 / M, 0, M);
  },
  50,
);

// BatchNorm forward, NHWC 128×14×14×32 (training statistics)
{
  const rowsBN = 128 * 14 * 14,
    C = 32;
  const X = rand(rowsBN * C),
    g = rand(C),
    b = rand(C);
  const TX = new Tensor(X, [128, 14, 14, C]),
    Tg = new Tensor(g, [C]),
    Tbeta = new Tensor(b, [C]);
  const px = h.put(X),
    pgam = h.put(g),
    pbet = h.put(b),
    pmean = h.alloc(C),
    pvar = h.alloc(C),
    pk = h.alloc(C),
    pout = h.alloc(rowsBN * C);
  row(
    "batchNorm fwd (train stats) 128×14×14×32",
    () => {
      const { mean, variance } = E.channelMoments(TX);
      E.batchNorm(TX, mean, variance, Tg, Tbeta, 1e-5);
    },
    () => {
      x.channel_moments(px, pmean, pvar, rowsBN, C, 0, C);
      x.bn_scale(pvar, pgam, pk, C, 1e-5);
      x.bn_apply(px, pmean, pk, pbet, pout, C, 0, rowsBN);
    },
    3,
  );
}

// Optimizer steps over the MLP 784-256-256-10 (268,800 parameters incl. biases)
{
  const P = 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10;
  const p0 = rand(P, 0.05),
    g0 = rand(P, 0.01);
  let params: Params = { w: new Tensor(Float32Array.from(p0), [P]) };
  const grads = { w: new Tensor(g0, [P]) };
  const ad = adam(1e-3);
  let st = ad.init(params);
  const pp = h.put(p0),
    pgr = h.put(g0),
    pm1 = h.alloc(P),
    pv1 = h.alloc(P);
  let t = 0;
  row(
    `Adam step ${P} params`,
    () => {
      const r = ad.update(grads, st, params);
      params = applyUpdates(params, r.updates);
      st = r.state;
    },
    () => {
      t++;
      x.adam_step(pp, pgr, pm1, pv1, P, 1e-3, 0.9, 0.999, 1e-8, 1 - 0.9 ** t, 1 - 0.999 ** t, 0);
    },
    5,
  );
  const mom = sgd(0.05, 0.9);
  let st2 = mom.init(params);
  row(
    `SGD momentum step ${P} params`,
    () => {
      const r = mom.update(grads, st2, params);
      params = applyUpdates(params, r.updates);
      st2 = r.state;
    },
    () => x.sgd_momentum_step(pp, pgr, pm1, P, 0.05, 0.9, 0),
    5,
  );
  const plain = sgd(0.05);
  row(
    `SGD step ${P} params`,
    () => {
      params = applyUpdates(params, plain.update(grads, { arrays: {}, scalars: {} }, params).updates);
    },
    () => x.sgd_step(pp, pgr, P, 0.05, 0),
    5,
  );
}

// Exact GC of MLP2D 2-64-64-2 (relu), batch 256: JS closed-form propagation vs the fused kernel (one thread)
for (const activation of ["relu", "tanh"] as const) {
  const net = compileNetwork({ kind: "mlp", sizes: [2, 64, 64, 2], activation });
  const params = initParams(net, {
    scheme: "he",
    distribution: "normal",
    scale: 1,
    bias: 0.1,
    seed: 3,
    dtype: "float32",
  });
  const nb = 256;
  const X = rand(nb * 2);
  const TX = new Tensor(X, [nb, 2]);
  const dense = net.layers.filter((l) => l.type === "dense") as { index: number; inSize: number; outSize: number }[];
  const table: number[] = [];
  for (const l of dense) {
    table.push(
      h.put(params[`layers.${l.index}.weight`].data),
      h.put(params[`layers.${l.index}.bias`].data),
      l.inSize,
      l.outSize,
    );
  }
  const pt = h.alloc(table.length);
  new Int32Array(h.memory.buffer, pt, table.length).set(table);
  const px = h.put(X),
    pout = h.alloc(2 * nb);
  const scratch = h.alloc((x.jacobian_mlp_scratch_bytes(2, pt, dense.length) as number) / 4);
  row(
    `MLP2D exact GC per-example norms, ${activation}, batch 256`,
    () => denseJacobianSqNorms(net, params, TX),
    () => x.jacobian_mlp_sqnorms(px, 2, pt, dense.length, activation === "relu" ? 1 : 2, scratch, pout, 0, nb),
    20,
  );
}
