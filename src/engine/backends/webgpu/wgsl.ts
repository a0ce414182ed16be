/**
 * WGSL sources of the WebGPU backend's kernels, one program per kernel and static variant (tfjs-backend-webgpu
 * style). Sizes and scalars come from a uniform slot of 64 words (`pu`/`pi`/`pf` read word i as u32/i32/f32), so a
 * pipeline serves every shape of its class. Binding 0 is the uniform slot; then read-only arrays, then outputs.
 *
 * Every reduction has a fixed order that depends on the shape only (no atomics, no races): the same inputs give
 * the same bits on every run. Sums that the JS reference accumulates in float64 use compensated (two-float)
 * accumulation here: hi + lo carries about 48 bits, so the rounded result matches float64 accumulation closely.
 */

/** Threads per workgroup of the 1-D kernels. */
export const WG = 256;
/** Threads per workgroup of the row kernels (one workgroup per row). */
export const ROW_WG = 64;

export const PRELUDE = /* wgsl */ `
@group(0) @binding(0) var<uniform> P: array<vec4<u32>, 16>;
fn pu(i: u32) -> u32 { return P[i >> 2u][i & 3u]; }
fn pi(i: u32) -> i32 { return bitcast<i32>(pu(i)); }
fn pf(i: u32) -> f32 { return bitcast<f32>(pu(i)); }
// NaN test on the bits (a compiler may assume v == v for floats).
fn isnan_(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }
`;

/** Declarations of read-only inputs then read-write outputs, bindings 1…k. */
export function bindings(reads: readonly string[], writes: readonly string[], type = "f32"): string {
  const r = reads.map((n, i) => `@group(0) @binding(${i + 1}) var<storage, read> ${n}: array<${type}>;`);
  const w = writes.map(
    (n, i) => `@group(0) @binding(${reads.length + i + 1}) var<storage, read_write> ${n}: array<${type}>;`,
  );
  return [...r, ...w].join("\n");
}

/** Entry of a 1-D kernel over a grid from `grid()`: `i` is the global thread index. */
export const ENTRY_1D = /* wgsl */ `
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nw.x + wid.x) * ${WG}u + lid;`;

/** Special functions shared by the elementwise kernels (float32, accurate to a few ulp where it matters). */
const MATH = /* wgsl */ `
fn sigmoid_(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}
// tanh without overflow and without cancellation near 0 (series below 0.25: next term < 1e-8 relative).
fn tanh_(x: f32) -> f32 {
  let a = abs(x);
  var t: f32;
  if (a < 0.25) {
    let a2 = a * a;
    t = a * (1.0 + a2 * (-1.0 / 3.0 + a2 * (2.0 / 15.0 + a2 * (-17.0 / 315.0 + a2 * (62.0 / 2835.0)))));
  } else if (a > 9.0) {
    t = 1.0;
  } else {
    let e = exp(-2.0 * a);
    t = (1.0 - e) / (1.0 + e);
  }
  return select(t, -t, x < 0.0);
}
// erf: the rational approximation of Eigen/XLA for float32 (odd numerator, even denominator), |x| clamped to 4.
fn erf_(x0: f32) -> f32 {
  let x = clamp(x0, -4.0, 4.0);
  let x2 = x * x;
  var p = x2 * -2.72614225801306e-10 + 2.77068142495902e-08;
  p = x2 * p + -2.10102402082508e-06;
  p = x2 * p + -5.69250639462346e-05;
  p = x2 * p + -7.34990630326855e-04;
  p = x2 * p + -2.95459980854025e-03;
  p = x2 * p + -1.60960333262415e-02;
  p = x * p;
  var q = x2 * -1.45660718464996e-05 + -2.13374055278905e-04;
  q = x2 * q + -1.68282697438203e-03;
  q = x2 * q + -7.37332916720468e-03;
  q = x2 * q + -1.42647390514189e-02;
  return p / q;
}
`;

/** Elementwise expressions of the unary kernel (x → value). */
export const UNARY_EXPR: Record<string, string> = {
  exp: "exp(x)",
  tanh: "tanh_(x)",
  sigmoid: "sigmoid_(x)",
  erf: "erf_(x)",
  silu: "x * sigmoid_(x)",
  geluErf: "0.5 * x * (1.0 + erf_(x * 0.7071067811865476))",
  geluTanh: "0.5 * x * (1.0 + tanh_(0.7978845608028654 * (x + 0.044715 * x * x * x)))",
};

