// Reductions, softmax and softmax cross-entropy over float32 data (issue 11). Pointers are byte offsets, row-major.
// Every reduction has one fixed order, so results never depend on how a caller splits rows or columns across
// threads (a split covers whole rows or whole columns, never part of one sum).
//
// Column sums (bias gradients, per-channel moments) run over rows in order for each column, sixteen columns at a time
// in SIMD lanes: the same additions as the JS loops, so they are bit-identical to them. Whole-tensor sums use eight
// f64 lanes (a fixed order, not the JS one); sum_sequential keeps the JS order.

import { exp4, expDiff4 } from "./simdmath";

// ---- Whole-tensor sums ----

// Σ x (or Σ fl32(x²) when `squares`, a constant per caller) in eight interleaved f64 lanes, then the tail in order.
// @ts-ignore: decorator
@inline function laneSum(x: usize, n: i32, squares: bool): f64 {
  const n8 = <usize>(n & ~7) << 2, end = <usize>n << 2;
  let a0 = f64x2.splat(0), a1 = f64x2.splat(0), a2 = f64x2.splat(0), a3 = f64x2.splat(0);
  let i: usize = 0;
  for (; i < n8; i += 32) {
    let u = v128.load(x + i), w = v128.load(x + i, 16);
    if (squares) {
      u = f32x4.mul(u, u);
      w = f32x4.mul(w, w);
    }
    a0 = f64x2.add(a0, lo2(u));
    a1 = f64x2.add(a1, hi2(u));
    a2 = f64x2.add(a2, lo2(w));
    a3 = f64x2.add(a3, hi2(w));
  }
  const t = f64x2.add(f64x2.add(a0, a1), f64x2.add(a2, a3));
  let s = f64x2.extract_lane(t, 0) + f64x2.extract_lane(t, 1);
  for (; i < end; i += 4) {
    const v = load<f32>(x + i);
    s += squares ? <f64>(v * v) : <f64>v;
  }
  return s;
}

/** Σ x over n values, accumulated in f64 in eight interleaved lanes (fixed order; within ~1e-16 of the JS sum). */
export function sum(x: usize, n: i32): f64 {
  return laneSum(x, n, false);
}

/** Σ x in index order in f64: bit-identical to ops.sum (before its result is rounded to float32). */
export function sum_sequential(x: usize, n: i32): f64 {
  const end = <usize>n << 2;
  let s: f64 = 0;
  for (let i: usize = 0; i < end; i += 4) s += <f64>load<f32>(x + i);
  return s;
}

/** Σ fl32(x²) in eight f64 lanes (ops.sumSquares = sum(mul(a, a)): squares rounded to float32 first). */
export function sum_squares(x: usize, n: i32): f64 {
  return laneSum(x, n, true);
}

// ---- Row sums ----

// x, or fl32(x²) when `squares` (a constant at every call site, so each caller compiles to its own loop).
// @ts-ignore: decorator
@inline function term(v: f32, squares: bool): f64 {
  return squares ? <f64>(v * v) : <f64>v;
}

// out[r] = Σ_j term(x[r, j]) in f64, column order; four rows at a time (independent chains for instruction-level
// parallelism, each row's order unchanged).
// @ts-ignore: decorator
@inline function rowSums(x: usize, out: usize, cols: i32, r0: i32, r1: i32, squares: bool): void {
  const ld = <usize>cols << 2, end = <usize>cols << 2;
  let r = r0;
  for (; r + 3 < r1; r += 4) {
    const p0 = x + <usize>r * ld, p1 = p0 + ld, p2 = p1 + ld, p3 = p2 + ld;
    let s0: f64 = 0, s1: f64 = 0, s2: f64 = 0, s3: f64 = 0;
    for (let j: usize = 0; j < end; j += 4) {
      s0 += term(load<f32>(p0 + j), squares);
      s1 += term(load<f32>(p1 + j), squares);
      s2 += term(load<f32>(p2 + j), squares);
      s3 += term(load<f32>(p3 + j), squares);
    }
    const o = out + (<usize>r << 2);
    store<f32>(o, <f32>s0);
    store<f32>(o, <f32>s1, 4);
    store<f32>(o, <f32>s2, 8);
    store<f32>(o, <f32>s3, 12);
  }
  for (; r < r1; r++) {
    const p = x + <usize>r * ld;
    let s: f64 = 0;
    for (let j: usize = 0; j < end; j += 4) s += term(load<f32>(p + j), squares);
    store<f32>(out + (<usize>r << 2), <f32>s);
  }
}

