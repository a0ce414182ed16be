// Optimizer updates in place over float32 parameters and state (issue 11): the formulas of
// src/training/optimizers.ts with its rounding points (float64 arithmetic, float32 storage), so a step here equals
// the JS optimizer followed by applyUpdates bit for bit. Hyper-parameters are f64 (JS numbers) for that reason.
// Flat kernels: split across threads by offsetting every pointer by the same multiple of 4 elements.
//
// Weight decay wd ≠ 0 reproduces chain(addDecayedWeights(wd), optimizer): the gradient becomes fl32(g + wd·p)
// with p the parameter before the step; wd = 0 skips it (exactly as the JS chain without the transform).

// Four float32 lanes as two f64x2 halves and back.
// @ts-ignore: decorator
@inline function lo64(v: v128): v128 {
  return f64x2.promote_low_f32x4(v);
}
// @ts-ignore: decorator
@inline function hi64(v: v128): v128 {
  return f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1));
}
// @ts-ignore: decorator
@inline function to32(lo: v128, hi: v128): v128 {
  return i32x4.shuffle(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5);
}

// fl32(g + wd·p) when wd ≠ 0, else g.
// @ts-ignore: decorator
@inline function decayed(g: v128, p: v128, wd: f64): v128 {
  if (wd == 0) return g;
  const w = f64x2.splat(wd);
  return to32(f64x2.add(lo64(g), f64x2.mul(w, lo64(p))), f64x2.add(hi64(g), f64x2.mul(w, hi64(p))));
}

// @ts-ignore: decorator
@inline function decayed1(g: f32, p: f32, wd: f64): f32 {
  return wd == 0 ? g : <f32>(<f64>g + wd * <f64>p);
}

// p ← fl32(p + fl32(−lr·s)) for four lanes of s (already float32).
// @ts-ignore: decorator
@inline function applyStep(p: v128, s: v128, nlr: v128): v128 {
  const u = to32(f64x2.mul(nlr, lo64(s)), f64x2.mul(nlr, hi64(s)));
  return to32(f64x2.add(lo64(p), lo64(u)), f64x2.add(hi64(p), hi64(u)));
}

/** Plain SGD: p ← p − lr·g (optimizers.sgd with momentum 0, then applyUpdates). */
export function sgd_step(p: usize, g: usize, n: i32, lr: f64, wd: f64): void {
  const n4 = <usize>(n & ~3) << 2, end = <usize>n << 2;
  const nlr = f64x2.splat(-lr);
  let i: usize = 0;
  for (; i < n4; i += 16) {
    const pv = v128.load(p + i);
    v128.store(p + i, applyStep(pv, decayed(v128.load(g + i), pv, wd), nlr));
  }
  for (; i < end; i += 4) {
    const pv = load<f32>(p + i);
    const u = <f32>(-lr * <f64>decayed1(load<f32>(g + i), pv, wd));
    store<f32>(p + i, <f32>(<f64>pv + <f64>u));
  }
}

/** Heavy-ball SGD: v ← μv + g; p ← p − lr·v (optimizers.sgd with momentum μ ≠ 0; v is its "momentum.*" array). */
export function sgd_momentum_step(p: usize, g: usize, v: usize, n: i32, lr: f64, mu: f64, wd: f64): void {
  const n4 = <usize>(n & ~3) << 2, end = <usize>n << 2;
  const nlr = f64x2.splat(-lr), vm = f64x2.splat(mu);
  let i: usize = 0;
  for (; i < n4; i += 16) {
    const pv = v128.load(p + i), vv = v128.load(v + i);
    const gv = decayed(v128.load(g + i), pv, wd);
    const nv = to32(f64x2.add(f64x2.mul(vm, lo64(vv)), lo64(gv)), f64x2.add(f64x2.mul(vm, hi64(vv)), hi64(gv)));
    v128.store(v + i, nv);
    v128.store(p + i, applyStep(pv, nv, nlr));
  }
  for (; i < end; i += 4) {
    const pv = load<f32>(p + i);
    const nv = <f32>(mu * <f64>load<f32>(v + i) + <f64>decayed1(load<f32>(g + i), pv, wd));
    store<f32>(v + i, nv);
    const u = <f32>(-lr * <f64>nv);
    store<f32>(p + i, <f32>(<f64>pv + <f64>u));
  }
}

