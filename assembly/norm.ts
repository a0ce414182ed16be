// BatchNorm over the last (channel) axis of float32 data [rows, C] (NHWC flattened: rows = N·H·W), issue 11.
// Forward: bn_scale then bn_apply, bit-identical to elementwise.batchNorm (per-channel statistics from
// reduce.ts channel_moments in training, the running statistics in inference). Backward with batch statistics:
// bn_backward_sums, bn_backward_coeffs, bn_backward_input; in inference the input gradient is g·k
// (elementwise.ts mul_row_vector with k from bn_scale) and dγ, dβ come from bn_backward_sums as below.

/** k[c] = γ[c]/√(var[c] + eps) with the JS rounding points (var + eps, then 1/√·, then γ·), for c in [0, C). */
export function bn_scale(variance: usize, gamma: usize, k: usize, C: i32, eps: f64): void {
  for (let c = 0; c < C; c++) {
    const o = <usize>c << 2;
    const ve = <f32>(<f64>load<f32>(variance + o) + eps);
    const is = <f32>(1 / Math.sqrt(<f64>ve));
    store<f32>(k + o, load<f32>(gamma + o) * is);
  }
}

/** out[r, c] = (x[r, c] − mean[c])·k[c] + β[c] for rows [r0, r1) (float32 operations, as the JS op chain). */
export function bn_apply(x: usize, mean: usize, k: usize, beta: usize, out: usize, C: i32, r0: i32, r1: i32): void {
  const ld = <usize>C << 2, c4 = <usize>(C & ~3) << 2;
  for (let r = r0; r < r1; r++) {
    const xr = x + <usize>r * ld, orow = out + <usize>r * ld;
    let j: usize = 0;
    for (; j < c4; j += 16) {
      const v = f32x4.mul(f32x4.sub(v128.load(xr + j), v128.load(mean + j)), v128.load(k + j));
      v128.store(orow + j, f32x4.add(v, v128.load(beta + j)));
    }
    for (; j < ld; j += 4) {
      store<f32>(orow + j, (load<f32>(xr + j) - load<f32>(mean + j)) * load<f32>(k + j) + load<f32>(beta + j));
    }
  }
}

/**
 * Per-channel Σ_r g[r, c] and Σ_r g[r, c]·(x[r, c] − mean[c]) over all rows for channels [c0, c1), each summed in
 * f64 over rows in order and stored as float32.
 */
export function bn_backward_sums(g: usize, x: usize, mean: usize, sumG: usize, sumGX: usize, rows: i32, C: i32,
  c0: i32, c1: i32): void {
  const ld = <usize>C << 2;
  let c = c0;
  for (; c + 7 < c1; c += 8) {
    // eight channels: eight independent f64x2 chains per row
    const off = <usize>c << 2;
    const m0 = v128.load(mean + off), m1 = v128.load(mean + off, 16);
    let a0 = f64x2.splat(0), a1 = f64x2.splat(0), a2 = f64x2.splat(0), a3 = f64x2.splat(0);
    let b0 = f64x2.splat(0), b1 = f64x2.splat(0), b2 = f64x2.splat(0), b3 = f64x2.splat(0);
    let pg = g + off, px = x + off;
    for (let r = 0; r < rows; r++, pg += ld, px += ld) {
      const g0 = v128.load(pg), g1 = v128.load(pg, 16);
      const gx0 = f32x4.mul(g0, f32x4.sub(v128.load(px), m0)), gx1 = f32x4.mul(g1, f32x4.sub(v128.load(px, 16), m1));
      a0 = f64x2.add(a0, f64x2.promote_low_f32x4(g0));
      a1 = f64x2.add(a1, f64x2.promote_low_f32x4(i32x4.shuffle(g0, g0, 2, 3, 0, 1)));
      a2 = f64x2.add(a2, f64x2.promote_low_f32x4(g1));
      a3 = f64x2.add(a3, f64x2.promote_low_f32x4(i32x4.shuffle(g1, g1, 2, 3, 0, 1)));
      b0 = f64x2.add(b0, f64x2.promote_low_f32x4(gx0));
      b1 = f64x2.add(b1, f64x2.promote_low_f32x4(i32x4.shuffle(gx0, gx0, 2, 3, 0, 1)));
      b2 = f64x2.add(b2, f64x2.promote_low_f32x4(gx1));
      b3 = f64x2.add(b3, f64x2.promote_low_f32x4(i32x4.shuffle(gx1, gx1, 2, 3, 0, 1)));
    }
    v128.store(sumG + off, i32x4.shuffle(f32x4.demote_f64x2_zero(a0), f32x4.demote_f64x2_zero(a1), 0, 1, 4, 5));
    v128.store(sumG + off, i32x4.shuffle(f32x4.demote_f64x2_zero(a2), f32x4.demote_f64x2_zero(a3), 0, 1, 4, 5), 16);
    v128.store(sumGX + off, i32x4.shuffle(f32x4.demote_f64x2_zero(b0), f32x4.demote_f64x2_zero(b1), 0, 1, 4, 5));
    v128.store(sumGX + off, i32x4.shuffle(f32x4.demote_f64x2_zero(b2), f32x4.demote_f64x2_zero(b3), 0, 1, 4, 5), 16);
  }
  for (; c + 3 < c1; c += 4) {
    const off = <usize>c << 2;
    const m = v128.load(mean + off);
    let a0 = f64x2.splat(0), a1 = f64x2.splat(0), b0 = f64x2.splat(0), b1 = f64x2.splat(0);
    let pg = g + off, px = x + off;
    for (let r = 0; r < rows; r++, pg += ld, px += ld) {
      const gv = v128.load(pg);
      const gx = f32x4.mul(gv, f32x4.sub(v128.load(px), m));
      a0 = f64x2.add(a0, f64x2.promote_low_f32x4(gv));
      a1 = f64x2.add(a1, f64x2.promote_low_f32x4(i32x4.shuffle(gv, gv, 2, 3, 0, 1)));
      b0 = f64x2.add(b0, f64x2.promote_low_f32x4(gx));
      b1 = f64x2.add(b1, f64x2.promote_low_f32x4(i32x4.shuffle(gx, gx, 2, 3, 0, 1)));
    }
    v128.store(sumG + off, i32x4.shuffle(f32x4.demote_f64x2_zero(a0), f32x4.demote_f64x2_zero(a1), 0, 1, 4, 5));
    v128.store(sumGX + off, i32x4.shuffle(f32x4.demote_f64x2_zero(b0), f32x4.demote_f64x2_zero(b1), 0, 1, 4, 5));
  }
  for (; c < c1; c++) {
    const off = <usize>c << 2;
    const m = load<f32>(mean + off);
    let a: f64 = 0, b: f64 = 0;
    let pg = g + off, px = x + off;
    for (let r = 0; r < rows; r++, pg += ld, px += ld) {
      const gv = load<f32>(pg);
      a += <f64>gv;
      b += <f64>(gv * (load<f32>(px) - m));
    }
    store<f32>(sumG + off, <f32>a);
    store<f32>(sumGX + off, <f32>b);
  }
}

