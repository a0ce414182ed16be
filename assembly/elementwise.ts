// Elementwise float32 kernels (issue 11). Every tensor argument is a byte offset into linear memory (row-major f32);
// n counts elements. Flat kernels take no row range: a caller splitting one across threads offsets the pointers
// (by multiples of 4 elements to keep 16-byte alignment). Output may alias an input (in-place use is allowed).
//
// Exactness: add/sub/mul/div, bias add, relu, mulConst, oneMinusSquare and the f32 scalar product equal the JS
// loops bit for bit (a float32 operation equals the float64 one rounded). affine, scale and leakyRelu take their
// scalars as f64 and compute in f64 like the JS engine does, so they are bit-identical too. exp, tanh, sigmoid,
// silu and gelu(tanh) use the f32x4 polynomials of simdmath.ts (a few float32 ulps; see the tests); erf,
// gelu(erf) and softplus compute in f64 with the JS engine's own algorithms.

import { exp4, exp4lo, tanh4, sigmoid4, exp1, tanh1, sigmoid1 } from "./simdmath";

// ---- Same-shape binary ----

/** out = a + b (n elements). */
export function ew_add(a: usize, b: usize, out: usize, n: i32): void {
  const n4 = <usize>(n & ~3) << 2, end = <usize>n << 2;
  let i: usize = 0;
  for (; i < n4; i += 16) v128.store(out + i, f32x4.add(v128.load(a + i), v128.load(b + i)));
  for (; i < end; i += 4) store<f32>(out + i, load<f32>(a + i) + load<f32>(b + i));
}

/** out = a − b. */
export function ew_sub(a: usize, b: usize, out: usize, n: i32): void {
  const n4 = <usize>(n & ~3) << 2, end = <usize>n << 2;
  let i: usize = 0;
  for (; i < n4; i += 16) v128.store(out + i, f32x4.sub(v128.load(a + i), v128.load(b + i)));
  for (; i < end; i += 4) store<f32>(out + i, load<f32>(a + i) - load<f32>(b + i));
}

/** out = a ⊙ b (also mulConst: a times a constant mask). */
export function ew_mul(a: usize, b: usize, out: usize, n: i32): void {
  const n4 = <usize>(n & ~3) << 2, end = <usize>n << 2;
  let i: usize = 0;
  for (; i < n4; i += 16) v128.store(out + i, f32x4.mul(v128.load(a + i), v128.load(b + i)));
  for (; i < end; i += 4) store<f32>(out + i, load<f32>(a + i) * load<f32>(b + i));
}

/** out = a / b. */
export function ew_div(a: usize, b: usize, out: usize, n: i32): void {
  const n4 = <usize>(n & ~3) << 2, end = <usize>n << 2;
  let i: usize = 0;
  for (; i < n4; i += 16) v128.store(out + i, f32x4.div(v128.load(a + i), v128.load(b + i)));
  for (; i < end; i += 4) store<f32>(out + i, load<f32>(a + i) / load<f32>(b + i));
}

// ---- Row-broadcast binary (a vector along the last axis) ----

/** out[i, j] = x[i, j] + v[j] for rows i in [r0, r1) of a [rows, cols] matrix (a bias add). */
export function add_row_vector(x: usize, v: usize, out: usize, cols: i32, r0: i32, r1: i32): void {
  const c4 = <usize>(cols & ~3) << 2, end = <usize>cols << 2, ld = <usize>cols << 2;
  for (let r = r0; r < r1; r++) {
    const xr = x + <usize>r * ld, orow = out + <usize>r * ld;
    let j: usize = 0;
    for (; j < c4; j += 16) v128.store(orow + j, f32x4.add(v128.load(xr + j), v128.load(v + j)));
    for (; j < end; j += 4) store<f32>(orow + j, load<f32>(xr + j) + load<f32>(v + j));
  }
}

