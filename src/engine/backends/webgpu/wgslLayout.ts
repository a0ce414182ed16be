/**
 * WGSL sources of the WebGPU backend's layout, indexing and pooling kernels (the kernel-table entries that were JS
 * loops before the device-storage contract): transpose, permute, strided copies, sums to a broadcast shape,
 * gather/scatter, padding, im2col/col2im, average pooling. Conventions as in wgsl.ts (uniform words, bindings).
 */
import { PRELUDE, ENTRY_1D, GEOM, TWO_SUM, bindings, inputPosition, insideWindow, outputPosition } from "./wgsl.js";

/** out[j·M + i] = x[i·N + j]. Words: 0 n, 1 M, 2 N. */
export const TRANSPOSE = `${PRELUDE}${bindings(["x"], ["out"])}
${ENTRY_1D}
  if (i >= pu(0u)) { return; }
  let M = pu(1u);
  let N = pu(2u);
  let r = i % M;
  let c = i / M;
  out[i] = x[r * N + c];
}`;

/**
 * out[i] = x[offset(i)] where offset decodes i over `shape` (rank ≤ 8, words 8…15) with x strides (words 16…23):
 * broadcast copies and permutations. Words: 0 n, 1 rank.
 */
export const STRIDED_COPY = `${PRELUDE}${bindings(["x"], ["out"])}
${ENTRY_1D}
  if (i >= pu(0u)) { return; }
  var rem = i;
  var o = 0u;
  for (var d = pu(1u); d > 0u; d = d - 1u) {
    let s = pu(7u + d);
    o = o + (rem % s) * pu(15u + d);
    rem = rem / s;
  }
  out[i] = x[o];
}`;

/**
 * Partial sums to a broadcast shape: thread (chunk q, output k) sums, in x's row-major order, the x elements of
 * summed indices [q·chunk, (q+1)·chunk) that map to k. Axes (rank ≤ 8) have shape (words 8…15), x strides
 * (16…23) and out strides (24…31, 0 on summed axes). Words: 0 threads, 1 rank, 2 chunk, 3 out length, 4 summed
 * count. Writes (hi, lo) to part[(q·outLen + k)·2 …] for SUM_COLUMNS_FINAL.
 */
export const SUM_TO_SHAPE_PARTIAL = `${PRELUDE}${TWO_SUM}${bindings(["x"], ["part"])}
${ENTRY_1D}
  if (i >= pu(0u)) { return; }
  let rank = pu(1u);
  let chunk = pu(2u);
  let outLen = pu(3u);
  let count = pu(4u);
  let k = i % outLen;
  let q = i / outLen;
  var base = 0u;
  for (var d = 0u; d < rank; d = d + 1u) {
    let os = pu(24u + d);
    if (os != 0u) { base = base + ((k / os) % pu(8u + d)) * pu(16u + d); }
  }
  let s1 = min(count, (q + 1u) * chunk);
  var acc = vec2<f32>(0.0, 0.0);
  for (var s = q * chunk; s < s1; s = s + 1u) {
    var rem = s;
    var off = base;
    for (var d = rank; d > 0u; d = d - 1u) {
      if (pu(23u + d) == 0u) {
        let n = pu(7u + d);
        off = off + (rem % n) * pu(15u + d);
        rem = rem / n;
      }
    }
    acc = add2(acc, x[off]);
  }
  part[2u * i] = acc.x;
  part[2u * i + 1u] = acc.y;
}`;

/** out[i] = x[idx[i]]. Words: 0 n. */
export const GATHER = `${PRELUDE}${bindings(["x"], ["out"])}
@group(0) @binding(3) var<storage, read> idx: array<i32>;
${ENTRY_1D}
  if (i >= pu(0u)) { return; }
  out[i] = x[u32(idx[i])];
}`;

/**
 * scatterAdd by an inverse index (CSR: for output k, positions list[start[k] … start[k+1]) in increasing order):
 * out[k] = Σ g[list[j]] in that order. Words: 0 n (outputs).
 */
export const SCATTER_CSR = `${PRELUDE}${bindings(["g"], ["out"])}
@group(0) @binding(3) var<storage, read> start: array<i32>;
@group(0) @binding(4) var<storage, read> list: array<i32>;
${ENTRY_1D}
  if (i >= pu(0u)) { return; }
  var acc = 0.0;
  for (var j = start[i]; j < start[i + 1u]; j = j + 1) { acc = acc + g[u32(list[u32(j)])]; }
  out[i] = acc;
}`;

