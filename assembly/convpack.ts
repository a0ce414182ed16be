// Operand gathers for the convolutions run as GEMMs by the driver in gemm.ts (nothing here is exported from the
// module). The convolution geometry lives in instance globals (one instance per thread), set by the kernels in
// conv.ts before each call of the driver. NHWC activations, weights [cout, kh, kw, cin / groups].
//
//   forward           y[p, co]       = Σ_{tap, ci} patch(p)[tap, ci] · w[co, tap, ci]    (rows: output pixels)
//   input gradient    dx[q, ci]      = Σ_{tap, co} dy[out(q, tap), co] · w[co, tap, ci]  (rows: input pixels)
//   filter gradient   dw[co, tap·ci] = Σ_p dy[p, co] · patch(p)[tap, ci]                 (rows: output channels)
//
// A strided input gradient runs one GEMM per output phase (setConvPhase): the input pixels whose (iy + padT) mod sh,
// (ix + padL) mod sw are fixed see only the taps with ky·dh ≡ that mod sh (and likewise kx), so their rows gather
// only those taps (k = phase tap·og + co) instead of mostly-zero columns. A filter gradient may be asked for a
// slab of its columns (setPatchColumn0).

import { scratch } from "./scratch";

let gN: i32 = 0, gH: i32 = 0, gW: i32 = 0, gC: i32 = 0, gCout: i32 = 0;
let gKh: i32 = 1, gKw: i32 = 1, gSh: i32 = 1, gSw: i32 = 1, gDh: i32 = 1, gDw: i32 = 1;
let gPadT: i32 = 0, gPadL: i32 = 0, gOutH: i32 = 1, gOutW: i32 = 1;
/** Channels per group in x (cg) and in y (og), and this group's first channel in each. */
let gCg: i32 = 1, gOg: i32 = 1, gX0: i32 = 0, gY0: i32 = 0;
/** The tensor the rows are gathered from (x, or dy for the input gradient), and this group's weights. */
let gSrc: usize = 0, gWts: usize = 0;

/** The output phase of a strided input gradient (0 = none): its rows (i32 input pixel indices, one per row of the
 * driver) and its taps (16-byte records: tap index ky·kw + kx, then (ky·dh − phase row) / sh, (kx·dw − phase col) / sw). */
let gPhase: bool = false;
let gRows: usize = 0, gTaps: usize = 0;
/** The first column of the patch matrix a filter-gradient call computes (its column 0). */
let gCol0: i32 = 0;

/** Bytes from the scratch start where the filter-gradient gather keeps 8 columns' tap offsets. */
const INFO_OFF: usize = 480 * 1024;

/** Sets the geometry (PyTorch semantics; outH/outW already computed by the caller) and the source tensor. */
export function setConvGeometry(src: usize, n: i32, h: i32, w: i32, c: i32, cout: i32, kh: i32, kw: i32, sh: i32,
  sw: i32, dh: i32, dw: i32, padT: i32, padL: i32, outH: i32, outW: i32, groups: i32): void {
  gSrc = src; gN = n; gH = h; gW = w; gC = c; gCout = cout; gKh = kh; gKw = kw; gSh = sh; gSw = sw; gDh = dh; gDw = dw;
  gPadT = padT; gPadL = padL; gOutH = outH; gOutW = outW;
  gCg = c / groups; gOg = cout / groups;
  gPhase = false;
  gCol0 = 0;
}

/** Makes the input-gradient gathers run on one output phase: rows from `rows`, taps from `taps` (see gPhase). */
export function setConvPhase(rows: usize, taps: usize): void {
  gPhase = true;
  gRows = rows;
  gTaps = taps;
}

