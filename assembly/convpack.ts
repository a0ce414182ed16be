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

import { scratch, SCRATCH_BYTES } from "./scratch";

let gN: i32 = 0, gH: i32 = 0, gW: i32 = 0, gC: i32 = 0, gCout: i32 = 0;
let gKh: i32 = 1, gKw: i32 = 1, gSh: i32 = 1, gSw: i32 = 1, gDh: i32 = 1, gDw: i32 = 1;
let gPadT: i32 = 0, gPadL: i32 = 0, gOutH: i32 = 1, gOutW: i32 = 1;
/** Channels per group in x (cg) and in y (og), and this group's first channel in each. */
let gCg: i32 = 1, gOg: i32 = 1, gX0: i32 = 0, gY0: i32 = 0;
/** The tensor the rows are gathered from (x, or dy for the input gradient), and this group's weights. */
let gSrc: usize = 0, gWts: usize = 0;

/**
 * The output phase of a strided input gradient (false = none): its rows (16-byte records per row of the driver:
 * input pixel q, image b, (iy + padT) / sh, (ix + padL) / sw) and its taps (16-byte records: tap index ky·kw + kx,
 * then (ky·dh − phase row) / sh, (kx·dw − phase column) / sw).
 */
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

/** Copies `len` floats, 16 at a time while 16 remain (the input gradient's runs of one tap's channels). */
// @ts-ignore: decorator
@inline function copyRun(dst: usize, src: usize, len: i32): void {
  let i = 0;
  for (; i + 16 <= len; i += 16) {
    const o = <usize>i << 2;
    const a = v128.load(src + o), b = v128.load(src + o, 16), c = v128.load(src + o, 32), d = v128.load(src + o, 48);
    v128.store(dst + o, a);
    v128.store(dst + o, b, 16);
    v128.store(dst + o, c, 32);
    v128.store(dst + o, d, 48);
  }
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
  if (gPhase || (gSh == 1 && gSw == 1 && kc <= MAX_SEGMENTS)) {
    packGradRows(dst, ic, ie, pc, kc);
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

/** Most segments (runs of one tap's channels) packGradRows keeps (32 bytes each, from INFO_OFF to the end). */
const MAX_SEGMENTS: i32 = 1024;

/**
 * The input-gradient gather by runs of one tap's channels ("segments" of the block's columns, laid out once per
 * block): rows are input pixels [ic, ie) (stride 1) or the phase's rows (gPhase: 16-byte records q, b, oy0, ox0
 * with oy0 = (iy + padT) / sh, ox0 = (ix + padL) / sw); a tap reads dy at (oy0 − its row offset, ox0 − its column
 * offset). One bounds check per row when all the block's taps land inside dy.
 */
function packGradRows(dst: usize, ic: i32, ie: i32, pc: i32, kc: i32): void {
  assert(kc <= MAX_SEGMENTS);
  const og = gOg;
  const seg = scratch() + INFO_OFF;
  let nseg = 0, k = pc, t = pc / og, co = pc - t * og;
  let minY = i32.MAX_VALUE, maxY = i32.MIN_VALUE, minX = i32.MAX_VALUE, maxX = i32.MIN_VALUE;
  const end = pc + kc;
  while (k < end) {
    const len = min(og - co, end - k);
    let dyo: i32, dxo: i32;
    if (gPhase) {
      const rec = gTaps + (<usize>t << 4);
      dyo = load<i32>(rec, 4);
      dxo = load<i32>(rec, 8);
    } else {
      const ky = t / gKw, kx = t - ky * gKw;
      dyo = ky * gDh;
      dxo = kx * gDw;
    }
    const r = seg + (<usize>nseg << 5);
    store<i32>(r, dyo);
    store<i32>(r, dxo, 4);
    store<i32>(r, gY0 + co, 8);
    store<i32>(r, len, 12);
    store<i32>(r, (k - pc) << 2, 16);
    store<i32>(r, ((gY0 + co) - (dyo * gOutW + dxo) * gCout) << 2, 20);
    minY = min(minY, dyo); maxY = max(maxY, dyo);
    minX = min(minX, dxo); maxX = max(maxX, dxo);
    nseg++;
    k += len;
    co = 0;
    t++;
  }
  const imgBytes = <usize>gOutH * <usize>gOutW * <usize>gCout * 4, rowBytes = <usize>kc << 2;
  const hw = gH * gW;
  const whole16 = (og & 15) == 0 && pc % og == 0 && kc % og == 0;
  let b = 0, iy = 0, ix = 0;
  if (!gPhase) {
    b = ic / hw;
    const r = ic - b * hw;
    iy = r / gW;
    ix = r - iy * gW;
  }
  let out = dst;
  for (let i = ic; i < ie; i++) {
    let oy0: i32, ox0: i32, bb: i32;
    if (gPhase) {
      const rec = gRows + (<usize>i << 4);
      bb = load<i32>(rec, 4);
      oy0 = load<i32>(rec, 8);
      ox0 = load<i32>(rec, 12);
    } else {
      bb = b;
      oy0 = iy + gPadT;
      ox0 = ix + gPadL;
      if (++ix == gW) {
        ix = 0;
        if (++iy == gH) {
          iy = 0;
          b++;
        }
      }
    }
    const img = gSrc + <usize>bb * imgBytes;
    if (oy0 - maxY >= 0 && oy0 - minY < gOutH && ox0 - maxX >= 0 && ox0 - minX < gOutW) {
      const base = img + ((<usize>(oy0 * gOutW + ox0) * <usize>gCout) << 2);
      if (whole16) {
        // Every segment is a whole tap of og (a multiple of 16) channels, back to back in the row.
        let o = out;
        for (let sg = 0; sg < nseg; sg++) {
          copyRun(o, base + <usize>load<i32>(seg + (<usize>sg << 5), 20), og);
          o += <usize>og << 2;
        }
      } else {
        for (let sg = 0; sg < nseg; sg++) {
          const r = seg + (<usize>sg << 5);
          const len = load<i32>(r, 12), o = out + <usize>load<i32>(r, 16), src = base + <usize>load<i32>(r, 20);
          if (len == 1) store<f32>(o, load<f32>(src));
          else copyRun(o, src, len);
        }
      }
    } else {
      for (let sg = 0; sg < nseg; sg++) {
        const r = seg + (<usize>sg << 5);
        const oy = oy0 - load<i32>(r), ox = ox0 - load<i32>(r, 4);
        const len = load<i32>(r, 12), o = out + <usize>load<i32>(r, 16);
        if (oy >= 0 && oy < gOutH && ox >= 0 && ox < gOutW) {
          const src = img + ((<usize>(oy * gOutW + ox) * <usize>gCout + <usize>load<i32>(r, 8)) << 2);
          if (len == 1) store<f32>(o, load<f32>(src));
          else copyRun(o, src, len);
        } else {
          zeroFloats(o, len);
        }
      }
    }
    out += rowBytes;
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

/** Most pixels packPatchPanels keeps tables for: 4 bytes each from INFO_OFF, 16 more from BORDER_OFF. */
const MAX_WHOLE_PIXELS: i32 = 1024;
const BORDER_OFF: usize = INFO_OFF + <usize>MAX_WHOLE_PIXELS * 4;
/** packPatchLanes' eight lanes (16 bytes each: dy·ky, dx·kx, channel, byte offset from the patch origin). */
const LANES_OFF: usize = BORDER_OFF + <usize>MAX_WHOLE_PIXELS * 16;
// Those tables, and packGradRows' segments, fit between INFO_OFF and the end of the driver's scratch.
assert(LANES_OFF + 128 <= SCRATCH_BYTES && INFO_OFF + <usize>MAX_SEGMENTS * 32 <= SCRATCH_BYTES);

/**
 * The tables of packPatchPanels and packPatchLanes for pixels [pc, pc+kc): per pixel (4 bytes from INFO_OFF) its
 * patch origin when the patch lies inside the image, else its image's start; per such border pixel (16 bytes from
 * BORDER_OFF) its index in the block, image start, y0, x0. Returns the number of border pixels.
 */
function locatePatches(pc: i32, kc: i32): i32 {
  const hw = gOutH * gOutW;
  const pix = scratch() + INFO_OFF, border = scratch() + BORDER_OFF;
  const spanY = (gKh - 1) * gDh, spanX = (gKw - 1) * gDw;
  const imgBytes = <usize>gH * <usize>gW * <usize>gC * 4;
  const b0 = pc / hw, q0 = pc - b0 * hw;
  let oy = q0 / gOutW, ox = q0 - oy * gOutW, nb = 0;
  let img = gSrc + <usize>b0 * imgBytes;
  for (let kk = 0; kk < kc; kk++) {
    const y0 = oy * gSh - gPadT, x0 = ox * gSw - gPadL;
    if (y0 >= 0 && y0 + spanY < gH && x0 >= 0 && x0 + spanX < gW) {
      store<i32>(pix + (<usize>kk << 2), <i32>(img + ((<usize>(y0 * gW + x0) * <usize>gC) << 2)));
    } else {
      store<i32>(pix + (<usize>kk << 2), <i32>img);
      const rec = border + (<usize>nb << 4);
      store<i32>(rec, kk);
      store<i32>(rec, <i32>img, 4);
      store<i32>(rec, y0, 8);
      store<i32>(rec, x0, 12);
      nb++;
    }
    if (++ox == gOutW) {
      ox = 0;
      if (++oy == gOutH) {
        oy = 0;
        img += imgBytes;
      }
    }
  }
  return nb;
}

/**
 * packPatches for any columns (the span condition of packPatchPanels): the same tables, then per panel eight
 * gathered lanes per pixel (lanes past the block's last column repeat it; their products are never stored), border
 * pixels redone with bounds checks per lane.
 */
function packPatchLanes(dst: usize, pc: i32, kc: i32, jc: i32, nc: i32): void {
  const cg = gCg, panels = (nc + 7) >> 3;
  const pix = scratch() + INFO_OFF, border = scratch() + BORDER_OFF, lanes = scratch() + LANES_OFF;
  const nb = locatePatches(pc, kc);
  for (let p = 0; p < panels; p++) {
    const j0 = jc + (p << 3);
    const wd = min(8, jc + nc - j0);
    for (let jj = 0; jj < 8; jj++) {
      const j = gCol0 + min(j0 + jj, j0 + wd - 1), tap = j / cg, ky = tap / gKw, kx = tap - ky * gKw;
      const ci = gX0 + j - tap * cg, rec = lanes + (<usize>jj << 4);
      store<i32>(rec, ky * gDh);
      store<i32>(rec, kx * gDw, 4);
      store<i32>(rec, ci, 8);
      store<i32>(rec, (((ky * gDh) * gW + kx * gDw) * gC + ci) << 2, 12);
    }
    const f0 = <usize>load<i32>(lanes, 12), f1 = <usize>load<i32>(lanes, 28), f2 = <usize>load<i32>(lanes, 44);
    const f3 = <usize>load<i32>(lanes, 60), f4 = <usize>load<i32>(lanes, 76), f5 = <usize>load<i32>(lanes, 92);
    const f6 = <usize>load<i32>(lanes, 108), f7 = <usize>load<i32>(lanes, 124);
    const out = dst + <usize>p * <usize>kc * 32;
    let o = out;
    for (let kk = 0; kk < kc; kk++) {
      const base = <usize>load<i32>(pix + (<usize>kk << 2));
      v128.store(o, f32x4(load<f32>(base + f0), load<f32>(base + f1), load<f32>(base + f2), load<f32>(base + f3)));
      v128.store(o, f32x4(load<f32>(base + f4), load<f32>(base + f5), load<f32>(base + f6), load<f32>(base + f7)), 16);
      o += 32;
    }
    for (let e = 0; e < nb; e++) {
      const rec = border + (<usize>e << 4);
      const ob = out + (<usize>load<i32>(rec) << 5), img = <usize>load<i32>(rec, 4);
      const y0 = load<i32>(rec, 8), x0 = load<i32>(rec, 12);
      for (let jj = 0; jj < 8; jj++) {
        const ln = lanes + (<usize>jj << 4);
        const iy = y0 + load<i32>(ln), ix = x0 + load<i32>(ln, 4);
        let v: f32 = 0;
        if (iy >= 0 && iy < gH && ix >= 0 && ix < gW) v = load<f32>(img + ((<usize>(iy * gW + ix) * <usize>gC + <usize>load<i32>(ln, 8)) << 2));
        store<f32>(ob + (<usize>jj << 2), v);
      }
    }
  }
}

/**
 * packPatches when every panel is 8 channels of one tap (cg and the first column multiples of 8, whole panels):
 * each pixel's patch origin is located once per block (a table), then each panel is filled pixel after pixel
 * (sequential stores, no bounds checks: a pixel whose patch reaches outside the image reads from its image's
 * start instead, which stays inside the image as the kernel's span is smaller than the image), and then the panel's
 * values of those border pixels are redone with bounds checks (a second table).
 */
function packPatchPanels(dst: usize, pc: i32, kc: i32, jc: i32, nc: i32): void {
  const cg = gCg, panels = nc >> 3;
  const pix = scratch() + INFO_OFF, border = scratch() + BORDER_OFF;
  const nb = locatePatches(pc, kc);
  for (let p = 0; p < panels; p++) {
    const j = gCol0 + jc + (p << 3), tap = j / cg, ky = tap / gKw, kx = tap - ky * gKw, ci = gX0 + j - tap * cg;
    const dyk = ky * gDh, dxk = kx * gDw;
    const off = <usize>((((dyk * gW + dxk) * gC + ci)) << 2);
    const out = dst + <usize>p * <usize>kc * 32;
    let o = out;
    let kk = 0;
    for (; kk + 2 <= kc; kk += 2) {
      const s0 = <usize>load<i32>(pix + (<usize>kk << 2)) + off, s1 = <usize>load<i32>(pix + (<usize>kk << 2), 4) + off;
      const a0 = v128.load(s0), a1 = v128.load(s0, 16), c0 = v128.load(s1), c1 = v128.load(s1, 16);
      v128.store(o, a0);
      v128.store(o, a1, 16);
      v128.store(o, c0, 32);
      v128.store(o, c1, 48);
      o += 64;
    }
    if (kk < kc) {
      const s0 = <usize>load<i32>(pix + (<usize>kk << 2)) + off;
      v128.store(o, v128.load(s0));
      v128.store(o, v128.load(s0, 16), 16);
    }
    for (let e = 0; e < nb; e++) {
      const rec = border + (<usize>e << 4);
      const ob = out + (<usize>load<i32>(rec) << 5);
      const iy = load<i32>(rec, 8) + dyk, ix = load<i32>(rec, 12) + dxk;
      if (iy >= 0 && iy < gH && ix >= 0 && ix < gW) {
        const src = <usize>load<i32>(rec, 4) + ((<usize>(iy * gW + ix) * <usize>gC + <usize>ci) << 2);
        v128.store(ob, v128.load(src));
        v128.store(ob, v128.load(src, 16), 16);
      } else {
        v128.store(ob, f32x4.splat(0));
        v128.store(ob, f32x4.splat(0), 16);
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
  // (A kernel span smaller than the image keeps packPatchPanels' unchecked reads of border pixels inside x.)
  if (kc <= MAX_WHOLE_PIXELS && (gKh - 1) * gDh < gH && (gKw - 1) * gDw < gW) {
    if (cg % 8 == 0 && (gCol0 & 7) == 0 && (nc & 7) == 0) packPatchPanels(dst, pc, kc, jc, nc);
    else packPatchLanes(dst, pc, kc, jc, nc);
    return;
  }
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
