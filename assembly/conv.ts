// 2-D convolutions without an im2col matrix (implicit GEMM): the GEMM driver (gemm.ts) gathers blocks of patch
// rows (at most 64 × 256 floats) into per-thread scratch instead of materialising [pixels, kh·kw·cin]. PyTorch
// semantics on NHWC data: weights [cout, kh, kw, cin / groups], per-axis stride and dilation, padding top/left
// (bottom/right are implied by outH/outW, which the caller computes as convGeometry does). Row ranges (r0, r1)
// select output rows as the kernel ABI requires; every element's sum runs in the same order whatever the range.

import { drive, MODE_CONV_BWD_IN, MODE_CONV_BWD_W, MODE_CONV_FWD } from "./gemm";
import { setConvGeometry, setConvGroup, setConvPhase, setPatchColumn0 } from "./convpack";
import { CONV_SCRATCH_BYTES, CONV_SCRATCH_OFF, scratch } from "./scratch";
import { hsum, madd } from "./simd";

/** Bytes of scratch the narrow input-gradient path may use for its transposed weights. */
const NARROW_BYTES: usize = 256 * 1024;

// The phased input gradient's area (from CONV_SCRATCH_OFF, untouched by the driver): the phase's taps (16 bytes
// each, see convpack.ts), its rows (input pixel indices), and the driver's result for those rows.
const PHASE_TAPS_OFF: usize = 0;
const MAX_PHASE_TAPS: i32 = 256;
const PHASE_ROWS_OFF: usize = 4096;
const MAX_PHASE_ROWS: i32 = 1024;
const PHASE_OUT_OFF: usize = PHASE_ROWS_OFF + <usize>MAX_PHASE_ROWS * 16;
const PHASE_OUT_FLOATS: i32 = <i32>((CONV_SCRATCH_BYTES - PHASE_OUT_OFF) >> 2);

/**
 * The input gradient of a strided convolution, one output phase at a time: the input pixels with
 * ((iy + padT) mod sh, (ix + padL) mod sw) = (ry, rx) receive only the taps with ky·dh ≡ ry (mod sh) and
 * kx·dw ≡ rx (mod sw), so each phase is a GEMM over those taps alone (no multiplications by the zeros between dy's
 * pixels). The phase's pixels in [r0, r1) go to the driver in batches (rows = pixels); its result rows are then
 * stored (or added) at their pixels. Pixels of a phase without taps get zeros (or are left as they are). Each dx element's sum is the driver's over
 * its phase's taps (in tap order, then co), whatever the batch or the range.
 */
function inputGradPhased(w: usize, dx: usize, n: i32, h: i32, wd: i32, c: i32, cout: i32, kh: i32, kw: i32,
  sh: i32, sw: i32, dh: i32, dw: i32, padT: i32, padL: i32, groups: i32, accumulate: i32, r0: i32, r1: i32): void {
  const cg = c / groups, og = cout / groups, hw = h * wd;
  if (r0 < 0) r0 = 0;
  if (r1 > n * hw) r1 = n * hw;
  if (r0 >= r1) return;
  const area = scratch() + CONV_SCRATCH_OFF;
  const taps = area + PHASE_TAPS_OFF, rows = area + PHASE_ROWS_OFF, out = area + PHASE_OUT_OFF;
  const cap = min(MAX_PHASE_ROWS, PHASE_OUT_FLOATS / cg) & ~3;
  // Pixels that no tap reaches get zeros: clear the whole range at once when some phase has no taps (the phases
  // with taps then overwrite theirs).
  if (!accumulate) {
    let tapless = false;
    for (let ry = 0; ry < sh && !tapless; ry++) {
      let rowTaps = false;
      for (let ky = 0; ky < kh; ky++) if ((ky * dh) % sh == ry) rowTaps = true;
      for (let rx = 0; rx < sw && !tapless; rx++) {
        let colTaps = false;
        for (let kx = 0; kx < kw; kx++) if ((kx * dw) % sw == rx) colTaps = true;
        tapless = !rowTaps || !colTaps;
      }
    }
    if (tapless) memory.fill(dx + ((<usize>r0 * <usize>c) << 2), 0, (<usize>(r1 - r0) * <usize>c) << 2);
  }
  for (let ry = 0; ry < sh; ry++) {
    for (let rx = 0; rx < sw; rx++) {
      let nt = 0;
      for (let ky = 0; ky < kh; ky++) {
        if ((ky * dh) % sh != ry) continue;
        for (let kx = 0; kx < kw; kx++) {
          if ((kx * dw) % sw != rx) continue;
          const rec = taps + (<usize>nt << 4);
          store<i32>(rec, ky * kw + kx);
          store<i32>(rec, (ky * dh - ry) / sh, 4);
          store<i32>(rec, (kx * dw - rx) / sw, 8);
          nt++;
        }
      }
      if (nt == 0) continue; // cleared above, or nothing to add
      // Walk the range image row by image row, collecting this phase's pixels.
      let cnt = 0;
      for (let q = r0; q < r1; ) {
        const b = q / hw, rr = q - b * hw, iy = rr / wd, ix = rr - iy * wd;
        const rowEnd = min(r1, q - ix + wd);
        if ((iy + padT) % sh == ry) {
          const oy0 = (iy + padT) / sh;
          let x = ix + (rx - (ix + padL) % sw + sw) % sw;
          for (let p = q - ix + x; p < rowEnd; p += sw, x += sw) {
            const rec = rows + (<usize>cnt << 4);
            store<i32>(rec, p);
            store<i32>(rec, b, 4);
            store<i32>(rec, oy0, 8);
            store<i32>(rec, (x + padL) / sw, 12);
            if (++cnt == cap) {
              phaseBatch(w, dx, c, cg, og, groups, rows, taps, nt, out, cnt, accumulate);
              cnt = 0;
            }
          }
        }
        q = rowEnd;
      }
      if (cnt > 0) phaseBatch(w, dx, c, cg, og, groups, rows, taps, nt, out, cnt, accumulate);
    }
  }
}

