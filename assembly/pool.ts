// 2-D max and average pooling on NHWC data (PyTorch semantics, per-axis stride and dilation, padding top/left with
// bottom/right implied by outH/outW), SIMD over channels. Forward kernels take output-pixel row ranges; the
// backward kernels scatter into overlapping windows, so they take ranges of whole images (windows never cross
// images): a split across threads never has two threads add into the same element, and the order of the adds
// into each element is the scan order whatever the split.

/**
 * y[o, ch] = max over the window of x (−∞ padding), idx[o, ch] = flat index into x of that maximum (first in scan
 * order on ties; a NaN wins, and a later NaN replaces it, like `v > best || v !== v`), for output pixels [r0, r1)
 * (row = (n·outH + oy)·outW + ox). A window wholly in the padding gets y = −∞ and idx = −1; returns how many.
 */
export function maxPoolForward(x: usize, y: usize, idx: usize, n: i32, h: i32, w: i32, c: i32, kh: i32, kw: i32,
  sh: i32, sw: i32, dh: i32, dw: i32, padT: i32, padL: i32, outH: i32, outW: i32, r0: i32, r1: i32): i32 {
  const hw = outH * outW, c4 = c & ~3;
  const lanes = i32x4(0, 1, 2, 3);
  let empty = 0;
  if (r0 < 0) r0 = 0;
  if (r1 > n * hw) r1 = n * hw;
  for (let i = r0; i < r1; i++) {
    const b = i / hw, r = i - b * hw, oy = r / outW, ox = r - oy * outW;
    const y0 = oy * sh - padT, x0 = ox * sw - padL;
    const yo = y + ((<usize>i * <usize>c) << 2), io = idx + ((<usize>i * <usize>c) << 2);
    for (let ch = 0; ch < c; ch += 4) {
      const full = ch < c4;
      let best = f32x4.splat(-Infinity), at = i32x4.splat(-1);
      let bestS: f32 = -Infinity, atS: i32 = -1;
      let seen = false;
      for (let ky = 0; ky < kh; ky++) {
        const iy = y0 + ky * dh;
        if (iy < 0 || iy >= h) continue;
        for (let kx = 0; kx < kw; kx++) {
          const ix = x0 + kx * dw;
          if (ix < 0 || ix >= w) continue;
          const flat = ((b * h + iy) * w + ix) * c + ch;
          if (full) {
            const v = v128.load(x + (<usize>flat << 2));
            const pos = i32x4.add(i32x4.splat(flat), lanes);
            if (!seen) {
              best = v;
              at = pos;
            } else {
              const take = v128.or(f32x4.gt(v, best), f32x4.ne(v, v));
              best = v128.bitselect(v, best, take);
              at = v128.bitselect(pos, at, take);
            }
          } else {
            // Channel tail, one at a time with the same rule.
            for (let t = 0; t < c - ch; t++) {
              const v = load<f32>(x + (<usize>(flat + t) << 2));
              const prev = load<f32>(yo + (<usize>(ch + t) << 2));
              if (!seen || v > prev || v != v) {
                store<f32>(yo + (<usize>(ch + t) << 2), v);
                store<i32>(io + (<usize>(ch + t) << 2), flat + t);
              }
            }
          }
          seen = true;
        }
      }
      if (full) {
        v128.store(yo + (<usize>ch << 2), best);
        v128.store(io + (<usize>ch << 2), at);
      } else if (!seen) {
        for (let t = 0; t < c - ch; t++) {
          store<f32>(yo + (<usize>(ch + t) << 2), bestS);
          store<i32>(io + (<usize>(ch + t) << 2), atS);
        }
      }
      if (!seen) empty++;
    }
  }
  return empty;
}

/**
 * dx = Σ over windows of dy at each window's argmax (idx from maxPoolForward), for images [r0, r1): dx of those
 * images is overwritten (accumulate 0) or added to (accumulate 1). Outputs are visited in order.
 */
export function maxPoolBackward(dy: usize, idx: usize, dx: usize, n: i32, h: i32, w: i32, c: i32, outH: i32,
  outW: i32, accumulate: i32, r0: i32, r1: i32): void {
  if (r0 < 0) r0 = 0;
  if (r1 > n) r1 = n;
  if (r1 <= r0) return;
  const inImg = <usize>h * <usize>w * <usize>c, outImg = <usize>outH * <usize>outW * <usize>c;
  if (!accumulate) memory.fill(dx + ((<usize>r0 * inImg) << 2), 0, (<usize>(r1 - r0) * inImg) << 2);
  const o1 = <usize>r1 * outImg;
  for (let o = <usize>r0 * outImg; o < o1; o++) {
    const at = load<i32>(idx + (o << 2));
    if (at < 0) continue;
    const p = dx + (<usize>at << 2);
    store<f32>(p, load<f32>(p) + load<f32>(dy + (o << 2)));
  }
}

/** 1 / the divisor of window (oy, ox): kh·kw when padding counts, else the number of input elements in it (0 if none). */
// @ts-ignore: decorator
@inline function avgScale(y0: i32, x0: i32, h: i32, w: i32, kh: i32, kw: i32, dh: i32, dw: i32, includePad: i32): f32 {
  if (includePad) return <f32>(1.0 / <f64>(kh * kw));
  let inside = 0;
  for (let ky = 0; ky < kh; ky++) {
    const iy = y0 + ky * dh;
    if (iy < 0 || iy >= h) continue;
    for (let kx = 0; kx < kw; kx++) {
      const ix = x0 + kx * dw;
      if (ix >= 0 && ix < w) inside++;
    }
  }
  return inside ? <f32>(1.0 / <f64>inside) : 0;
}