/** out[i, j] = x[i, j] · v[j] for rows [r0, r1) (a per-channel scale, e.g. BatchNorm's γ/σ in inference). */
export function mul_row_vector(x: usize, v: usize, out: usize, cols: i32, r0: i32, r1: i32): void {
  const c4 = <usize>(cols & ~3) << 2, end = <usize>cols << 2, ld = <usize>cols << 2;
  for (let r = r0; r < r1; r++) {
    const xr = x + <usize>r * ld, orow = out + <usize>r * ld;
    let j: usize = 0;
    for (; j < c4; j += 16) v128.store(orow + j, f32x4.mul(v128.load(xr + j), v128.load(v + j)));
    for (; j < end; j += 4) store<f32>(orow + j, load<f32>(xr + j) * load<f32>(v + j));
  }
}

// ---- General numpy broadcasting ----

/**
 * out = a ∘ b over outShape with numpy broadcasting (kernels.ts broadcastBinary): op 0 add, 1 sub, 2 mul, 3 div.
 * shape, aStrides, bStrides point to `rank` int32 values each (strides in elements, 0 on broadcast axes, from
 * broadcastStrides); idx is int32 scratch of `rank` values. rank ≥ 1.
 */
export function broadcast_binary(op: i32, a: usize, aStrides: usize, b: usize, bStrides: usize, out: usize,
  shape: usize, rank: i32, idx: usize): void {
  let total: i32 = 1;
  for (let d = 0; d < rank; d++) {
    total *= load<i32>(shape + (<usize>d << 2));
    store<i32>(idx + (<usize>d << 2), 0);
  }
  if (total == 0) return;
  const last = <usize>(rank - 1) << 2;
  const n = load<i32>(shape + last);
  const sa = load<i32>(aStrides + last), sb = load<i32>(bStrides + last);
  let ao: i32 = 0, bo: i32 = 0;
  for (let o: i32 = 0; o < total; o += n) {
    const op_ = out + (<usize>o << 2);
    if (sa == 1 && sb == 1) {
      const pa = a + (<usize>ao << 2), pb = b + (<usize>bo << 2);
      if (op == 0) ew_add(pa, pb, op_, n);
      else if (op == 1) ew_sub(pa, pb, op_, n);
      else if (op == 2) ew_mul(pa, pb, op_, n);
      else ew_div(pa, pb, op_, n);
    } else {
      for (let j: i32 = 0; j < n; j++) {
        const va = load<f32>(a + (<usize>(ao + j * sa) << 2)), vb = load<f32>(b + (<usize>(bo + j * sb) << 2));
        let r: f32;
        if (op == 0) r = va + vb;
        else if (op == 1) r = va - vb;
        else if (op == 2) r = va * vb;
        else r = va / vb;
        store<f32>(op_ + (<usize>j << 2), r);
      }
    }
    // odometer over all axes but the last
    for (let d = rank - 2; d >= 0; d--) {
      const dp = <usize>d << 2;
      const id = load<i32>(idx + dp) + 1;
      const sd = load<i32>(shape + dp), sad = load<i32>(aStrides + dp), sbd = load<i32>(bStrides + dp);
      ao += sad;
      bo += sbd;
      if (id < sd) {
        store<i32>(idx + dp, id);
        break;
      }
      ao -= sad * sd;
      bo -= sbd * sd;
      store<i32>(idx + dp, 0);
    }
  }
}

// ---- Scalars ----

/** out = α·x + β computed in f64 and rounded (bit-identical to ops.affine; scale is β = 0). */
export function ew_affine(x: usize, out: usize, n: i32, alpha: f64, beta: f64): void {
  const n4 = <usize>(n & ~3) << 2, end = <usize>n << 2;
  const va = f64x2.splat(alpha), vb = f64x2.splat(beta);
  let i: usize = 0;
  for (; i < n4; i += 16) {
    const v = v128.load(x + i);
    const lo = f64x2.add(f64x2.mul(f64x2.promote_low_f32x4(v), va), vb);
    const hi = f64x2.add(f64x2.mul(f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1)), va), vb);
    v128.store(out + i, i32x4.shuffle(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5));
  }
  for (; i < end; i += 4) store<f32>(out + i, <f32>(alpha * <f64>load<f32>(x + i) + beta));
}