/** One batch of a phase's pixels (rows), every group: the driver into `out`, then out's rows to dx. */
function phaseBatch(w: usize, dx: usize, c: i32, cg: i32, og: i32, groups: i32, rows: usize, taps: usize, nt: i32,
  out: usize, cnt: i32, accumulate: i32): void {
  for (let g = 0; g < groups; g++) {
    setConvGroup(g, w);
    setConvPhase(rows, taps);
    drive(MODE_CONV_BWD_IN, 0, 0, 0, 0, 0, out, <usize>cg << 2, 0, cnt, nt * og, cg, 0, 0, 0, cnt);
    for (let i = 0; i < cnt; i++) {
      const q = load<i32>(rows + (<usize>i << 4));
      const dst = dx + ((<usize>q * <usize>c + <usize>(g * cg)) << 2), src = out + ((<usize>i * <usize>cg) << 2);
      let j = 0;
      if (accumulate) {
        for (; j + 4 <= cg; j += 4) {
          const o = <usize>j << 2;
          v128.store(dst + o, f32x4.add(v128.load(dst + o), v128.load(src + o)));
        }
        for (; j < cg; j++) store<f32>(dst + (<usize>j << 2), load<f32>(dst + (<usize>j << 2)) + load<f32>(src + (<usize>j << 2)));
      } else {
        for (; j + 4 <= cg; j += 4) v128.store(dst + (<usize>j << 2), v128.load(src + (<usize>j << 2)));
        for (; j < cg; j++) store<f32>(dst + (<usize>j << 2), load<f32>(src + (<usize>j << 2)));
      }
    }
  }
}

/**
 * Input gradient for groups of fewer than 8 input channels (e.g. a first layer on grey or RGB images): every dx
 * element is a dot product of dy rows (read in place, no gather) with a column of the weights (transposed into
 * scratch once per call, [cg, taps·og]); taps outside the output are skipped. Four partial sums along co (co mod 16
 * in quarters), then the lanes, then the co mod 4 tails; the same per-element sequence whatever the row range.
 */