/** scatterAdd with device indices and no structure known: one thread, in order (correct, slow). Words: 0 n out, 1 n g. */
export const SCATTER_SERIAL = `${PRELUDE}${bindings(["g"], ["out"])}
@group(0) @binding(3) var<storage, read> idx: array<i32>;
@compute @workgroup_size(1)
fn main() {
  for (var k = 0u; k < pu(0u); k = k + 1u) { out[k] = 0.0; }
  for (var i = 0u; i < pu(1u); i = i + 1u) { let k = u32(idx[i]); out[k] = out[k] + g[i]; }
}`;

/** `body` for each window (oy, ox) containing input pixel (iy, ix), in increasing window order (ky, kx its offset). */
function windowsOfInput(body: string): string {
  return `
  for (var oy = 0u; oy < outH; oy = oy + 1u) {
    let ty = iy + padTop - i32(oy * sh);
    if (ty < 0 || ty % i32(dh) != 0 || u32(ty) / dh >= kh) { continue; }
    let ky = u32(ty) / dh;
    for (var ox = 0u; ox < outW; ox = ox + 1u) {
      let tx = ix + padLeft - i32(ox * sw);
      if (tx < 0 || tx % i32(dw) != 0 || u32(tx) / dw >= kw) { continue; }
      let kx = u32(tx) / dw;
      ${body}
    }
  }`;
}

/**
 * Backward of max pooling from its argmax: thread per x element gathers dy of the windows (in increasing window
 * order) whose argmax is this element. Same result as scatterAdd(dy, idx) in index order.
 */
export const MAX_POOL_BACKWARD = `${PRELUDE}${bindings(["g"], ["out"])}
@group(0) @binding(3) var<storage, read> idx: array<i32>;
${ENTRY_1D}
  if (i >= pu(0u)) { return; }
${GEOM}${inputPosition("ch")}
  var acc = 0.0;${windowsOfInput(`
      let o = ((b * outH + oy) * outW + ox) * c + ch;
      if (u32(idx[o]) == i) { acc = acc + g[o]; }`)}
  out[i] = acc;
}`;

/** Patches of channels [c0, c0+cg) of x into cols [n·outH·outW, kh·kw·cg] (order ky, kx, c); zero in padding. */
export const IM2COL = `${PRELUDE}${bindings(["x"], ["cols"])}
${ENTRY_1D}
  if (i >= pu(0u)) { return; }
${GEOM}
  let ch = i % cg;
  let kx = (i / cg) % kw;
  let ky = (i / (cg * kw)) % kh;
  let r = i / (cg * kw * kh);
  let ox = r % outW;
  let oy = (r / outW) % outH;
  let b = r / (outW * outH);
  let iy = i32(oy * sh + ky * dh) - padTop;
  let ix = i32(ox * sw + kx * dw) - padLeft;
  var v = 0.0;
  if (iy >= 0 && iy < i32(h) && ix >= 0 && ix < i32(w)) { v = x[((b * h + u32(iy)) * w + u32(ix)) * c + c0 + ch]; }
  cols[i] = v;
}`;

/** Adjoint of IM2COL: thread per x element sums the cols entries that read it (channels outside [c0, c0+cg): 0). */
export const COL2IM = `${PRELUDE}${bindings(["cols"], ["x"])}
${ENTRY_1D}
  if (i >= pu(0u)) { return; }
${GEOM}${inputPosition("chAll")}
  var acc = 0.0;
  if (chAll >= c0 && chAll < c0 + cg) {
    let ch = chAll - c0;${windowsOfInput(`
      let r = (b * outH + oy) * outW + ox;
      acc = acc + cols[((r * kh + ky) * kw + kx) * cg + ch];`)}
  }
  x[i] = acc;
}`;

/** Number of input elements of window (oy, ox), or kh·kw when padding counts (flag). */
const DIVISOR = /* wgsl */ `
fn divisor(oy: u32, ox: u32, h: u32, w: u32, kh: u32, kw: u32, sh: u32, sw: u32, dh: u32, dw: u32,
           padTop: i32, padLeft: i32, flag: u32) -> f32 {
  if (flag != 0u) { return f32(kh * kw); }
  var inside = 0u;
  for (var ky = 0u; ky < kh; ky = ky + 1u) {
    let iy = i32(oy * sh + ky * dh) - padTop;
    for (var kx = 0u; kx < kw; kx = kx + 1u) {
      let ix = i32(ox * sw + kx * dw) - padLeft;
      if (iy >= 0 && iy < i32(h) && ix >= 0 && ix < i32(w)) { inside = inside + 1u; }
    }
  }
  return f32(inside);
}`;