/** Makes the filter-gradient gather start at column c0 of the patch matrix. */
export function setPatchColumn0(c0: i32): void {
  gCol0 = c0;
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
  const whole = pc == 0 && kc == gKh * gKw * cg;
  const spanY = (gKh - 1) * gDh, spanX = (gKw - 1) * gDw;
  const rowBytes = <usize>gW * <usize>gC * 4, tapBytes = <usize>gDw * <usize>gC * 4;
  let b = ic / hw, r = ic - b * hw, oy = r / gOutW, ox = r - oy * gOutW;
  for (let i = ic; i < ie; i++) {
    const y0 = oy * gSh - gPadT, x0 = ox * gSw - gPadL;
    const img = gSrc + <usize>b * <usize>gH * <usize>gW * <usize>gC * 4;
    let out = dst + <usize>(i - ic) * <usize>kc * 4;
    if (whole && y0 >= 0 && y0 + spanY < gH && x0 >= 0 && x0 + spanX < gW) {
      // The whole patch lies inside the image: copy it tap by tap without bounds checks.
      let src = img + ((<usize>(y0 * gW + x0) * <usize>gC + <usize>gX0) << 2);
      for (let ky = 0; ky < gKh; ky++) {
        let s = src;
        if (cg == 1) {
          for (let kx = 0; kx < gKw; kx++) {
            store<f32>(out, load<f32>(s));
            out += 4;
            s += tapBytes;
          }
        } else {
          for (let kx = 0; kx < gKw; kx++) {
            copyFloats(out, s, cg);
            out += <usize>cg << 2;
            s += tapBytes;
          }
        }
        src += <usize>gDh * rowBytes;
      }
    } else {
      let k = pc;
      const end = pc + kc;
      const tap0 = pc / cg;
      let ci = pc - tap0 * cg, ky = tap0 / gKw, kx = tap0 - ky * gKw;
      while (k < end) {
        const len = min(cg - ci, end - k);
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
        ci = 0;
        if (++kx == gKw) {
          kx = 0;
          ky++;
        }
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

/** Input gradient: rows [ic, ie) (input pixels) × columns [pc, pc+kc) of k = tap·og + co, gathered from dy. */
export function packOutputGradRows(dst: usize, ic: i32, ie: i32, pc: i32, kc: i32): void {
  if (gPhase) {
    packPhaseRows(dst, ic, ie, pc, kc);
    return;
  }
  const hw = gH * gW, og = gOg;
  for (let i = ic; i < ie; i++) {
    const b = i / hw, r = i - b * hw, iy = r / gW, ix = r - iy * gW;
    const img = gSrc + <usize>b * <usize>gOutH * <usize>gOutW * <usize>gCout * 4;
    let out = dst + <usize>(i - ic) * <usize>kc * 4;
    let k = pc;
    const end = pc + kc;
    const tap0 = pc / og;
    let co = pc - tap0 * og, ky = tap0 / gKw, kx = tap0 - ky * gKw;
    while (k < end) {
      const len = min(og - co, end - k);
      const ny = iy + gPadT - ky * gDh, nx = ix + gPadL - kx * gDw;
      const oy = gSh == 1 ? ny : ny / gSh, ox = gSw == 1 ? nx : nx / gSw;
      if (ny >= 0 && nx >= 0 && oy * gSh == ny && ox * gSw == nx && oy < gOutH && ox < gOutW) {
        const src = img + ((<usize>(oy * gOutW + ox) * <usize>gCout + <usize>(gY0 + co)) << 2);
        if (len == 1) store<f32>(out, load<f32>(src));
        else copyFloats(out, src, len);
      } else {
        zeroFloats(out, len);
      }
      out += <usize>len << 2;
      k += len;
      co = 0;
      if (++kx == gKw) {
        kx = 0;
        ky++;
      }
    }
  }
}

/** Input gradient of one output phase: row i is input pixel gRows[i]; column k = phase tap·og + co. */
function packPhaseRows(dst: usize, ic: i32, ie: i32, pc: i32, kc: i32): void {
  const hw = gH * gW, og = gOg;
  const imgBytes = <usize>gOutH * <usize>gOutW * <usize>gCout * 4;
  const t0 = pc / og, co0 = pc - t0 * og;
  for (let i = ic; i < ie; i++) {
    const q = load<i32>(gRows + (<usize>i << 2));
    const b = q / hw, r = q - b * hw, iy = r / gW, ix = r - iy * gW;
    // Every tap of the phase lands on an output pixel: (iy + padT − ky·dh) / sh = oy0 − (ky·dh − phase row) / sh.
    const oy0 = (iy + gPadT) / gSh, ox0 = (ix + gPadL) / gSw;
    const img = gSrc + <usize>b * imgBytes + (<usize>gY0 << 2);
    let out = dst + <usize>(i - ic) * <usize>kc * 4;
    let k = pc, t = t0, co = co0;
    const end = pc + kc;
    while (k < end) {
      const len = min(og - co, end - k);
      const rec = gTaps + (<usize>t << 4);
      const oy = oy0 - load<i32>(rec, 4), ox = ox0 - load<i32>(rec, 8);
      if (oy >= 0 && oy < gOutH && ox >= 0 && ox < gOutW) {
        const src = img + ((<usize>(oy * gOutW + ox) * <usize>gCout + <usize>co) << 2);
        if (len == 1) store<f32>(out, load<f32>(src));
        else copyFloats(out, src, len);
      } else {
        zeroFloats(out, len);
      }
      out += <usize>len << 2;
      k += len;
      co = 0;
      t++;
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
      const k = pc + kk, t = k / og, co = k - t * og;
      const tap = gPhase ? load<i32>(gTaps + (<usize>t << 4)) : t;
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

/**
 * Filter gradient: B[k = output pixel, j] = patch(k)[tap, ci] (gCol0 + j = tap·cg + ci) for k in [pc, pc+kc), in
 * panels of 8.
 */
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
      const j = gCol0 + min(j0 + jj, j0 + wd - 1), tap = j / cg, ky = tap / gKw, kx = tap - ky * gKw;
      store<i32>(info + (<usize>jj << 2), ky * gDh);
      store<i32>(info + (<usize>jj << 2), kx * gDw, 32);
      store<i32>(info + (<usize>jj << 2), gX0 + j - tap * cg, 64);
      // Byte offset from the patch origin's channel 0, for patches wholly inside the image.
      store<i32>(info + (<usize>jj << 2), (((ky * gDh) * gW + kx * gDw) * gC + gX0 + j - tap * cg) << 2, 96);
    }
    const spanY = (gKh - 1) * gDh, spanX = (gKw - 1) * gDw;
    // Eight columns within one tap (cg a multiple of 8 and the panel aligned to 8): one bounds check and two vector
    // loads per pixel.
    const oneTap = wd == 8 && cg % 8 == 0 && (gCol0 & 7) == 0;
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
      } else if (y0 >= 0 && y0 + spanY < gH && x0 >= 0 && x0 + spanX < gW) {
        // The whole patch lies inside the image: no bounds checks (columns past wd repeat the last one; their
        // products land in C columns that are never stored).
        const base = img + ((<usize>(y0 * gW + x0) * <usize>gC) << 2);
        v128.store(o, f32x4(
          load<f32>(base + <usize>load<i32>(info, 96)), load<f32>(base + <usize>load<i32>(info, 100)),
          load<f32>(base + <usize>load<i32>(info, 104)), load<f32>(base + <usize>load<i32>(info, 108))));
        v128.store(o, f32x4(
          load<f32>(base + <usize>load<i32>(info, 112)), load<f32>(base + <usize>load<i32>(info, 116)),
          load<f32>(base + <usize>load<i32>(info, 120)), load<f32>(base + <usize>load<i32>(info, 124))), 16);
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
