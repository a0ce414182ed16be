// 2-D convolutions without an im2col matrix (implicit GEMM): the GEMM driver (gemm.ts) gathers blocks of patch
// rows (at most 64 × 256 floats) into per-thread scratch instead of materialising [pixels, kh·kw·cin]. PyTorch
// semantics on NHWC data: weights [cout, kh, kw, cin / groups], per-axis stride and dilation, padding top/left
// (bottom/right are implied by outH/outW, which the caller computes as convGeometry does). Row ranges (r0, r1)
// select output rows as the kernel ABI requires; every element's sum runs in the same order whatever the range.

import { drive, MODE_CONV_BWD_IN, MODE_CONV_BWD_W, MODE_CONV_FWD } from "./gemm";
import { setConvGeometry, setConvGroup } from "./convpack";

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
  for (let g = 0; g < groups; g++) {
    setConvGroup(g, w);
    drive(MODE_CONV_BWD_IN, 0, 0, 0, 0, 0, dx + (<usize>(g * cg) << 2), <usize>c << 2, 0, M, K, cg, 0, accumulate, r0, r1);
  }
}

/**
 * dw [cout, kh, kw, cin/groups] = the weight gradient of conv2dForward for input x and output gradient dy, for output
 * channels [r0, r1). The sum over pixels runs in increasing pixel order. accumulate 1 adds to dw.
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