/** Average pooling with zero padding (flag: count the padding in the divisor). */
export const AVG_POOL = `${PRELUDE}${DIVISOR}${bindings(["x"], ["out"])}
${ENTRY_1D}
  if (i >= pu(0u)) { return; }
${GEOM}${outputPosition("c", "ch")}
  var acc = 0.0;${insideWindow(`
      acc = acc + x[((b * h + u32(iy)) * w + u32(ix)) * c + ch];`)}
  out[i] = acc * (1.0 / divisor(oy, ox, h, w, kh, kw, sh, sw, dh, dw, padTop, padLeft, flag));
}`;

/** Adjoint of AVG_POOL: thread per x element sums dy[o]/divisor(o) over the windows containing it. */
export const AVG_POOL_BACKWARD = `${PRELUDE}${DIVISOR}${bindings(["dy"], ["dx"])}
${ENTRY_1D}
  if (i >= pu(0u)) { return; }
${GEOM}${inputPosition("ch")}
  var acc = 0.0;${windowsOfInput(`
      let o = ((b * outH + oy) * outW + ox) * c + ch;
      acc = acc + dy[o] * (1.0 / divisor(oy, ox, h, w, kh, kw, sh, sw, dh, dw, padTop, padLeft, flag));`)}
  dx[i] = acc;
}`;

/** out[b, ch] = (Σ_p x[b, p, ch]) / hw, compensated, in p order. Words: 0 n·c, 1 hw, 2 c. */
export const GLOBAL_AVG_POOL = `${PRELUDE}${TWO_SUM}${bindings(["x"], ["out"])}
${ENTRY_1D}
  if (i >= pu(0u)) { return; }
  let hw = pu(1u);
  let c = pu(2u);
  let b = i / c;
  let ch = i % c;
  var acc = vec2<f32>(0.0, 0.0);
  for (var p = 0u; p < hw; p = p + 1u) { acc = add2(acc, x[(b * hw + p) * c + ch]); }
  out[i] = (acc.x + acc.y) / f32(hw);
}`;

/** out[b, p, ch] = g[b, ch] / hw. Words: 0 n·hw·c, 1 hw, 2 c. */
export const SPREAD_MEAN = `${PRELUDE}${bindings(["g"], ["out"])}
${ENTRY_1D}
  if (i >= pu(0u)) { return; }
  let hw = pu(1u);
  let c = pu(2u);
  out[i] = g[(i / (hw * c)) * c + i % c] / f32(hw);
}`;

/**
 * Constant padding of NHWC x [n,h,w,c] into out [n,H,W,c] (H = h + top + bottom): words 1 h, 2 w, 3 c, 4 top,
 * 5 left, 6 H, 7 W, 8 the fill value. Crop (the adjoint) reads the same geometry the other way round.
 */
export const PAD2D = `${PRELUDE}${bindings(["x"], ["out"])}
${ENTRY_1D}
  if (i >= pu(0u)) { return; }
  let h = pu(1u); let w = pu(2u); let c = pu(3u); let top = pu(4u); let left = pu(5u);
  let H = pu(6u); let W = pu(7u);
  let ch = i % c;
  let X = (i / c) % W;
  let Y = (i / (c * W)) % H;
  let b = i / (c * W * H);
  var v = pf(8u);
  if (Y >= top && Y < top + h && X >= left && X < left + w) { v = x[((b * h + Y - top) * w + X - left) * c + ch]; }
  out[i] = v;
}`;

/** out [n,h,w,c] = the interior of x [n,H,W,c] (words as PAD2D). */
export const CROP2D = `${PRELUDE}${bindings(["x"], ["out"])}
${ENTRY_1D}
  if (i >= pu(0u)) { return; }
  let h = pu(1u); let w = pu(2u); let c = pu(3u); let top = pu(4u); let left = pu(5u);
  let H = pu(6u); let W = pu(7u);
  let ch = i % c;
  let x0 = (i / c) % w;
  let y0 = (i / (c * w)) % h;
  let b = i / (c * w * h);
  out[i] = x[((b * H + y0 + top) * W + x0 + left) * c + ch];
}`;

/** Columns [off, off + width) of out [rows, total] = x [rows, width]. Words: 0 rows·width, 1 width, 2 total, 3 off. */
export const COPY_COLUMNS = `${PRELUDE}${bindings(["x"], ["out"])}
${ENTRY_1D}
  if (i >= pu(0u)) { return; }
  let width = pu(1u);
  out[(i / width) * pu(2u) + pu(3u) + i % width] = x[i];
}`;