/**
 * An elementwise kernel: `body` assigns outputs at index i from inputs read at i (n = word 0, scalars from word 1).
 */
export function elementwise(reads: readonly string[], writes: readonly string[], body: string, fns = ""): string {
  return `${PRELUDE}${MATH}${fns}
${bindings(reads, writes)}
${ENTRY_1D}
  if (i >= pu(0u)) { return; }
  ${body}
}`;
}

/** Fills out with the float in word 1. */
export const FILL = elementwise([], ["out"], "out[i] = pf(1u);");

/**
 * out = a ∘ b with broadcasting over rank ≤ 8 (after merging axes): word 0 n, 1 rank, 2 op (0 add, 1 sub, 2 mul,
 * 3 div), 8…15 shape, 16…23 a strides, 24…31 b strides (in elements).
 */
export const BROADCAST_BINARY = `${PRELUDE}${bindings(["a", "b"], ["out"])}
${ENTRY_1D}
  if (i >= pu(0u)) { return; }
  let r = pu(1u);
  var rem = i;
  var ia = 0u;
  var ib = 0u;
  for (var d = r; d > 0u; d = d - 1u) {
    let s = pu(7u + d);
    let c = rem % s;
    rem = rem / s;
    ia = ia + c * pu(15u + d);
    ib = ib + c * pu(23u + d);
  }
  let x = a[ia];
  let y = b[ib];
  switch (pu(2u)) {
    case 0u: { out[i] = x + y; }
    case 1u: { out[i] = x - y; }
    case 2u: { out[i] = x * y; }
    default: { out[i] = x / y; }
  }
}`;

/** Compensated (two-float) addition: (hi, lo) + v with Knuth's TwoSum (no branch, exact error term). */
export const TWO_SUM = /* wgsl */ `
fn add2(acc: vec2<f32>, v: f32) -> vec2<f32> {
  let s = acc.x + v;
  let bb = s - acc.x;
  let err = (acc.x - (s - bb)) + (v - bb);
  return vec2<f32>(s, acc.y + err);
}
fn add22(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  let s = add2(a, b.x);
  return vec2<f32>(s.x, s.y + b.y);
}
`;

/**
 * Column sums in chunks: thread t = (chunk c, column j) sums rows [c·chunk, min(rows, (c+1)·chunk)) of x [rows,
 * cols] in row order with compensation; writes hi, lo to part[(c·cols + j)·2 …]. Words: 0 rows, 1 cols, 2 chunk,
 * 3 chunks·cols.
 */
export const SUM_COLUMNS_PARTIAL = `${PRELUDE}${TWO_SUM}${bindings(["x"], ["part"])}
${ENTRY_1D}
  if (i >= pu(3u)) { return; }
  let rows = pu(0u);
  let cols = pu(1u);
  let chunk = pu(2u);
  let c = i / cols;
  let j = i % cols;
  let r1 = min(rows, (c + 1u) * chunk);
  var acc = vec2<f32>(0.0, 0.0);
  for (var r = c * chunk; r < r1; r = r + 1u) { acc = add2(acc, x[r * cols + j]); }
  part[2u * i] = acc.x;
  part[2u * i + 1u] = acc.y;
}`;

/** out[j] = Σ_c (hi + lo) of part [chunks, cols, 2], in chunk order. Words: 0 chunks, 1 cols. */
export const SUM_COLUMNS_FINAL = `${PRELUDE}${TWO_SUM}${bindings(["part"], ["out"])}
${ENTRY_1D}
  let chunks = pu(0u);
  let cols = pu(1u);
  if (i >= cols) { return; }
  var acc = vec2<f32>(0.0, 0.0);
  for (var c = 0u; c < chunks; c = c + 1u) {
    acc = add22(acc, vec2<f32>(part[2u * (c * cols + i)], part[2u * (c * cols + i) + 1u]));
  }
  out[i] = acc.x + acc.y;
}`;

/** Entry of a row kernel: one workgroup of ROW_WG threads per row (`row`, thread `t`). */
const ENTRY_ROW = /* wgsl */ `
@compute @workgroup_size(${ROW_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
  let row = wid.y * nw.x + wid.x;
  let rows = pu(0u);
  let cols = pu(1u);
  let valid = row < rows;
  let base = row * cols;`;

/** Tree reduction over the workgroup of shared array `name` with combine(a, b) (fixed order). */
function treeReduce(name: string, combine: (a: string, b: string) => string): string {
  let s = "";
  for (let step = ROW_WG / 2; step >= 1; step /= 2) {
    s += `  if (t < ${step}u) { ${name}[t] = ${combine(`${name}[t]`, `${name}[t + ${step}u]`)}; }\n  workgroupBarrier();\n`;
  }
  return s;
}