function inputGradNarrow(dy: usize, w: usize, dx: usize, n: i32, h: i32, wd: i32, c: i32, cout: i32, kh: i32, kw: i32,
  sh: i32, sw: i32, dh: i32, dw: i32, padT: i32, padL: i32, outH: i32, outW: i32, g: i32, cg: i32, og: i32,
  accumulate: i32, r0: i32, r1: i32): void {
  const taps = kh * kw, K = taps * og;
  const bt = scratch();
  const wg = w + <usize>g * <usize>og * <usize>taps * <usize>cg * 4;
  for (let j = 0; j < cg; j++) {
    for (let co = 0; co < og; co++) {
      for (let t = 0; t < taps; t++) {
        store<f32>(bt + ((<usize>(j * K + t * og + co)) << 2), load<f32>(wg + ((<usize>((co * taps + t) * cg + j)) << 2)));
      }
    }
  }
  const o16 = og & ~15, o4 = og & ~3;
  const hw = h * wd;
  if (r0 < 0) r0 = 0;
  if (r1 > n * hw) r1 = n * hw;
  for (let q = r0; q < r1; q++) {
    const b = q / hw, r = q - b * hw, iy = r / wd, ix = r - iy * wd;
    const img = dy + <usize>b * <usize>outH * <usize>outW * <usize>cout * 4 + (<usize>(g * og) << 2);
    for (let j = 0; j < cg; j++) {
      const z = f32x4.splat(0);
      let s0 = z, s1 = z, s2 = z, s3 = z;
      let tail: f32 = 0;
      for (let ky = 0; ky < kh; ky++) {
        const ny = iy + padT - ky * dh, oy = sh == 1 ? ny : ny / sh;
        if (ny < 0 || oy * sh != ny || oy >= outH) continue;
        for (let kx = 0; kx < kw; kx++) {
          const nx = ix + padL - kx * dw, ox = sw == 1 ? nx : nx / sw;
          if (nx < 0 || ox * sw != nx || ox >= outW) continue;
          const src = img + ((<usize>(oy * outW + ox) * <usize>cout) << 2);
          const wc = bt + ((<usize>(j * K + (ky * kw + kx) * og)) << 2);
          let k = 0;
          for (; k < o16; k += 16) {
            const o = <usize>k << 2;
            s0 = madd(v128.load(src + o), v128.load(wc + o), s0);
            s1 = madd(v128.load(src + o, 16), v128.load(wc + o, 16), s1);
            s2 = madd(v128.load(src + o, 32), v128.load(wc + o, 32), s2);
            s3 = madd(v128.load(src + o, 48), v128.load(wc + o, 48), s3);
          }
          for (; k < o4; k += 4) s0 = madd(v128.load(src + (<usize>k << 2)), v128.load(wc + (<usize>k << 2)), s0);
          for (; k < og; k++) tail += load<f32>(src + (<usize>k << 2)) * load<f32>(wc + (<usize>k << 2));
        }
      }
      let v = hsum(f32x4.add(f32x4.add(s0, s1), f32x4.add(s2, s3))) + tail;
      const p = dx + ((<usize>q * <usize>c + <usize>(g * cg + j)) << 2);
      if (accumulate) v = load<f32>(p) + v;
      store<f32>(p, v);
    }
  }
}

/**
 * y[n, oy, ox, co] = act(Σ_{ky, kx, ci} x[n, oy·sh + ky·dh − padT, ox·sw + kx·dw − padL, g·cg + ci] · w[co, ky, kx, ci]
 * + bias[co]) for output pixels [r0, r1) (row = (n·outH + oy)·outW + ox), zero outside the image; g = co's group.
 * bias 0 = none; act 0 identity, 1 relu; accumulate 1 adds to y.
 */
export function conv2dForward(x: usize, w: usize, y: usize, bias: usize, n: i32, h: i32, wd: i32, c: i32, cout: i32,
  kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32, padT: i32, padL: i32, outH: i32, outW: i32, groups: i32,
  act: i32, accumulate: i32, r0: i32, r1: i32): void {
  setConvGeometry(x, n, h, wd, c, cout, kh, kw, sh, sw, dh, dw, padT, padL, outH, outW, groups);
  const cg = c / groups, og = cout / groups, K = kh * kw * cg, M = n * outH * outW;
  for (let g = 0; g < groups; g++) {
    setConvGroup(g, w);
    const wg = w + <usize>g * <usize>og * <usize>K * 4;
    drive(MODE_CONV_FWD, 0, 0, 0, wg, 1, y + (<usize>(g * og) << 2), <usize>cout << 2,
      bias ? bias + (<usize>(g * og) << 2) : 0, M, K, og, act, accumulate, r0, r1);
  }
}

/**
 * dx = the input gradient of conv2dForward for output gradient dy [n, outH, outW, cout], for input pixels [r0, r1)
 * (row = (n·h + iy)·w + ix), every channel. accumulate 1 adds to dx.
 */