/** out[r] = Σ_j x[r, j] for rows [r0, r1) of a [rows, cols] matrix, f64 in column order (bit-identical to ops.sumRows). */
export function sum_rows(x: usize, out: usize, cols: i32, r0: i32, r1: i32): void {
  rowSums(x, out, cols, r0, r1, false);
}

// ---- Column sums ----

/**
 * out[c] = Σ_r x[r, c] for columns [c0, c1) of a [rows, cols] matrix, accumulated in float32 over rows in order:
 * bit-identical to ops.sumToLastAxis (the bias gradient as the JS engine computes it).
 */
export function sum_columns(x: usize, out: usize, rows: i32, cols: i32, c0: i32, c1: i32): void {
  const ld = <usize>cols << 2;
  let c = c0;
  for (; c + 15 < c1; c += 16) {
    let p = x + (<usize>c << 2);
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let r = 0; r < rows; r++, p += ld) {
      a0 = f32x4.add(a0, v128.load(p));
      a1 = f32x4.add(a1, v128.load(p, 16));
      a2 = f32x4.add(a2, v128.load(p, 32));
      a3 = f32x4.add(a3, v128.load(p, 48));
    }
    const o = out + (<usize>c << 2);
    v128.store(o, a0);
    v128.store(o, a1, 16);
    v128.store(o, a2, 32);
    v128.store(o, a3, 48);
  }
  for (; c + 3 < c1; c += 4) {
    let p = x + (<usize>c << 2);
    let a0 = f32x4.splat(0);
    for (let r = 0; r < rows; r++, p += ld) a0 = f32x4.add(a0, v128.load(p));
    v128.store(out + (<usize>c << 2), a0);
  }
  for (; c < c1; c++) {
    let p = x + (<usize>c << 2);
    let s: f32 = 0;
    for (let r = 0; r < rows; r++, p += ld) s += load<f32>(p);
    store<f32>(out + (<usize>c << 2), s);
  }
}

// Four float32 lanes (x, or fl32((x − m)²) when centered) as two f64x2 halves added to the accumulators lo, hi.
// @ts-ignore: decorator
@inline function term4(v: v128, m: v128, centered: bool): v128 {
  if (!centered) return v;
  const d = f32x4.sub(v, m);
  return f32x4.mul(d, d);
}
// @ts-ignore: decorator
@inline function lo2(v: v128): v128 {
  return f64x2.promote_low_f32x4(v);
}
// @ts-ignore: decorator
@inline function hi2(v: v128): v128 {
  return f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1));
}
// fl32(fl32(lo|hi)·scale): the JS sum's float32 storage, then its affine scale (f64) rounded again.
// @ts-ignore: decorator
@inline function finish4(lo: v128, hi: v128, vs: v128): v128 {
  const a = f64x2.mul(f64x2.promote_low_f32x4(f32x4.demote_f64x2_zero(lo)), vs);
  const b = f64x2.mul(f64x2.promote_low_f32x4(f32x4.demote_f64x2_zero(hi)), vs);
  return i32x4.shuffle(f32x4.demote_f64x2_zero(a), f32x4.demote_f64x2_zero(b), 0, 1, 4, 5);
}

// Columns [c, c + 16) over all rows in f64: eight independent f64x2 chains, so the sequential per-column order
// (which keeps the bits of the JS loops) costs no add latency.
// @ts-ignore: decorator
@inline function colBlock16(x: usize, ld: usize, rows: i32, c: i32, mean: usize, centered: bool, out: usize, scale: f64): void {
  const off = <usize>c << 2;
  let p = x + off;
  let a0 = f64x2.splat(0), a1 = f64x2.splat(0), a2 = f64x2.splat(0), a3 = f64x2.splat(0);
  let a4 = f64x2.splat(0), a5 = f64x2.splat(0), a6 = f64x2.splat(0), a7 = f64x2.splat(0);
  const z = f32x4.splat(0);
  const m0 = centered ? v128.load(mean + off) : z, m1 = centered ? v128.load(mean + off, 16) : z;
  const m2 = centered ? v128.load(mean + off, 32) : z, m3 = centered ? v128.load(mean + off, 48) : z;
  for (let r = 0; r < rows; r++, p += ld) {
    const u0 = term4(v128.load(p), m0, centered), u1 = term4(v128.load(p, 16), m1, centered);
    const u2 = term4(v128.load(p, 32), m2, centered), u3 = term4(v128.load(p, 48), m3, centered);
    a0 = f64x2.add(a0, lo2(u0)); a1 = f64x2.add(a1, hi2(u0));
    a2 = f64x2.add(a2, lo2(u1)); a3 = f64x2.add(a3, hi2(u1));
    a4 = f64x2.add(a4, lo2(u2)); a5 = f64x2.add(a5, hi2(u2));
    a6 = f64x2.add(a6, lo2(u3)); a7 = f64x2.add(a7, hi2(u3));
  }
  const o = out + off, vs = f64x2.splat(scale);
  v128.store(o, finish4(a0, a1, vs));
  v128.store(o, finish4(a2, a3, vs), 16);
  v128.store(o, finish4(a4, a5, vs), 32);
  v128.store(o, finish4(a6, a7, vs), 48);
}