/** out[row] = Σ_j x[row, j] (compensated). Words: 0 rows, 1 cols. */
export const SUM_ROWS = `${PRELUDE}${TWO_SUM}${bindings(["x"], ["out"])}
var<workgroup> sh: array<vec2<f32>, ${ROW_WG}>;
${ENTRY_ROW}
  var acc = vec2<f32>(0.0, 0.0);
  if (valid) { for (var j = t; j < cols; j = j + ${ROW_WG}u) { acc = add2(acc, x[base + j]); } }
  sh[t] = acc;
  workgroupBarrier();
${treeReduce("sh", (a, b) => `add22(${a}, ${b})`)}
  if (valid && t == 0u) { out[row] = sh[0].x + sh[0].y; }
}`;

/** Row max, then Σ exp(x − max) of one row, shared by softmax and log-sum-exp (leaves mx and s). */
const ROW_MAX_SUMEXP = /* wgsl */ `
  var m = -3.4028234663852886e38;
  var any_nan = false;
  if (valid) {
    for (var j = t; j < cols; j = j + ${ROW_WG}u) {
      let v = x[base + j];
      m = max(m, v);
      any_nan = any_nan || isnan_(v);
    }
  }
  shm[t] = select(m, bitcast<f32>(0x7fc00000u | (pu(0u) & 0u)), any_nan); // a NaN built at run time (constants may not be NaN)
  workgroupBarrier();
${treeReduce("shm", (a, b) => `select(max(${a}, ${b}), ${a} + ${b}, isnan_(${a}) || isnan_(${b}))`)}
  let mx = shm[0];
  workgroupBarrier();
  var acc = vec2<f32>(0.0, 0.0);
  if (valid) { for (var j = t; j < cols; j = j + ${ROW_WG}u) { acc = add2(acc, exp(x[base + j] - mx)); } }
  shs[t] = acc;
  workgroupBarrier();
${treeReduce("shs", (a, b) => `add22(${a}, ${b})`)}
  let s = shs[0].x + shs[0].y;`;

const ROW_SHARED = `var<workgroup> shm: array<f32, ${ROW_WG}>;\nvar<workgroup> shs: array<vec2<f32>, ${ROW_WG}>;`;

/** Row-wise softmax of x [rows, cols]. Words: 0 rows, 1 cols. */
export const SOFTMAX_ROWS = `${PRELUDE}${TWO_SUM}${bindings(["x"], ["out"])}
${ROW_SHARED}
${ENTRY_ROW}
${ROW_MAX_SUMEXP}
  if (valid) { for (var j = t; j < cols; j = j + ${ROW_WG}u) { out[base + j] = exp(x[base + j] - mx) / s; } }
}`;

/** Row-wise log Σ exp of x [rows, cols] → [rows]. Words: 0 rows, 1 cols. */
export const LOGSUMEXP_ROWS = `${PRELUDE}${TWO_SUM}${bindings(["x"], ["out"])}
${ROW_SHARED}
${ENTRY_ROW}
${ROW_MAX_SUMEXP}
  if (valid && t == 0u) { out[row] = mx + log(s); }
}`;

/** Tile sizes of the GEMM: TM×TN outputs per workgroup of 16×16 threads (4×4 each), K in steps of TK. */
export const GEMM_TILE = 64;
const TK = 16;

/**
 * C[M,N] = op(A)·op(B) (+ bias[n]) (then max(·, 0)) with A stored [K,M] when transA, B stored [N,K] when transB.
 * 64×64 tile per workgroup, operands staged in workgroup memory in K-steps of 16; fma accumulation in k order.
 * Words: 0 M, 1 K, 2 N.
 */