/** out = fl32(c·x) in f64 (updates.ts axpby(c, x) without d; unlike ew_affine(c, 0) a −0 stays −0). */
export function ew_scale(x: usize, out: usize, n: i32, c: f64): void {
  const n4 = <usize>(n & ~3) << 2, end = <usize>n << 2;
  const vc = f64x2.splat(c);
  let i: usize = 0;
  for (; i < n4; i += 16) {
    const v = v128.load(x + i);
    const lo = f64x2.mul(f64x2.promote_low_f32x4(v), vc);
    const hi = f64x2.mul(f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1)), vc);
    v128.store(out + i, i32x4.shuffle(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5));
  }
  for (; i < end; i += 4) store<f32>(out + i, <f32>(c * <f64>load<f32>(x + i)));
}

/** out = fl32(c·a + b·d) in f64 (updates.ts axpby(c, a, b, d), e.g. momentum and decoupled weight decay). */
export function ew_axpby(a: usize, d: usize, out: usize, n: i32, c: f64, b: f64): void {
  const n4 = <usize>(n & ~3) << 2, end = <usize>n << 2;
  const vc = f64x2.splat(c), vb = f64x2.splat(b);
  let i: usize = 0;
  for (; i < n4; i += 16) {
    const va = v128.load(a + i), vd = v128.load(d + i);
    const lo = f64x2.add(f64x2.mul(vc, f64x2.promote_low_f32x4(va)), f64x2.mul(vb, f64x2.promote_low_f32x4(vd)));
    const hi = f64x2.add(
      f64x2.mul(vc, f64x2.promote_low_f32x4(i32x4.shuffle(va, va, 2, 3, 0, 1))),
      f64x2.mul(vb, f64x2.promote_low_f32x4(i32x4.shuffle(vd, vd, 2, 3, 0, 1))),
    );
    v128.store(out + i, i32x4.shuffle(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5));
  }
  for (; i < end; i += 4) store<f32>(out + i, <f32>(c * <f64>load<f32>(a + i) + b * <f64>load<f32>(d + i)));
}

/** out = x · s for a float32 scalar s (ops.mulScalar; bit-identical). */
export function ew_mul_scalar(x: usize, out: usize, n: i32, s: f32): void {
  const n4 = <usize>(n & ~3) << 2, end = <usize>n << 2;
  const vs = f32x4.splat(s);
  let i: usize = 0;
  for (; i < n4; i += 16) v128.store(out + i, f32x4.mul(v128.load(x + i), vs));
  for (; i < end; i += 4) store<f32>(out + i, load<f32>(x + i) * s);
}

/** out = 1 − y² (tanh's derivative from its output; bit-identical to affine(mul(y, y), −1, 1)). */
export function ew_one_minus_square(y: usize, out: usize, n: i32): void {
  const n4 = <usize>(n & ~3) << 2, end = <usize>n << 2;
  const one = f32x4.splat(1.0);
  let i: usize = 0;
  for (; i < n4; i += 16) {
    const v = v128.load(y + i);
    v128.store(out + i, f32x4.sub(one, f32x4.mul(v, v)));
  }
  for (; i < end; i += 4) {
    const v = load<f32>(y + i);
    store<f32>(out + i, <f32>1 - v * v);
  }
}

/**
 * Copies n bytes from src to dst (regions may overlap: memmove) with the bulk-memory copy: 2–3× a typed-array copy
 * on the shared memory of the two-thread build, where V8 copies byte by byte (the arena's kept blocks, issue 11).
 */
export function mem_copy(dst: usize, src: usize, n: usize): void {
  memory.copy(dst, src, n);
}

/** out = c (fill). */
export function ew_fill(out: usize, n: i32, c: f32): void {
  // +0 (all bits clear: the arena's zeroing of every fresh tensor) takes the bulk-memory fill, 1.7–2× the store
  // loop (measured on 0.26–12.8 MB, issue 11); −0 and other values take the loop.
  if (reinterpret<u32>(c) == 0) {
    memory.fill(out, 0, <usize>n << 2);
    return;
  }
  const n4 = <usize>(n & ~3) << 2, end = <usize>n << 2;
  const vc = f32x4.splat(c);
  let i: usize = 0;
  for (; i < n4; i += 16) v128.store(out + i, vc);
  for (; i < end; i += 4) store<f32>(out + i, c);
}