// Columns [c, c + 4): two chains.
// @ts-ignore: decorator
@inline function colBlock4(x: usize, ld: usize, rows: i32, c: i32, mean: usize, centered: bool, out: usize, scale: f64): void {
  const off = <usize>c << 2;
  let p = x + off;
  let a0 = f64x2.splat(0), a1 = f64x2.splat(0);
  const m0 = centered ? v128.load(mean + off) : f32x4.splat(0);
  for (let r = 0; r < rows; r++, p += ld) {
    const u = term4(v128.load(p), m0, centered);
    a0 = f64x2.add(a0, lo2(u));
    a1 = f64x2.add(a1, hi2(u));
  }
  v128.store(out + off, finish4(a0, a1, f64x2.splat(scale)));
}

// @ts-ignore: decorator
@inline function colOne(x: usize, ld: usize, rows: i32, c: i32, mean: usize, centered: bool, out: usize, scale: f64): void {
  let p = x + (<usize>c << 2);
  const m = centered ? load<f32>(mean + (<usize>c << 2)) : <f32>0;
  let s: f64 = 0;
  for (let r = 0; r < rows; r++, p += ld) {
    let v = load<f32>(p);
    if (centered) {
      v = v - m;
      v = v * v;
    }
    s += <f64>v;
  }
  store<f32>(out + (<usize>c << 2), <f32>(<f64><f32>s * scale));
}

function columnSums64(x: usize, out: usize, rows: i32, cols: i32, c0: i32, c1: i32, mean: usize, centered: bool,
  scale: f64): void {
  const ld = <usize>cols << 2;
  let c = c0;
  for (; c + 15 < c1; c += 16) colBlock16(x, ld, rows, c, mean, centered, out, scale);
  for (; c + 3 < c1; c += 4) colBlock4(x, ld, rows, c, mean, centered, out, scale);
  for (; c < c1; c++) colOne(x, ld, rows, c, mean, centered, out, scale);
}

/**
 * out[c] = fl32(Σ_r x[r, c]) accumulated in f64 over rows in order, for columns [c0, c1): bit-identical to
 * kernels.ts sumToShape (elementwise sumTo / reduceSum over leading axes).
 */
export function sum_columns_f64(x: usize, out: usize, rows: i32, cols: i32, c0: i32, c1: i32): void {
  columnSums64(x, out, rows, cols, c0, c1, 0, false, 1.0);
}

/**
 * Per-channel mean and biased variance of x [rows, C] (NHWC flattened: rows = N·H·W) for channels [c0, c1):
 * mean = Σx/rows, var = Σ fl32(x − mean)²/rows, as elementwise.channelMoments computes them (bit-identical).
 */
export function channel_moments(x: usize, mean: usize, variance: usize, rows: i32, C: i32, c0: i32, c1: i32): void {
  const inv = 1.0 / <f64>rows;
  columnSums64(x, mean, rows, C, c0, c1, 0, false, inv);
  columnSums64(x, variance, rows, C, c0, c1, mean, true, inv);
}

// ---- Softmax family ----

// @ts-ignore: decorator
@inline function rowMax(p: usize, cols: i32): f32 {
  const c4 = <usize>(cols & ~3) << 2, end = <usize>cols << 2;
  let m = f32x4.splat(-Infinity);
  let j: usize = 0;
  for (; j < c4; j += 16) m = f32x4.max(m, v128.load(p + j)); // wasm max: a NaN wins, as Math.max
  let mx = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
  for (; j < end; j += 4) mx = max(mx, load<f32>(p + j));
  return mx;
}

