// Lane-wise helpers shared by the kernels (not exported from the module).

/** c + a·b, lane-wise: fused when the build has relaxed SIMD. */
// @ts-ignore: decorator
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

/** max(x, 0) with NaN → 0 (like `x > 0 ? x : 0`). */
// @ts-ignore: decorator
@inline export function relu4(x: v128): v128 {
  return f32x4.pmax(f32x4.splat(0), x);
}

/** (l0 + l1) + (l2 + l3). */
// @ts-ignore: decorator
@inline export function hsum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}