// ---- Piecewise-linear activations ----

/** out = max(x, 0) and mask = 1 where x > 0 else 0 (PyTorch's derivative at 0); NaN gives 0 and mask 0 as in JS. */
export function ew_relu(x: usize, out: usize, mask: usize, n: i32): void {
  const n4 = <usize>(n & ~3) << 2, end = <usize>n << 2;
  const zero = f32x4.splat(0), one = f32x4.splat(1.0);
  let i: usize = 0;
  for (; i < n4; i += 16) {
    const v = v128.load(x + i);
    const pos = f32x4.gt(v, zero);
    v128.store(out + i, v128.and(v, pos));
    v128.store(mask + i, v128.and(one, pos));
  }
  for (; i < end; i += 4) {
    const v = load<f32>(x + i);
    const p = v > 0;
    store<f32>(out + i, p ? v : 0);
    store<f32>(mask + i, p ? 1 : 0);
  }
}

/** mask = 1 where x > 0 else 0 (ops.reluMask). */
export function ew_relu_mask(x: usize, mask: usize, n: i32): void {
  const n4 = <usize>(n & ~3) << 2, end = <usize>n << 2;
  const zero = f32x4.splat(0), one = f32x4.splat(1.0);
  let i: usize = 0;
  for (; i < n4; i += 16) v128.store(mask + i, v128.and(one, f32x4.gt(v128.load(x + i), zero)));
  for (; i < end; i += 4) store<f32>(mask + i, load<f32>(x + i) > 0 ? 1 : 0);
}

/** out = x where x > 0 else α·x (α in f64, as elementwise.leakyRelu), mask = 1 or f32(α). */
export function ew_leaky_relu(x: usize, out: usize, mask: usize, n: i32, alpha: f64): void {
  const n4 = <usize>(n & ~3) << 2, end = <usize>n << 2;
  const zero = f32x4.splat(0), one = f32x4.splat(1.0), va = f64x2.splat(alpha), fa = f32x4.splat(<f32>alpha);
  let i: usize = 0;
  for (; i < n4; i += 16) {
    const v = v128.load(x + i);
    const pos = f32x4.gt(v, zero);
    const lo = f64x2.mul(f64x2.promote_low_f32x4(v), va);
    const hi = f64x2.mul(f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1)), va);
    const neg = i32x4.shuffle(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5);
    v128.store(out + i, v128.bitselect(v, neg, pos));
    v128.store(mask + i, v128.bitselect(one, fa, pos));
  }
  for (; i < end; i += 4) {
    const v = load<f32>(x + i);
    if (v > 0) {
      store<f32>(out + i, v);
      store<f32>(mask + i, 1);
    } else {
      store<f32>(out + i, <f32>(<f64>v * alpha));
      store<f32>(mask + i, <f32>alpha);
    }
  }
}

// ---- Activation backward from the saved output ----

/** out = g·(1 − y²): tanh's backward from its output y (bit-identical to mul(g, tanhDerivativeOf(y))). */
export function ew_tanh_backward(g: usize, y: usize, out: usize, n: i32): void {
  const n4 = <usize>(n & ~3) << 2, end = <usize>n << 2;
  const one = f32x4.splat(1.0);
  let i: usize = 0;
  for (; i < n4; i += 16) {
    const v = v128.load(y + i);
    v128.store(out + i, f32x4.mul(v128.load(g + i), f32x4.sub(one, f32x4.mul(v, v))));
  }
  for (; i < end; i += 4) {
    const v = load<f32>(y + i);
    store<f32>(out + i, load<f32>(g + i) * (<f32>1 - v * v));
  }
}

/** out = g·y(1 − y): the sigmoid's backward from its output y (bit-identical to elementwise.sigmoid's rule). */
export function ew_sigmoid_backward(g: usize, y: usize, out: usize, n: i32): void {
  const n4 = <usize>(n & ~3) << 2, end = <usize>n << 2;
  const one = f32x4.splat(1.0);
  let i: usize = 0;
  for (; i < n4; i += 16) {
    const v = v128.load(y + i);
    v128.store(out + i, f32x4.mul(v128.load(g + i), f32x4.mul(v, f32x4.sub(one, v))));
  }
  for (; i < end; i += 4) {
    const v = load<f32>(y + i);
    store<f32>(out + i, load<f32>(g + i) * (v * (<f32>1 - v)));
  }
}