// e_j = exp(x_j − mx) into o (when o != 0), returns Σ e_j in f64 (two f64 lanes, fixed order).
// @ts-ignore: decorator
@inline function rowExpSum(p: usize, o: usize, cols: i32, mx: f32): f64 {
  const c4 = <usize>(cols & ~3) << 2, end = <usize>cols << 2;
  const vm = f32x4.splat(mx);
  let acc = f64x2.splat(0);
  let j: usize = 0;
  for (; j < c4; j += 16) {
    const e = expDiff4(v128.load(p + j), vm);
    if (o) v128.store(o + j, e);
    acc = f64x2.add(acc, f64x2.add(f64x2.promote_low_f32x4(e), f64x2.promote_low_f32x4(i32x4.shuffle(e, e, 2, 3, 0, 1))));
  }
  let s = f64x2.extract_lane(acc, 0) + f64x2.extract_lane(acc, 1);
  for (; j < end; j += 4) {
    const e = f32x4.extract_lane(expDiff4(f32x4.splat(load<f32>(p + j)), f32x4.splat(mx)), 0);
    if (o) store<f32>(o + j, e);
    s += <f64>e;
  }
  return s;
}

/** out[r, :] = softmax(x[r, :]) for rows [r0, r1) of [rows, cols] (ops.softmax). */
export function softmax_rows(x: usize, out: usize, cols: i32, r0: i32, r1: i32): void {
  const ld = <usize>cols << 2, c4 = <usize>(cols & ~3) << 2, end = <usize>cols << 2;
  for (let r = r0; r < r1; r++) {
    const p = x + <usize>r * ld, o = out + <usize>r * ld;
    const s = <f32>rowExpSum(p, o, cols, rowMax(p, cols));
    const vs = f32x4.splat(s);
    let j: usize = 0;
    for (; j < c4; j += 16) v128.store(o + j, f32x4.div(v128.load(o + j), vs));
    for (; j < end; j += 4) store<f32>(o + j, load<f32>(o + j) / s);
  }
}

/** out[r] = log Σ_j exp(x[r, j]) for rows [r0, r1) (ops.logSumExpRows; max-shifted, log in f64). */
export function logsumexp_rows(x: usize, out: usize, cols: i32, r0: i32, r1: i32): void {
  const ld = <usize>cols << 2;
  for (let r = r0; r < r1; r++) {
    const p = x + <usize>r * ld;
    const mx = rowMax(p, cols);
    store<f32>(out + (<usize>r << 2), <f32>(<f64>mx + Math.log(rowExpSum(p, 0, cols, mx))));
  }
}

// logsumexp(z_r) − z_{r,y} with the JS rounding points (logsumexp stored in float32, difference in f64).
// An out-of-range label picks nothing (0), as the JS one-hot product does.
// @ts-ignore: decorator
@inline function rowLoss(p: usize, cols: i32, y: i32): f32 {
  const mx = rowMax(p, cols);
  const lse = <f32>(<f64>mx + Math.log(rowExpSum(p, 0, cols, mx)));
  const zy: f32 = y >= 0 && y < cols ? load<f32>(p + (<usize>y << 2)) : 0;
  return <f32>(<f64>lse - <f64>zy);
}

/** loss[r] = logsumexp(z_r) − z_{r, labels[r]} for rows [r0, r1); labels are int32. */
export function softmax_ce_rows(logits: usize, labels: usize, loss: usize, cols: i32, r0: i32, r1: i32): void {
  const ld = <usize>cols << 2;
  for (let r = r0; r < r1; r++) {
    store<f32>(loss + (<usize>r << 2), rowLoss(logits + <usize>r * ld, cols, load<i32>(labels + (<usize>r << 2))));
  }
}

/**
 * Mean softmax cross-entropy of logits [rows, cols] against int32 labels (losses.softmaxCrossEntropy): the row
 * losses summed in f64 in row order, rounded to float32, times 1/rows in f64, rounded to float32. Single-threaded
 * (the whole reduction in one call).
 */
