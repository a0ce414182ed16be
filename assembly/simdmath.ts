// f32x4 transcendentals shared by the elementwise, softmax and Jacobian kernels (not exported from the module:
// v128 values cannot cross into JavaScript). Accuracy against Math.exp/Math.tanh in float64 rounded to float32 is
// measured in test/wasmElementwise.test.ts (a few float32 ulps).

// exp: Cephes expf. n = round(x·log2 e); r = x − n·ln2 in two parts (C1 has 9 significant bits, so n·C1 is exact);
// e^r by a degree-7 polynomial; 2^n applied as two factors so results down to the subnormal range come out right.
const LOG2E: f32 = 1.44269504088896341;
const MAGIC: f32 = 12582912.0; // 1.5·2²³
const MAGIC_BITS: i32 = 0x4b400000;
const C1: f32 = 0.693359375;
const C2: f32 = -2.12194440e-4;
const P0: f32 = 1.9875691500e-4;
const P1: f32 = 1.3981999507e-3;
const P2: f32 = 8.3334519073e-3;
const P3: f32 = 4.1665795894e-2;
const P4: f32 = 1.6666665459e-1;
const P5: f32 = 5.0000001201e-1;

/** e^x per lane (inf above ~88.72, 0 below ~−103.9, NaN stays NaN). */
// @ts-ignore: decorator
@inline export function exp4(x: v128): v128 {
  return exp4lo(x, f32x4.splat(0));
}

/**
 * e^{a − b} per lane, with a − b formed exactly (two-sum: its rounding error joins the reduced argument), so a
 * softmax's tiny probabilities keep float32 relative accuracy like the JS engine's float64 difference.
 */
// @ts-ignore: decorator
@inline export function expDiff4(a: v128, b: v128): v128 {
  const s = f32x4.sub(a, b);
  const bp = f32x4.sub(s, a); // −b as represented in s
  const err = f32x4.sub(f32x4.sub(a, f32x4.sub(s, bp)), f32x4.add(b, bp));
  // exact (finite) whenever s is finite; an infinite or NaN s (−∞ logits) keeps no correction
  return exp4lo(s, v128.and(err, f32x4.lt(f32x4.abs(s), f32x4.splat(Infinity))));
}

/** e^{x + lo} for a small correction lo (|lo| ≤ ulp(x)). */
// @ts-ignore: decorator
@inline export function exp4lo(x: v128, lo: v128): v128 {
  // pmin/pmax (one instruction each on x86): pmin(x, c) = c < x ? c : x keeps a NaN x, as does pmax
  const xc = f32x4.pmax(f32x4.pmin(x, f32x4.splat(89.0)), f32x4.splat(-104.0));
  // a clamped lane keeps no correction (lo is about ulp(x), huge for huge x: it would swamp the reduced argument)
  lo = v128.and(lo, f32x4.eq(xc, x));
  x = xc;
  // round-to-nearest by adding 1.5·2²³: the integer lands in the low mantissa bits (cheaper than nearest + trunc_sat)
  const t = f32x4.add(f32x4.mul(x, f32x4.splat(LOG2E)), f32x4.splat(MAGIC));
  const fn = f32x4.sub(t, f32x4.splat(MAGIC));
  let r = f32x4.sub(x, f32x4.mul(fn, f32x4.splat(C1)));
  r = f32x4.add(f32x4.sub(r, f32x4.mul(fn, f32x4.splat(C2))), lo);
  const r2 = f32x4.mul(r, r);
  let p = f32x4.add(f32x4.mul(f32x4.splat(P0), r), f32x4.splat(P1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(P2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(P3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(P4));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(P5));
  p = f32x4.add(f32x4.add(f32x4.mul(p, r2), r), f32x4.splat(1.0));
  const n = i32x4.sub(t, i32x4.splat(MAGIC_BITS));
  const n1 = i32x4.shr_s(n, 1);
  const n2 = i32x4.sub(n, n1);
  const bias = i32x4.splat(127);
  const s1 = i32x4.shl(i32x4.add(n1, bias), 23);
  const s2 = i32x4.shl(i32x4.add(n2, bias), 23);
  return f32x4.mul(f32x4.mul(p, s1), s2);
}

const SIGN: i32 = 0x80000000;

/**
 * tanh per lane: Cephes tanhf. |x| < 0.625: x + x³·P(x²); otherwise sign(x)·(1 − 2/(e^{2|x|} + 1)).
 */
// @ts-ignore: decorator
@inline export function tanh4(x: v128): v128 {
  const sign = v128.and(x, i32x4.splat(SIGN));
  const ax = f32x4.abs(x);
  const e = exp4(f32x4.add(ax, ax));
  const big = f32x4.sub(f32x4.splat(1.0), f32x4.div(f32x4.splat(2.0), f32x4.add(e, f32x4.splat(1.0))));
  const z = f32x4.mul(x, x);
  let p = f32x4.add(f32x4.mul(f32x4.splat(-5.70498872745e-3), z), f32x4.splat(2.06390887954e-2));
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(-5.37397155531e-2));
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(1.33314422036e-1));
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(-3.33332819422e-1));
  const small = f32x4.add(f32x4.mul(f32x4.mul(p, z), x), x);
  const isSmall = f32x4.lt(ax, f32x4.splat(0.625));
  return v128.bitselect(small, v128.or(big, sign), isSmall);
}

/** 1/(1 + e^{−x}) per lane, as e/(1 + e) for x < 0 (e = e^{−|x|}, no overflow). */
// @ts-ignore: decorator
@inline export function sigmoid4(x: v128): v128 {
  const e = exp4(f32x4.neg(f32x4.abs(x)));
  const inv = f32x4.div(f32x4.splat(1.0), f32x4.add(f32x4.splat(1.0), e));
  return v128.bitselect(f32x4.mul(e, inv), inv, f32x4.lt(x, f32x4.splat(0.0)));
}

/** Scalar versions through the same lane code (tails of loops), so a value never depends on its position. */
// @ts-ignore: decorator
@inline export function exp1(x: f32): f32 {
  return f32x4.extract_lane(exp4(f32x4.splat(x)), 0);
}
// @ts-ignore: decorator
@inline export function tanh1(x: f32): f32 {
  return f32x4.extract_lane(tanh4(f32x4.splat(x)), 0);
}
// @ts-ignore: decorator
@inline export function sigmoid1(x: f32): f32 {
  return f32x4.extract_lane(sigmoid4(f32x4.splat(x)), 0);
}
