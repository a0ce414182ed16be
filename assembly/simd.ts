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