export function softmax_ce_mean(logits: usize, labels: usize, rows: i32, cols: i32): f32 {
  const ld = <usize>cols << 2;
  let s: f64 = 0;
  for (let r = 0; r < rows; r++) s += <f64>rowLoss(logits + <usize>r * ld, cols, load<i32>(labels + (<usize>r << 2)));
  return <f32>(<f64><f32>s * (1.0 / <f64>rows));
}

/**
 * grad[r, :] = (softmax(z_r) − onehot(labels[r]))·scale for rows [r0, r1): the gradient of the mean loss with
 * scale = 1/rows (times an upstream gradient if there is one). grad may alias logits.
 */
export function softmax_ce_grad(logits: usize, labels: usize, grad: usize, cols: i32, scale: f32, r0: i32, r1: i32): void {
  const ld = <usize>cols << 2, c4 = <usize>(cols & ~3) << 2, end = <usize>cols << 2;
  for (let r = r0; r < r1; r++) {
    const p = logits + <usize>r * ld, o = grad + <usize>r * ld;
    const y = load<i32>(labels + (<usize>r << 2));
    const hit = y >= 0 && y < cols;
    const zy: f32 = hit ? load<f32>(p + (<usize>y << 2)) : 0; // read before o (which may alias p) is written
    const mx = rowMax(p, cols);
    const s = <f32>rowExpSum(p, o, cols, mx);
    const vs = f32x4.splat(s), vk = f32x4.splat(scale);
    let j: usize = 0;
    for (; j < c4; j += 16) v128.store(o + j, f32x4.mul(f32x4.div(v128.load(o + j), vs), vk));
    for (; j < end; j += 4) store<f32>(o + j, (load<f32>(o + j) / s) * scale);
    if (hit) {
      const ey = f32x4.extract_lane(expDiff4(f32x4.splat(zy), f32x4.splat(mx)), 0); // the value stored above
      store<f32>(o + (<usize>y << 2), (ey / s - 1) * scale);
    }
  }
}

// ---- Per-example pieces of the closed-form Jacobian propagation (measures/denseJacobian.ts) ----

/** out[r] = Σ_j fl32(x[r, j]²) in f64, column order, for rows [r0, r1): bit-identical to ops.sumRows(mul(x, x)). */
export function sum_rows_squares(x: usize, out: usize, cols: i32, r0: i32, r1: i32): void {
  rowSums(x, out, cols, r0, r1, true);
}

/**
 * For examples b in [b0, b1) of x [batch·k, cols] (k consecutive rows per example, as the k pushed-back Jacobian
 * rows of denseJacobian.ts): out[b] (f64) = Σ over the example's k rows of Σ_j x·y (y = x gives ‖rows‖²; y = Δ and
 * x = Δ·Gram gives the quadratic form). Products and sums in f64, row by row in the JS order (bit-identical to
 * denseJacobianSqNorms' final loops); out must be 8-byte aligned.
 */
export function group_dots(x: usize, y: usize, out: usize, k: i32, cols: i32, b0: i32, b1: i32): void {
  const ld = <usize>cols << 2, end = <usize>cols << 2;
  for (let b = b0; b < b1; b++) {
    let total: f64 = 0;
    for (let c = 0; c < k; c++) {
      const r = <usize>(b * k + c) * ld;
      const px = x + r, py = y + r;
      let s: f64 = 0;
      for (let j: usize = 0; j < end; j += 4) s += <f64>load<f32>(px + j) * <f64>load<f32>(py + j);
      total += s;
    }
    store<f64>(out + (<usize>b << 3), total);
  }
}

/**
 * out[(b·k + c), j] = x[(b·k + c), j] · m[b, j] for examples b in [b0, b1), c < k: each example's row of m
 * (an activation derivative) applied to its k Jacobian rows (denseJacobian.ts; bit-identical).
 */
export function mul_repeated_rows(x: usize, m: usize, out: usize, k: i32, cols: i32, b0: i32, b1: i32): void {
  const ld = <usize>cols << 2, c4 = <usize>(cols & ~3) << 2;
  for (let b = b0; b < b1; b++) {
    const mr = m + <usize>b * ld;
    for (let c = 0; c < k; c++) {
      const r = <usize>(b * k + c) * ld;
      const px = x + r, po = out + r;
      let j: usize = 0;
      for (; j < c4; j += 16) v128.store(po + j, f32x4.mul(v128.load(px + j), v128.load(mr + j)));
      for (; j < ld; j += 4) store<f32>(po + j, load<f32>(px + j) * load<f32>(mr + j));
    }
  }
}