export function gemm(transA: boolean, transB: boolean, bias: boolean, relu: boolean): string {
  const aAt = transA ? "A[k * M + m]" : "A[m * K + k]";
  const bAt = transB ? "B[n * K + kb]" : "B[kb * N + n]";
  const reads = bias ? ["A", "B", "bias"] : ["A", "B"];
  let v = "acc[i][j]";
  if (bias) v = `(${v} + bias[n])`;
  if (relu) v = `max(${v}, 0.0)`;
  return `${PRELUDE}${bindings(reads, ["C"])}
var<workgroup> As: array<array<f32, ${GEMM_TILE}>, ${TK}>;
var<workgroup> Bs: array<array<f32, ${GEMM_TILE}>, ${TK}>;
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let M = pu(0u);
  let K = pu(1u);
  let N = pu(2u);
  let row0 = wg.y * ${GEMM_TILE}u;
  let col0 = wg.x * ${GEMM_TILE}u;
  let tid = lid.y * 16u + lid.x;
  var acc: array<array<f32, 4>, 4>;
  for (var k0 = 0u; k0 < K; k0 = k0 + ${TK}u) {
    for (var q = 0u; q < 4u; q = q + 1u) {
      let idx = tid + q * 256u;
      // A tile: 64 rows (m) × 16 k; B tile: 16 k × 64 columns (n). Out-of-range entries are 0.
      let ar = idx % ${GEMM_TILE}u;
      let ak = idx / ${GEMM_TILE}u;
      var av = 0.0;
      let m = row0 + ar;
      let k = k0 + ak;
      if (m < M && k < K) { av = ${aAt}; }
      As[ak][ar] = av;
      let bn = idx % ${GEMM_TILE}u;
      let bk = idx / ${GEMM_TILE}u;
      var bv = 0.0;
      let n = col0 + bn;
      let kb = k0 + bk;
      if (n < N && kb < K) { bv = ${bAt}; }
      Bs[bk][bn] = bv;
    }
    workgroupBarrier();
    let kEnd = min(${TK}u, K - k0);
    for (var kk = 0u; kk < kEnd; kk = kk + 1u) {
      var a: array<f32, 4>;
      var b: array<f32, 4>;
      for (var i = 0u; i < 4u; i = i + 1u) {
        a[i] = As[kk][lid.y * 4u + i];
        b[i] = Bs[kk][lid.x * 4u + i];
      }
      for (var i = 0u; i < 4u; i = i + 1u) {
        for (var j = 0u; j < 4u; j = j + 1u) { acc[i][j] = fma(a[i], b[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i = i + 1u) {
    let m = row0 + lid.y * 4u + i;
    if (m >= M) { continue; }
    for (var j = 0u; j < 4u; j = j + 1u) {
      let n = col0 + lid.x * 4u + j;
      if (n < N) { C[m * N + n] = ${v}; }
    }
  }
}`;
}

/**
 * Window geometry words shared by the convolution, pooling and im2col kernels (kernels.ts `winParams`): 1 n, 2 h,
 * 3 w, 4 c, 5 c0, 6 cg (the channel range a grouped window reads), 7 kh, 8 kw, 9 sh, 10 sw, 11 dh, 12 dw,
 * 13 padTop, 14 padLeft, 15 outH, 16 outW, 17 a flag (countIncludePad), 18 cout, 19 chunk, 20 weight count
 * (word 0: the thread count).
 */
export const GEOM = /* wgsl */ `
  let n = pu(1u); let h = pu(2u); let w = pu(3u); let c = pu(4u); let c0 = pu(5u); let cg = pu(6u);
  let kh = pu(7u); let kw = pu(8u); let sh = pu(9u); let sw = pu(10u); let dh = pu(11u); let dw = pu(12u);
  let padTop = i32(pu(13u)); let padLeft = i32(pu(14u)); let outH = pu(15u); let outW = pu(16u);
  let flag = pu(17u); let cout = pu(18u);`;

/** Thread i as an NHWC output position: channel `ch` of `channels`, pixel (oy, ox) of image b. */
export function outputPosition(channels: string, ch: string): string {
  return `
  let ${ch} = i % ${channels};
  let p = i / ${channels};
  let ox = p % outW;
  let oy = (p / outW) % outH;
  let b = p / (outW * outH);`;
}

/** Thread i as an NHWC input position: channel `ch`, pixel (iy, ix) (as i32) of image b. */
export function inputPosition(ch: string): string {
  return `
  let ${ch} = i % c;
  let p = i / c;
  let ix = i32(p % w);
  let iy = i32((p / w) % h);
  let b = p / (w * h);`;
}

/** `body` for each window offset (ky, kx) of output pixel (oy, ox) that lies inside the image (iy, ix as i32). */
export function insideWindow(body: string): string {
  return `
  for (var ky = 0u; ky < kh; ky = ky + 1u) {
    let iy = i32(oy * sh + ky * dh) - padTop;
    if (iy < 0 || iy >= i32(h)) { continue; }
    for (var kx = 0u; kx < kw; kx = kx + 1u) {
      let ix = i32(ox * sw + kx * dw) - padLeft;
      if (ix < 0 || ix >= i32(w)) { continue; }
      ${body}
    }
  }`;
}