// ---- Transcendentals (f32x4 polynomials) ----

/** out = e^x. */
export function ew_exp(x: usize, out: usize, n: i32): void {
  const n4 = <usize>(n & ~3) << 2, end = <usize>n << 2;
  let i: usize = 0;
  for (; i < n4; i += 16) v128.store(out + i, exp4(v128.load(x + i)));
  for (; i < end; i += 4) store<f32>(out + i, exp1(load<f32>(x + i)));
}

/** out = tanh x. */
export function ew_tanh(x: usize, out: usize, n: i32): void {
  const n4 = <usize>(n & ~3) << 2, end = <usize>n << 2;
  let i: usize = 0;
  for (; i < n4; i += 16) v128.store(out + i, tanh4(v128.load(x + i)));
  for (; i < end; i += 4) store<f32>(out + i, tanh1(load<f32>(x + i)));
}

/** out = tanh x and d = 1 − out² (the activation and its derivative in one pass). */
export function ew_tanh_with_derivative(x: usize, out: usize, d: usize, n: i32): void {
  const n4 = <usize>(n & ~3) << 2, end = <usize>n << 2;
  const one = f32x4.splat(1.0);
  let i: usize = 0;
  for (; i < n4; i += 16) {
    const t = tanh4(v128.load(x + i));
    v128.store(out + i, t);
    v128.store(d + i, f32x4.sub(one, f32x4.mul(t, t)));
  }
  for (; i < end; i += 4) {
    const t = tanh1(load<f32>(x + i));
    store<f32>(out + i, t);
    store<f32>(d + i, <f32>1 - t * t);
  }
}

/** out = 1/(1 + e^{−x}). */
export function ew_sigmoid(x: usize, out: usize, n: i32): void {
  const n4 = <usize>(n & ~3) << 2, end = <usize>n << 2;
  let i: usize = 0;
  for (; i < n4; i += 16) v128.store(out + i, sigmoid4(v128.load(x + i)));
  for (; i < end; i += 4) store<f32>(out + i, sigmoid1(load<f32>(x + i)));
}

/** out = x·σ(x). */
export function ew_silu(x: usize, out: usize, n: i32): void {
  const n4 = <usize>(n & ~3) << 2, end = <usize>n << 2;
  let i: usize = 0;
  for (; i < n4; i += 16) {
    const v = v128.load(x + i);
    v128.store(out + i, f32x4.mul(v, sigmoid4(v)));
  }
  for (; i < end; i += 4) {
    const v = load<f32>(x + i);
    store<f32>(out + i, v * sigmoid1(v));
  }
}


// @ts-ignore: decorator
@inline function half2u(v: v128): v128 {
  const k2 = f64x2.splat(2 * 0.7978845608028654), c = f64x2.splat(0.044715);
  const x = f64x2.promote_low_f32x4(v);
  return f64x2.mul(k2, f64x2.add(x, f64x2.mul(c, f64x2.mul(f64x2.mul(x, x), x))));
}

// @ts-ignore: decorator
@inline function geluTanh4(v: v128): v128 {
  // ½x(1 + tanh u) = x·σ(2u): no cancellation in the negative tail. 2u is formed in f64 and split into a float32
  // value s and its rounding error, which joins exp's reduced argument (2u reaches −70 where GELU is still normal).
  const lo = half2u(v), hi = half2u(i32x4.shuffle(v, v, 2, 3, 0, 1));
  const slo = f32x4.demote_f64x2_zero(lo), shi = f32x4.demote_f64x2_zero(hi);
  const s = i32x4.shuffle(slo, shi, 0, 1, 4, 5);
  let err = i32x4.shuffle(
    f32x4.demote_f64x2_zero(f64x2.sub(lo, f64x2.promote_low_f32x4(slo))),
    f32x4.demote_f64x2_zero(f64x2.sub(hi, f64x2.promote_low_f32x4(shi))), 0, 1, 4, 5);
  err = v128.and(err, f32x4.lt(f32x4.abs(s), f32x4.splat(Infinity))); // ±∞ inputs: no correction
  const neg = f32x4.lt(s, f32x4.splat(0));
  // e = e^{−|2u|}: argument −|s| with correction err (s < 0) or −err (s ≥ 0)
  const e = exp4lo(f32x4.neg(f32x4.abs(s)), v128.bitselect(err, f32x4.neg(err), neg));
  const inv = f32x4.div(f32x4.splat(1.0), f32x4.add(f32x4.splat(1.0), e));
  return f32x4.mul(v, v128.bitselect(f32x4.mul(e, inv), inv, neg));
}