export function conv2dBackwardInput(dy: usize, w: usize, dx: usize, n: i32, h: i32, wd: i32, c: i32, cout: i32,
  kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32, padT: i32, padL: i32, outH: i32, outW: i32, groups: i32,
  accumulate: i32, r0: i32, r1: i32): void {
  setConvGeometry(dy, n, h, wd, c, cout, kh, kw, sh, sw, dh, dw, padT, padL, outH, outW, groups);
  const cg = c / groups, og = cout / groups, K = kh * kw * og, M = n * h * wd;
  const narrow = cg < 8 && <usize>cg * <usize>K * 4 <= NARROW_BYTES;
  if (!narrow && (sh > 1 || sw > 1) && kh * kw <= MAX_PHASE_TAPS && cg <= PHASE_OUT_FLOATS >> 2) {
    inputGradPhased(w, dx, n, h, wd, c, cout, kh, kw, sh, sw, dh, dw, padT, padL, groups, accumulate, r0, r1);
    return;
  }
  for (let g = 0; g < groups; g++) {
    if (narrow) {
      inputGradNarrow(dy, w, dx, n, h, wd, c, cout, kh, kw, sh, sw, dh, dw, padT, padL, outH, outW, g, cg, og, accumulate, r0, r1);
      continue;
    }
    setConvGroup(g, w);
    drive(MODE_CONV_BWD_IN, 0, 0, 0, 0, 0, dx + (<usize>(g * cg) << 2), <usize>c << 2, 0, M, K, cg, 0, accumulate, r0, r1);
  }
}

/**
 * dw [cout, kh, kw, cin/groups] = the weight gradient of conv2dForward for input x and output gradient dy, for output
 * channels [r0, r1). The sum over pixels runs in increasing pixel order. accumulate 1 adds to dw.
 * (conv2dBackwardFilterColumns computes the same numbers split by columns instead.)
 */
export function conv2dBackwardFilter(x: usize, dy: usize, dwt: usize, n: i32, h: i32, wd: i32, c: i32, cout: i32,
  kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32, padT: i32, padL: i32, outH: i32, outW: i32, groups: i32,
  accumulate: i32, r0: i32, r1: i32): void {
  setConvGeometry(x, n, h, wd, c, cout, kh, kw, sh, sw, dh, dw, padT, padL, outH, outW, groups);
  const cg = c / groups, og = cout / groups, K = kh * kw * cg, P = n * outH * outW;
  for (let g = 0; g < groups; g++) {
    const lo = max(r0, g * og), hi = min(r1, (g + 1) * og);
    if (lo >= hi) continue;
    setConvGroup(g, 0);
    drive(MODE_CONV_BWD_W, dy + (<usize>(g * og) << 2), 4, <usize>cout << 2, 0, 0,
      dwt + <usize>(g * og) * <usize>K * 4, <usize>K << 2, 0, og, P, K, 0, accumulate, lo - g * og, hi - g * og);
  }
}

/**
 * A column boundary of conv2dBackwardFilterColumns: r rounded down to a multiple of 8 (whole panels of the driver),
 * and K when fewer than 8 columns would remain (so a slab never takes the driver's narrow path unless the whole
 * matrix does). Both sides of a split round a shared boundary alike, so the slabs tile [0, K).
 */
function columnBound(r: i32, K: i32): i32 {
  if (r <= 0) return 0;
  const a = r & ~7;
  return a >= K || K - a < 8 ? K : a;
}

/**
 * conv2dBackwardFilter's dw for columns [r0, r1) of every output channel's kh·kw·cin/groups (column = tap·cg + ci;
 * the range is rounded by columnBound): two threads then gather disjoint parts of the patches instead of every patch
 * each. Every element is computed exactly as conv2dBackwardFilter computes it (its lanes do not depend on the
 * other columns), so the numbers are the same whatever the split.
 */
export function conv2dBackwardFilterColumns(x: usize, dy: usize, dwt: usize, n: i32, h: i32, wd: i32, c: i32,
  cout: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32, padT: i32, padL: i32, outH: i32, outW: i32,
  groups: i32, accumulate: i32, r0: i32, r1: i32): void {
  setConvGeometry(x, n, h, wd, c, cout, kh, kw, sh, sw, dh, dw, padT, padL, outH, outW, groups);
  const cg = c / groups, og = cout / groups, K = kh * kw * cg, P = n * outH * outW;
  const lo = columnBound(r0, K), hi = columnBound(r1, K);
  if (lo >= hi) return;
  for (let g = 0; g < groups; g++) {
    setConvGroup(g, 0);
    setPatchColumn0(lo);
    drive(MODE_CONV_BWD_W, dy + (<usize>(g * og) << 2), 4, <usize>cout << 2, 0, 0,
      dwt + (<usize>(g * og) * <usize>K + <usize>lo) * 4, <usize>K << 2, 0, og, P, hi - lo, 0, accumulate, 0, og);
  }
}