/**
 * y[o, ch] = scale(o) · Σ_window x (zero padding; sum in scan order, then one multiply), scale = 1 / divisor as in
 * avgPoolWindows (countIncludePad: kh·kw, else the elements inside), for output pixels [r0, r1). A window with no
 * element inside when padding does not count gets 0; returns how many such windows.
 */
export function avgPoolForward(x: usize, y: usize, n: i32, h: i32, w: i32, c: i32, kh: i32, kw: i32, sh: i32, sw: i32,
  dh: i32, dw: i32, padT: i32, padL: i32, outH: i32, outW: i32, countIncludePad: i32, r0: i32, r1: i32): i32 {
  const hw = outH * outW, c4 = c & ~3;
  let empty = 0;
  if (r0 < 0) r0 = 0;
  if (r1 > n * hw) r1 = n * hw;
  for (let i = r0; i < r1; i++) {
    const b = i / hw, r = i - b * hw, oy = r / outW, ox = r - oy * outW;
    const y0 = oy * sh - padT, x0 = ox * sw - padL;
    const scale = avgScale(y0, x0, h, w, kh, kw, dh, dw, countIncludePad);
    if (scale == 0) empty++;
    const yo = y + ((<usize>i * <usize>c) << 2);
    const sv = f32x4.splat(scale);
    for (let ch = 0; ch < c; ch += 4) {
      const lanesLeft = c - ch;
      let s = f32x4.splat(0);
      let s0: f32 = 0, s1: f32 = 0, s2: f32 = 0;
      for (let ky = 0; ky < kh; ky++) {
        const iy = y0 + ky * dh;
        if (iy < 0 || iy >= h) continue;
        for (let kx = 0; kx < kw; kx++) {
          const ix = x0 + kx * dw;
          if (ix < 0 || ix >= w) continue;
          const src = x + ((<usize>(((b * h + iy) * w + ix) * c + ch)) << 2);
          if (ch < c4) s = f32x4.add(s, v128.load(src));
          else {
            s0 += load<f32>(src);
            if (lanesLeft > 1) s1 += load<f32>(src, 4);
            if (lanesLeft > 2) s2 += load<f32>(src, 8);
          }
        }
      }
      if (ch < c4) v128.store(yo + (<usize>ch << 2), f32x4.mul(s, sv));
      else {
        store<f32>(yo + (<usize>ch << 2), s0 * scale);
        if (lanesLeft > 1) store<f32>(yo + (<usize>ch << 2), s1 * scale, 4);
        if (lanesLeft > 2) store<f32>(yo + (<usize>ch << 2), s2 * scale, 8);
      }
    }
  }
  return empty;
}

/**
 * dx = the adjoint of avgPoolForward applied to dy: every window element gets dy[o, ch] · scale(o), windows in
 * output order, for images [r0, r1); dx of those images is overwritten (accumulate 0) or added to (accumulate 1).
 */
export function avgPoolBackward(dy: usize, dx: usize, n: i32, h: i32, w: i32, c: i32, kh: i32, kw: i32, sh: i32,
  sw: i32, dh: i32, dw: i32, padT: i32, padL: i32, outH: i32, outW: i32, countIncludePad: i32, accumulate: i32, r0: i32,
  r1: i32): void {
  if (r0 < 0) r0 = 0;
  if (r1 > n) r1 = n;
  if (r1 <= r0) return;
  const inImg = <usize>h * <usize>w * <usize>c, c4 = c & ~3;
  if (!accumulate) memory.fill(dx + ((<usize>r0 * inImg) << 2), 0, (<usize>(r1 - r0) * inImg) << 2);
  for (let b = r0; b < r1; b++) {
    for (let oy = 0; oy < outH; oy++) {
      for (let ox = 0; ox < outW; ox++) {
        const y0 = oy * sh - padT, x0 = ox * sw - padL;
        const scale = avgScale(y0, x0, h, w, kh, kw, dh, dw, countIncludePad);
        const sv = f32x4.splat(scale);
        const go = dy + ((<usize>(((b * outH + oy) * outW + ox) * c)) << 2);
        for (let ky = 0; ky < kh; ky++) {
          const iy = y0 + ky * dh;
          if (iy < 0 || iy >= h) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ix = x0 + kx * dw;
            if (ix < 0 || ix >= w) continue;
            const dst = dx + ((<usize>(((b * h + iy) * w + ix) * c)) << 2);
            let ch = 0;
            for (; ch < c4; ch += 4) {
              const p = dst + (<usize>ch << 2);
              v128.store(p, f32x4.add(v128.load(p), f32x4.mul(v128.load(go + (<usize>ch << 2)), sv)));
            }
            for (; ch < c; ch++) {
              const p = dst + (<usize>ch << 2);
              store<f32>(p, load<f32>(p) + load<f32>(go + (<usize>ch << 2)) * scale);
            }
          }
        }
      }
    }
  }
}
