// Operand gathers for the convolutions run as GEMMs by the driver in gemm.ts (nothing here is exported from the
// module). The convolution geometry lives in instance globals (one instance per thread), set by the kernels in
// conv.ts before each call of the driver. NHWC activations, weights [cout, kh, kw, cin / groups].
//
//   forward           y[p, co]       = Σ_{tap, ci} patch(p)[tap, ci] · w[co, tap, ci]    (rows: output pixels)
//   input gradient    dx[q, ci]      = Σ_{tap, co} dy[out(q, tap), co] · w[co, tap, ci]  (rows: input pixels)
//   filter gradient   dw[co, tap·ci] = Σ_p dy[p, co] · patch(p)[tap, ci]                 (rows: output channels)

import { scratch } from "./scratch";

let gN: i32 = 0, gH: i32 = 0, gW: i32 = 0, gC: i32 = 0, gCout: i32 = 0;
let gKh: i32 = 1, gKw: i32 = 1, gSh: i32 = 1, gSw: i32 = 1, gDh: i32 = 1, gDw: i32 = 1;
let gPadT: i32 = 0, gPadL: i32 = 0, gOutH: i32 = 1, gOutW: i32 = 1;
/** Channels per group in x (cg) and in y (og), and this group's first channel in each. */
let gCg: i32 = 1, gOg: i32 = 1, gX0: i32 = 0, gY0: i32 = 0;
/** The tensor the rows are gathered from (x, or dy for the input gradient), and this group's weights. */
let gSrc: usize = 0, gWts: usize = 0;

/** Bytes from the scratch start where the filter-gradient gather keeps 8 columns' tap offsets. */
const INFO_OFF: usize = 480 * 1024;

/** Sets the geometry (PyTorch semantics; outH/outW already computed by the caller) and the source tensor. */
export function setConvGeometry(src: usize, n: i32, h: i32, w: i32, c: i32, cout: i32, kh: i32, kw: i32, sh: i32,
  sw: i32, dh: i32, dw: i32, padT: i32, padL: i32, outH: i32, outW: i32, groups: i32): void {
  gSrc = src; gN = n; gH = h; gW = w; gC = c; gCout = cout; gKh = kh; gKw = kw; gSh = sh; gSw = sw; gDh = dh; gDw = dw;
  gPadT = padT; gPadL = padL; gOutH = outH; gOutW = outW;
  gCg = c / groups; gOg = cout / groups;
}

/** Selects group g: its channel offsets and its weights (w + g·og·kh·kw·cg floats). */
export function setConvGroup(g: i32, wts: usize): void {
  gX0 = g * gCg;
  gY0 = g * gOg;
  gWts = wts + <usize>g * <usize>gOg * <usize>(gKh * gKw * gCg) * 4;
}

/** Copies `len` floats (SIMD while 4 remain). */
// @ts-ignore: decorator
@inline function copyFloats(dst: usize, src: usize, len: i32): void {
  let i = 0;
  for (; i + 4 <= len; i += 4) v128.store(dst + (<usize>i << 2), v128.load(src + (<usize>i << 2)));
  for (; i < len; i++) store<f32>(dst + (<usize>i << 2), load<f32>(src + (<usize>i << 2)));
}

// @ts-ignore: decorator
@inline function zeroFloats(dst: usize, len: i32): void {
  let i = 0;
  for (; i + 4 <= len; i += 4) v128.store(dst + (<usize>i << 2), f32x4.splat(0));
  for (; i < len; i++) store<f32>(dst + (<usize>i << 2), 0);
}

/** Forward: rows [ic, ie) (output pixels) × columns [pc, pc+kc) of the patch matrix, row-major into dst. */
export function packPatchRows(dst: usize, ic: i32, ie: i32, pc: i32, kc: i32): void {
  const hw = gOutH * gOutW, cg = gCg;
  for (let i = ic; i < ie; i++) {
    const b = i / hw, r = i - b * hw, oy = r / gOutW, ox = r - oy * gOutW;
    const y0 = oy * gSh - gPadT, x0 = ox * gSw - gPadL;
    const img = gSrc + <usize>b * <usize>gH * <usize>gW * <usize>gC * 4;
    let out = dst + <usize>(i - ic) * <usize>kc * 4;
    let k = pc;
    const end = pc + kc;
    while (k < end) {
      const tap = k / cg, ci = k - tap * cg;
      const len = min(cg - ci, end - k);
      const ky = tap / gKw, kx = tap - ky * gKw;
      const iy = y0 + ky * gDh, ix = x0 + kx * gDw;
      if (iy >= 0 && iy < gH && ix >= 0 && ix < gW) {
        const src = img + ((<usize>(iy * gW + ix) * <usize>gC + <usize>(gX0 + ci)) << 2);
        if (len == 1) store<f32>(out, load<f32>(src));
        else copyFloats(out, src, len);
      } else {
        zeroFloats(out, len);
      }
      out += <usize>len << 2;
      k += len;
    }
  }
}