/** PyTorch's tanh-approximate GELU ½x(1 + tanh(√(2/π)(x + 0.044715x³))), evaluated as x·σ(2u). */
export function ew_gelu_tanh(x: usize, out: usize, n: i32): void {
  const n4 = <usize>(n & ~3) << 2, end = <usize>n << 2;
  let i: usize = 0;
  for (; i < n4; i += 16) v128.store(out + i, geluTanh4(v128.load(x + i)));
  for (; i < end; i += 4) store<f32>(out + i, f32x4.extract_lane(geluTanh4(f32x4.splat(load<f32>(x + i))), 0));
}

// ---- f64 scalar paths (the JS engine's algorithms) ----

const TWO_OVER_SQRT_PI: f64 = 1.1283791670955126;
const ONE_OVER_SQRT_PI: f64 = 0.5641895835477563;

/** kernels.ts erfScalar, line for line (series below 2.5, continued fraction above). */
function erf64(x: f64): f64 {
  if (isNaN(x)) return x;
  const ax = Math.abs(x);
  if (ax < 2.5) {
    const x2 = ax * ax;
    let term = ax, s = ax;
    for (let n = 1; n < 200; n++) {
      term *= (2 * x2) / <f64>(2 * n + 1);
      s += term;
      if (term < 1e-17 * s) break;
    }
    const v = TWO_OVER_SQRT_PI * Math.exp(-x2) * s;
    return x < 0 ? -v : v;
  }
  if (ax > 6.5) return x < 0 ? -1 : 1;
  let t = ax;
  for (let n = 60; n >= 1; n--) t = ax + <f64>n / 2 / t;
  const erfc = (ONE_OVER_SQRT_PI * Math.exp(-ax * ax)) / t;
  const v = 1 - erfc;
  return x < 0 ? -v : v;
}

/** out = erf x (f64, as kernels.ts erf). */
export function ew_erf(x: usize, out: usize, n: i32): void {
  const end = <usize>n << 2;
  for (let i: usize = 0; i < end; i += 4) store<f32>(out + i, <f32>erf64(<f64>load<f32>(x + i)));
}

/** out = ½x(1 + erf(x/√2)) (exact GELU, f64 as kernels.ts gelu). */
export function ew_gelu_erf(x: usize, out: usize, n: i32): void {
  const end = <usize>n << 2;
  for (let i: usize = 0; i < end; i += 4) {
    const v = <f64>load<f32>(x + i);
    store<f32>(out + i, <f32>(0.5 * v * (1 + erf64(v * Math.SQRT1_2))));
  }
}

/**
 * PyTorch softplus log(1 + e^{βx})/β, or x where βx > threshold; mask gets 1 on the log branch and is left
 * untouched elsewhere (pass a zeroed mask, as kernels.ts softplus expects). f64 like the JS kernel.
 */
export function ew_softplus(x: usize, out: usize, mask: usize, n: i32, beta: f64, threshold: f64): void {
  const end = <usize>n << 2;
  for (let i: usize = 0; i < end; i += 4) {
    const v = <f64>load<f32>(x + i);
    const bx = beta * v;
    if (bx > threshold) store<f32>(out + i, <f32>v);
    else {
      store<f32>(out + i, <f32>(Math.log1p(Math.exp(bx)) / beta));
      store<f32>(mask + i, 1);
    }
  }
}