/**
 * From the sums, per channel (f64, stored float32), for batch statistics over `rows` values per channel:
 * coef[0·C + c] = k = γ·s, coef[1·C + c] = −k·Σg/rows, coef[2·C + c] = −k·s²·Σg(x−μ)/rows with s = 1/√(var + eps);
 * dgamma[c] = s·Σg(x−μ), dbeta[c] = Σg. (coef holds 3·C floats.)
 */
export function bn_backward_coeffs(variance: usize, gamma: usize, sumG: usize, sumGX: usize, rows: i32, eps: f64,
  coef: usize, dgamma: usize, dbeta: usize, C: i32): void {
  const inv = 1.0 / <f64>rows;
  const ld = <usize>C << 2;
  for (let c = 0; c < C; c++) {
    const o = <usize>c << 2;
    const s2 = 1 / (<f64>load<f32>(variance + o) + eps);
    const s = Math.sqrt(s2);
    const k = <f64>load<f32>(gamma + o) * s;
    const sg = <f64>load<f32>(sumG + o), sgx = <f64>load<f32>(sumGX + o);
    store<f32>(coef + o, <f32>k);
    store<f32>(coef + ld + o, <f32>(-k * sg * inv));
    store<f32>(coef + 2 * ld + o, <f32>(-k * s2 * sgx * inv));
    store<f32>(dgamma + o, <f32>(s * sgx));
    store<f32>(dbeta + o, <f32>sg);
  }
}

/** dx[r, c] = k·g + b + q·(x − μ) with (k, b, q) = coef rows 0, 1, 2, for rows [r0, r1) (training-mode ∂L/∂x). */
export function bn_backward_input(g: usize, x: usize, mean: usize, coef: usize, dx: usize, C: i32, r0: i32, r1: i32): void {
  const ld = <usize>C << 2, c4 = <usize>(C & ~3) << 2;
  const kp = coef, bp = coef + ld, qp = coef + 2 * ld;
  for (let r = r0; r < r1; r++) {
    const gr = g + <usize>r * ld, xr = x + <usize>r * ld, orow = dx + <usize>r * ld;
    let j: usize = 0;
    for (; j < c4; j += 16) {
      const xc = f32x4.sub(v128.load(xr + j), v128.load(mean + j));
      const kg = f32x4.add(f32x4.mul(v128.load(kp + j), v128.load(gr + j)), v128.load(bp + j));
      v128.store(orow + j, f32x4.add(kg, f32x4.mul(v128.load(qp + j), xc)));
    }
    for (; j < ld; j += 4) {
      const xc = load<f32>(xr + j) - load<f32>(mean + j);
      store<f32>(orow + j, load<f32>(kp + j) * load<f32>(gr + j) + load<f32>(bp + j) + load<f32>(qp + j) * xc);
    }
  }
}