/** Input gradient: rows [ic, ie) (input pixels) × columns [pc, pc+kc) of k = tap·og + co, gathered from dy. */
export function packOutputGradRows(dst: usize, ic: i32, ie: i32, pc: i32, kc: i32): void {
  const hw = gH * gW, og = gOg;
  for (let i = ic; i < ie; i++) {
    const b = i / hw, r = i - b * hw, iy = r / gW, ix = r - iy * gW;
    const img = gSrc + <usize>b * <usize>gOutH * <usize>gOutW * <usize>gCout * 4;
    let out = dst + <usize>(i - ic) * <usize>kc * 4;
    let k = pc;
    const end = pc + kc;
    while (k < end) {
      const tap = k / og, co = k - tap * og;
      const len = min(og - co, end - k);
      const ky = tap / gKw, kx = tap - ky * gKw;
      const ny = iy + gPadT - ky * gDh, nx = ix + gPadL - kx * gDw;
      const oy = ny / gSh, ox = nx / gSw;
      if (ny >= 0 && nx >= 0 && oy * gSh == ny && ox * gSw == nx && oy < gOutH && ox < gOutW) {
        const src = img + ((<usize>(oy * gOutW + ox) * <usize>gCout + <usize>(gY0 + co)) << 2);
        if (len == 1) store<f32>(out, load<f32>(src));
        else copyFloats(out, src, len);
      } else {
        zeroFloats(out, len);
      }
      out += <usize>len << 2;
      k += len;
    }
  }
}

/** Input gradient: B[k = tap·og + co, j = ci] = w[co, tap, ci] for k in [pc, pc+kc), j in [jc, jc+nc), in panels of 8. */
export function packWeightsForInputGrad(dst: usize, pc: i32, kc: i32, jc: i32, nc: i32): void {
  const taps = gKh * gKw, og = gOg, cg = gCg;
  const panels = (nc + 7) >> 3;
  for (let p = 0; p < panels; p++) {
    const j0 = jc + (p << 3);
    const wd = min(8, jc + nc - j0);
    const out = dst + <usize>p * <usize>kc * 32;
    for (let kk = 0; kk < kc; kk++) {
      const k = pc + kk, tap = k / og, co = k - tap * og;
      const src = gWts + ((<usize>(co * taps + tap) * <usize>cg + <usize>j0) << 2);
      const o = out + (<usize>kk << 5);
      if (wd == 8) {
        v128.store(o, v128.load(src));
        v128.store(o, v128.load(src, 16), 16);
      } else {
        v128.store(o, f32x4.splat(0));
        v128.store(o, f32x4.splat(0), 16);
        for (let jj = 0; jj < wd; jj++) store<f32>(o + (<usize>jj << 2), load<f32>(src + (<usize>jj << 2)));
      }
    }
  }
}

/** Filter gradient: B[k = output pixel, j = tap·cg + ci] = patch(k)[tap, ci] for k in [pc, pc+kc), in panels of 8. */
export function packPatches(dst: usize, pc: i32, kc: i32, jc: i32, nc: i32): void {
  const cg = gCg, hw = gOutH * gOutW;
  const info = scratch() + INFO_OFF; // per column: dy·ky, dx·kx, ci (i32 each, 8 columns)
  const panels = (nc + 7) >> 3;
  const imgBytes = <usize>gH * <usize>gW * <usize>gC * 4;
  for (let p = 0; p < panels; p++) {
    const j0 = jc + (p << 3);
    const wd = min(8, jc + nc - j0);
    const out = dst + <usize>p * <usize>kc * 32;
    for (let jj = 0; jj < 8; jj++) {
      const j = min(j0 + jj, j0 + wd - 1), tap = j / cg, ky = tap / gKw, kx = tap - ky * gKw;
      store<i32>(info + (<usize>jj << 2), ky * gDh);
      store<i32>(info + (<usize>jj << 2), kx * gDw, 32);
      store<i32>(info + (<usize>jj << 2), gX0 + j - tap * cg, 64);
    }
    // Eight columns within one tap (cg a multiple of 8): one bounds check and two vector loads per pixel.
    const oneTap = wd == 8 && cg % 8 == 0;
    const k0 = pc, b0 = k0 / hw, r0 = k0 - b0 * hw;
    let b = b0, oy = r0 / gOutW, ox = r0 - oy * gOutW;
    for (let kk = 0; kk < kc; kk++) {
      const o = out + (<usize>kk << 5);
      const img = gSrc + <usize>b * imgBytes;
      const y0 = oy * gSh - gPadT, x0 = ox * gSw - gPadL;
      if (oneTap) {
        const iy = y0 + load<i32>(info), ix = x0 + load<i32>(info, 32);
        if (iy >= 0 && iy < gH && ix >= 0 && ix < gW) {
          const src = img + ((<usize>(iy * gW + ix) * <usize>gC + <usize>load<i32>(info, 64)) << 2);
          v128.store(o, v128.load(src));
          v128.store(o, v128.load(src, 16), 16);
        } else {
          v128.store(o, f32x4.splat(0));
          v128.store(o, f32x4.splat(0), 16);
        }
      } else {
        for (let jj = 0; jj < 8; jj++) {
          let v: f32 = 0;
          if (jj < wd) {
            const iy = y0 + load<i32>(info + (<usize>jj << 2)), ix = x0 + load<i32>(info + (<usize>jj << 2), 32);
            if (iy >= 0 && iy < gH && ix >= 0 && ix < gW) {
              v = load<f32>(img + ((<usize>(iy * gW + ix) * <usize>gC + <usize>load<i32>(info + (<usize>jj << 2), 64)) << 2));
            }
          }
          store<f32>(o + (<usize>jj << 2), v);
        }
      }
      if (++ox == gOutW) {
        ox = 0;
        if (++oy == gOutH) {
          oy = 0;
          b++;
        }
      }
    }
  }
}