// One Adam lane group: reads m, v at the given addresses, stores the new moments at m2, v2 (may alias) and returns
// the four float32 updates fl32(−lr·(m2/c1)/(√(v2/c2) + eps)). The constants come in as splats.
// @ts-ignore: decorator
@inline function adamLanes(gv: v128, m: usize, v: usize, m2: usize, v2: usize, vb1: v128, vb2: v128, va1: v128, va2: v128,
  vc1: v128, vc2: v128, veps: v128, nlr: v128): v128 {
  const mv = v128.load(m), vv = v128.load(v);
  const glo = lo64(gv), ghi = hi64(gv);
  const nm = to32(
    f64x2.add(f64x2.mul(vb1, lo64(mv)), f64x2.mul(va1, glo)),
    f64x2.add(f64x2.mul(vb1, hi64(mv)), f64x2.mul(va1, ghi)),
  );
  const nv = to32(
    f64x2.add(f64x2.mul(vb2, lo64(vv)), f64x2.mul(f64x2.mul(va2, glo), glo)),
    f64x2.add(f64x2.mul(vb2, hi64(vv)), f64x2.mul(f64x2.mul(va2, ghi), ghi)),
  );
  v128.store(m2, nm);
  v128.store(v2, nv);
  const ulo = f64x2.div(f64x2.mul(nlr, f64x2.div(lo64(nm), vc1)), f64x2.add(f64x2.sqrt(f64x2.div(lo64(nv), vc2)), veps));
  const uhi = f64x2.div(f64x2.mul(nlr, f64x2.div(hi64(nm), vc1)), f64x2.add(f64x2.sqrt(f64x2.div(hi64(nv), vc2)), veps));
  return to32(ulo, uhi);
}

// The same for one element.
// @ts-ignore: decorator
@inline function adam1(gi: f64, m: usize, v: usize, m2: usize, v2: usize, lr: f64, b1: f64, b2: f64, eps: f64, c1: f64,
  c2: f64): f32 {
  const nm = <f32>(b1 * <f64>load<f32>(m) + (1 - b1) * gi);
  const nv = <f32>(b2 * <f64>load<f32>(v) + (1 - b2) * gi * gi);
  store<f32>(m2, nm);
  store<f32>(v2, nv);
  return <f32>((-lr * (<f64>nm / c1)) / (Math.sqrt(<f64>nv / c2) + eps));
}

/**
 * Adam with bias correction (optimizers.adam), in place: m ← b1·m + (1−b1)·g, v ← b2·v + (1−b2)·g², then
 * p ← p + fl32(−lr·(m/c1) / (√(v/c2) + eps)). The caller passes c1 = 1 − b1^t and c2 = 1 − b2^t for step t (the
 * JS state's count + 1, computed with JS `**` so the numbers are the same).
 */
export function adam_step(p: usize, g: usize, m: usize, v: usize, n: i32, lr: f64, b1: f64, b2: f64, eps: f64,
  c1: f64, c2: f64, wd: f64): void {
  const n4 = <usize>(n & ~3) << 2, end = <usize>n << 2;
  const vb1 = f64x2.splat(b1), vb2 = f64x2.splat(b2), va1 = f64x2.splat(1 - b1), va2 = f64x2.splat(1 - b2);
  const vc1 = f64x2.splat(c1), vc2 = f64x2.splat(c2), veps = f64x2.splat(eps), nlr = f64x2.splat(-lr);
  let i: usize = 0;
  for (; i < n4; i += 16) {
    const pv = v128.load(p + i);
    const u = adamLanes(decayed(v128.load(g + i), pv, wd), m + i, v + i, m + i, v + i, vb1, vb2, va1, va2, vc1, vc2, veps, nlr);
    v128.store(p + i, to32(f64x2.add(lo64(pv), lo64(u)), f64x2.add(hi64(pv), hi64(u))));
  }
  for (; i < end; i += 4) {
    const pv = load<f32>(p + i);
    const u = adam1(<f64>decayed1(load<f32>(g + i), pv, wd), m + i, v + i, m + i, v + i, lr, b1, b2, eps, c1, c2);
    store<f32>(p + i, <f32>(<f64>pv + <f64>u));
  }
}

/**
 * Out-of-place Adam (updates.ts adamMoments, bit-identical): m2 = fl32(b1·m + (1−b1)·g), v2 = fl32(b2·v + (1−b2)·g²),
 * u = fl32(−lr·(m2/c1)/(√(v2/c2) + eps)). Reads g, m, v and writes m2, v2, u only, so a caller can stage the first
 * three as inputs and the last three as outputs; m2 may alias m and v2 may alias v.
 */
export function adam_moments(g: usize, m: usize, v: usize, m2: usize, v2: usize, u: usize, n: i32, lr: f64, b1: f64,
  b2: f64, eps: f64, c1: f64, c2: f64): void {
  const n4 = <usize>(n & ~3) << 2, end = <usize>n << 2;
  const vb1 = f64x2.splat(b1), vb2 = f64x2.splat(b2), va1 = f64x2.splat(1 - b1), va2 = f64x2.splat(1 - b2);
  const vc1 = f64x2.splat(c1), vc2 = f64x2.splat(c2), veps = f64x2.splat(eps), nlr = f64x2.splat(-lr);
  let i: usize = 0;
  for (; i < n4; i += 16) {
    v128.store(u + i, adamLanes(v128.load(g + i), m + i, v + i, m2 + i, v2 + i, vb1, vb2, va1, va2, vc1, vc2, veps, nlr));
  }
  for (; i < end; i += 4) {
    store<f32>(u + i, adam1(<f64>load<f32>(g + i), m + i, v + i, m2 + i, v2 + i, lr, b1, b2, eps, c1, c2));
  }
}