/** y [n, outH, outW, cout] = conv(x [n,h,w,c], wt [cout,kh,kw,c]): one thread per output, sum in (ky, kx, ci) order. */
export const CONV_FORWARD = `${PRELUDE}${bindings(["x", "wt"], ["y"])}
${ENTRY_1D}
  if (i >= pu(0u)) { return; }
${GEOM}${outputPosition("cout", "co")}
  var acc = 0.0;${insideWindow(`
      let xo = ((b * h + u32(iy)) * w + u32(ix)) * c;
      let wo = ((co * kh + ky) * kw + kx) * c;
      for (var ci = 0u; ci < c; ci = ci + 1u) { acc = fma(x[xo + ci], wt[wo + ci], acc); }`)}
  y[i] = acc;
}`;

/** dx [n,h,w,c] from dy [n,outH,outW,cout] and wt: one thread per input element, sum in (ky, kx, co) order. */
export const CONV_INPUT = `${PRELUDE}${bindings(["dy", "wt"], ["dx"])}
${ENTRY_1D}
  if (i >= pu(0u)) { return; }
${GEOM}${inputPosition("ci")}
  var acc = 0.0;
  for (var ky = 0u; ky < kh; ky = ky + 1u) {
    let ty = iy + padTop - i32(ky * dh);
    if (ty < 0 || ty % i32(sh) != 0) { continue; }
    let oy = u32(ty) / sh;
    if (oy >= outH) { continue; }
    for (var kx = 0u; kx < kw; kx = kx + 1u) {
      let tx = ix + padLeft - i32(kx * dw);
      if (tx < 0 || tx % i32(sw) != 0) { continue; }
      let ox = u32(tx) / sw;
      if (ox >= outW) { continue; }
      let dyo = ((b * outH + oy) * outW + ox) * cout;
      for (var co = 0u; co < cout; co = co + 1u) {
        acc = fma(dy[dyo + co], wt[((co * kh + ky) * kw + kx) * c + ci], acc);
      }
    }
  }
  dx[i] = acc;
}`;

/**
 * Partial filter gradients: thread (chunk q, weight e) sums dy ⊗ x patches over output pixels [q·chunk, (q+1)·chunk)
 * in pixel order, writing (hi, lo) to part[(q·wsize + e)·2 …] for SUM_COLUMNS_FINAL. Words 19 chunk, 20 wsize.
 */
export const CONV_FILTER_PARTIAL = `${PRELUDE}${TWO_SUM}${bindings(["x", "dy"], ["part"])}
${ENTRY_1D}
  if (i >= pu(0u)) { return; }
${GEOM}
  let chunk = pu(19u);
  let wsize = pu(20u);
  let e = i % wsize;
  let q = i / wsize;
  let ci = e % c;
  let kx = (e / c) % kw;
  let ky = (e / (c * kw)) % kh;
  let co = e / (c * kw * kh);
  let pixels = n * outH * outW;
  let p1 = min(pixels, (q + 1u) * chunk);
  var acc = vec2<f32>(0.0, 0.0);
  for (var p = q * chunk; p < p1; p = p + 1u) {
    let ox = p % outW;
    let oy = (p / outW) % outH;
    let b = p / (outW * outH);
    let iy = i32(oy * sh + ky * dh) - padTop;
    let ix = i32(ox * sw + kx * dw) - padLeft;
    if (iy < 0 || iy >= i32(h) || ix < 0 || ix >= i32(w)) { continue; }
    acc = add2(acc, x[((b * h + u32(iy)) * w + u32(ix)) * c + ci] * dy[p * cout + co]);
  }
  part[2u * i] = acc.x;
  part[2u * i + 1u] = acc.y;
}`;

/**
 * Max pooling of NHWC x: y and the flat argmax index (int32) of each window; padded
 * positions never win, ties go to the first in scan order and a NaN wins (PyTorch).
 */
export const MAX_POOL = `${PRELUDE}${bindings(["x"], ["y"])}
@group(0) @binding(3) var<storage, read_write> idx: array<i32>;
${ENTRY_1D}
  if (i >= pu(0u)) { return; }
${GEOM}${outputPosition("c", "ch")}
  var best = 0.0;
  var at = -1;${insideWindow(`
      let a = i32(((b * h + u32(iy)) * w + u32(ix)) * c + ch);
      let v = x[a];
      if (at < 0 || v > best || isnan_(v)) { best = v; at = a; }`)}
  y[i] = best;
  idx[i] = at;
}`;
