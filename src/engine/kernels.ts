/**
 * Raw numeric loops on typed arrays. No allocation policy and no autodiff here: ops.ts wraps these.
 * Kept separate so a faster implementation (wasm, threads) can replace one kernel at a time.
 */
import type { Data } from "./tensor.js";
import { allocStorage, kernels, type PoolWindow } from "./backend.js";
import { emptyPoolWindow } from "./wasmKernels.js";

/**
 * C[M,N] = A[M,K] · B[K,N], all row-major, C overwritten.
 * Four rows of A at a time so each loaded row of B feeds four accumulations; all-zero groups of A (common after
 * ReLU) are skipped.
 */
export function matmul(A: Data, B: Data, C: Data, M: number, K: number, N: number): void {
  // The active backend's kernel when it has one (wasm: float32); float64 (the exactness tests) stays in JS.
  const gemm = kernels().gemm;
  if (gemm && A instanceof Float32Array && M * K * N >= 4096 && gemm(A, B, C, M, K, N, false, false)) return;
  matmulJs(A, B, C, M, K, N);
}

export function matmulJs(A: Data, B: Data, C: Data, M: number, K: number, N: number): void {
  C.fill(0);
  let i = 0;
  for (; i + 3 < M; i += 4) {
    const c0 = i * N,
      c1 = c0 + N,
      c2 = c1 + N,
      c3 = c2 + N;
    const a0o = i * K,
      a1o = a0o + K,
      a2o = a1o + K,
      a3o = a2o + K;
    for (let k = 0; k < K; k++) {
      const a0 = A[a0o + k],
        a1 = A[a1o + k],
        a2 = A[a2o + k],
        a3 = A[a3o + k];
      if (a0 === 0 && a1 === 0 && a2 === 0 && a3 === 0) continue;
      const bk = k * N;
      for (let j = 0; j < N; j++) {
        const b = B[bk + j];
        C[c0 + j] += a0 * b;
        C[c1 + j] += a1 * b;
        C[c2 + j] += a2 * b;
        C[c3 + j] += a3 * b;
      }
    }
  }
  for (; i < M; i++) {
    const ci = i * N,
      ao = i * K;
    for (let k = 0; k < K; k++) {
      const a = A[ao + k];
      if (a === 0) continue;
      const bk = k * N;
      for (let j = 0; j < N; j++) C[ci + j] += a * B[bk + j];
    }
  }
}

/** out[N,M] = in[M,N]ᵀ. */
export function transpose(src: Data, out: Data, M: number, N: number): void {
  const TILE = 32;
  for (let i0 = 0; i0 < M; i0 += TILE) {
    const i1 = Math.min(M, i0 + TILE);
    for (let j0 = 0; j0 < N; j0 += TILE) {
      const j1 = Math.min(N, j0 + TILE);
      for (let i = i0; i < i1; i++) for (let j = j0; j < j1; j++) out[j * M + i] = src[i * N + j];
    }
  }
}

/** Geometry of a 2-D convolution or pooling window over NHWC data. */
export interface WindowGeometry {
  n: number;
  h: number;
  w: number;
  c: number;
  kh: number;
  kw: number;
  stride: number;
  padTop: number;
  padLeft: number;
  outH: number;
  outW: number;
}

export function windowGeometry(
  shape: readonly number[],
  kh: number,
  kw: number,
  stride: number,
  padding: "same" | "valid",
): WindowGeometry {
  const [n, h, w, c] = shape;
  let outH: number,
    outW: number,
    padTop = 0,
    padLeft = 0;
  if (padding === "same") {
    outH = Math.ceil(h / stride);
    outW = Math.ceil(w / stride);
    padTop = Math.floor(Math.max(0, (outH - 1) * stride + kh - h) / 2);
    padLeft = Math.floor(Math.max(0, (outW - 1) * stride + kw - w) / 2);
  } else {
    outH = Math.floor((h - kh) / stride) + 1;
    outW = Math.floor((w - kw) / stride) + 1;
  }
  if (outH <= 0 || outW <= 0) throw new RangeError(`window ${kh}x${kw} does not fit input ${h}x${w}`);
  return { n, h, w, c, kh, kw, stride, padTop, padLeft, outH, outW };
}

/** Patches of x [n,h,w,c] into cols [n·outH·outW, kh·kw·c] (order ky, kx, c); zero outside the image. */
export function im2col(x: Data, cols: Data, g: WindowGeometry): void {
  const { n, h, w, c, kh, kw, stride, padTop, padLeft, outH, outW } = g;
  const rowLen = kh * kw * c;
  let r = 0;
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < outH; oy++) {
      for (let ox = 0; ox < outW; ox++, r++) {
        let o = r * rowLen;
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * stride + ky - padTop;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox * stride + kx - padLeft;
            if (iy < 0 || iy >= h || ix < 0 || ix >= w) {
              for (let ch = 0; ch < c; ch++) cols[o++] = 0;
            } else {
              const s = ((b * h + iy) * w + ix) * c;
              for (let ch = 0; ch < c; ch++) cols[o++] = x[s + ch];
            }
          }
        }
      }
    }
  }
}

/** Adjoint of im2col: accumulates cols back into x [n,h,w,c] (x overwritten). */
export function col2im(cols: Data, x: Data, g: WindowGeometry): void {
  const { n, h, w, c, kh, kw, stride, padTop, padLeft, outH, outW } = g;
  x.fill(0);
  const rowLen = kh * kw * c;
  let r = 0;
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < outH; oy++) {
      for (let ox = 0; ox < outW; ox++, r++) {
        let o = r * rowLen;
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * stride + ky - padTop;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox * stride + kx - padLeft;
            if (iy < 0 || iy >= h || ix < 0 || ix >= w) {
              o += c;
            } else {
              const s = ((b * h + iy) * w + ix) * c;
              for (let ch = 0; ch < c; ch++) x[s + ch] += cols[o++];
            }
          }
        }
      }
    }
  }
}

/**
 * Flat index into x of each window's maximum, for max pooling of NHWC data with no padding ("valid").
 * Ties go to the first position in scan order, like PyTorch.
 */
export function maxPoolArgmax(x: Data, g: WindowGeometry): Int32Array {
  const { n, h, w, c, kh, kw, stride, outH, outW } = g;
  const idx = new Int32Array(n * outH * outW * c);
  if (
    nativeMaxPool(x, idx, {
      n,
      h,
      w,
      c,
      kh,
      kw,
      sh: stride,
      sw: stride,
      dh: 1,
      dw: 1,
      padTop: 0,
      padLeft: 0,
      outH,
      outW,
    })
  )
    return idx;
  let o = 0;
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < outH; oy++) {
      for (let ox = 0; ox < outW; ox++) {
        for (let ch = 0; ch < c; ch++, o++) {
          let best = -Infinity,
            bestAt = -1;
          for (let ky = 0; ky < kh; ky++) {
            const iy = oy * stride + ky;
            for (let kx = 0; kx < kw; kx++) {
              const at = ((b * h + iy) * w + ox * stride + kx) * c + ch;
              const v = x[at];
              if (v > best || bestAt < 0) {
                best = v;
                bestAt = at;
              }
            }
          }
          idx[o] = bestAt;
        }
      }
    }
  }
  return idx;
}

/** Argmax indices by the backend's max-pooling kernel (its values are recomputed by the caller's gather). */
function nativeMaxPool(x: Data, idx: Int32Array, win: PoolWindow): boolean {
  const k = kernels().maxPool;
  return k !== undefined && x instanceof Float32Array && k(x, allocStorage("float32", idx.length), idx, win);
}

/** Flat indices of every window element for average pooling: idx[k][o] is the k-th element of window o. */
export function poolWindowIndices(g: WindowGeometry): Int32Array[] {
  const { n, h, w, c, kh, kw, stride, outH, outW } = g;
  const size = n * outH * outW * c;
  const out: Int32Array[] = [];
  for (let ky = 0; ky < kh; ky++) {
    for (let kx = 0; kx < kw; kx++) {
      const idx = new Int32Array(size);
      let o = 0;
      for (let b = 0; b < n; b++)
        for (let oy = 0; oy < outH; oy++)
          for (let ox = 0; ox < outW; ox++)
            for (let ch = 0; ch < c; ch++, o++) idx[o] = ((b * h + oy * stride + ky) * w + ox * stride + kx) * c + ch;
      out.push(idx);
    }
  }
  return out;
}

/**
 * Geometry of a general 2-D window (PyTorch semantics) over NHWC data: per-axis stride and dilation, padding on
 * each side, and a channel range [c0, c0 + cg) of the input that the window reads (one group of a grouped conv).
 */
export interface ConvGeometry {
  n: number;
  h: number;
  w: number;
  /** Channels of the whole input. */
  c: number;
  /** First channel read, and how many (cg = c unless grouped). */
  c0: number;
  cg: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  padTop: number;
  padLeft: number;
  padBottom: number;
  padRight: number;
  outH: number;
  outW: number;
}

/**
 * Window geometry with PyTorch's output size, out = floor((in + padBefore + padAfter − d·(k−1) − 1) / s) + 1.
 * Throws RangeError for bad attributes or a (dilated) kernel larger than the padded input.
 */
export function convGeometry(
  shape: readonly number[],
  kernel: readonly [number, number],
  stride: readonly [number, number],
  padding: readonly [number, number, number, number],
  dilation: readonly [number, number] = [1, 1],
  c0 = 0,
  cg = shape[3],
): ConvGeometry {
  if (shape.length !== 4)
    throw new RangeError(`expected an NHWC image tensor [N,H,W,C], got shape [${shape.join(",")}]`);
  const [n, h, w, c] = shape;
  const positive = (v: number) => Number.isInteger(v) && v >= 1;
  const [kh, kw] = kernel,
    [sh, sw] = stride,
    [dh, dw] = dilation;
  const [padTop, padLeft, padBottom, padRight] = padding;
  if (!positive(kh) || !positive(kw))
    throw new RangeError(`kernel must be positive integers, got [${kernel.join(",")}]`);
  if (!positive(sh) || !positive(sw))
    throw new RangeError(`stride must be positive integers, got [${stride.join(",")}]`);
  if (!positive(dh) || !positive(dw))
    throw new RangeError(`dilation must be positive integers, got [${dilation.join(",")}]`);
  if (padding.length !== 4 || padding.some((p) => !Number.isInteger(p) || p < 0)) {
    throw new RangeError(
      `padding must be four non-negative integers [top, left, bottom, right], got [${padding.join(",")}]`,
    );
  }
  if (!Number.isInteger(c0) || !Number.isInteger(cg) || c0 < 0 || cg < 1 || c0 + cg > c) {
    throw new RangeError(`channel range [${c0}, ${c0 + cg}) is outside the input's ${c} channels`);
  }
  const effH = dh * (kh - 1) + 1,
    effW = dw * (kw - 1) + 1;
  const padH = h + padTop + padBottom,
    padW = w + padLeft + padRight;
  if (effH > padH || effW > padW) {
    throw new RangeError(
      `kernel ${kh}x${kw}` +
        (dh > 1 || dw > 1 ? ` (dilation ${dh}x${dw}, spans ${effH}x${effW})` : "") +
        ` is larger than the padded input ${padH}x${padW} (input ${h}x${w}, padding [${padding.join(",")}])`,
    );
  }
  const outH = Math.floor((padH - effH) / sh) + 1;
  const outW = Math.floor((padW - effW) / sw) + 1;
  return { n, h, w, c, c0, cg, kh, kw, sh, sw, dh, dw, padTop, padLeft, padBottom, padRight, outH, outW };
}

/** Patches of channels [c0, c0+cg) of x [n,h,w,c] into cols [n·outH·outW, kh·kw·cg] (order ky, kx, c); zero in padding. */
export function im2colGeneral(x: Data, cols: Data, g: ConvGeometry): void {
  const { n, h, w, c, c0, cg, kh, kw, sh, sw, dh, dw, padTop, padLeft, outH, outW } = g;
  let o = 0;
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < outH; oy++) {
      for (let ox = 0; ox < outW; ox++) {
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * sh + ky * dh - padTop;
          const rowOut = iy < 0 || iy >= h;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox * sw + kx * dw - padLeft;
            if (rowOut || ix < 0 || ix >= w) {
              for (let ch = 0; ch < cg; ch++) cols[o++] = 0;
            } else {
              const s = ((b * h + iy) * w + ix) * c + c0;
              for (let ch = 0; ch < cg; ch++) cols[o++] = x[s + ch];
            }
          }
        }
      }
    }
  }
}

/** Adjoint of im2colGeneral: accumulates cols into channels [c0, c0+cg) of x [n,h,w,c] (x overwritten, other channels 0). */
export function col2imGeneral(cols: Data, x: Data, g: ConvGeometry): void {
  const { n, h, w, c, c0, cg, kh, kw, sh, sw, dh, dw, padTop, padLeft, outH, outW } = g;
  x.fill(0);
  let o = 0;
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < outH; oy++) {
      for (let ox = 0; ox < outW; ox++) {
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * sh + ky * dh - padTop;
          const rowOut = iy < 0 || iy >= h;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox * sw + kx * dw - padLeft;
            if (rowOut || ix < 0 || ix >= w) {
              o += cg;
            } else {
              const s = ((b * h + iy) * w + ix) * c + c0;
              for (let ch = 0; ch < cg; ch++) x[s + ch] += cols[o++];
            }
          }
        }
      }
    }
  }
}

/**
 * Flat index into x of each window's maximum for max pooling with −∞ padding (all channels, c0/cg ignored).
 * Ties go to the first position in scan order and a NaN wins, like PyTorch. A window lying wholly in the padding
 * has no element to pick: RangeError.
 */
export function maxPoolArgmaxGeneral(x: Data, g: ConvGeometry): Int32Array {
  const { n, c, outH, outW } = g;
  const idx = new Int32Array(n * outH * outW * c);
  if (c === g.cg && !emptyPoolWindow(g) && nativeMaxPool(x, idx, g)) return idx;
  return maxPoolArgmaxGeneralJs(x, g);
}

/** The JS loop of {@link maxPoolArgmaxGeneral} (no backend kernel). */
export function maxPoolArgmaxGeneralJs(x: Data, g: ConvGeometry): Int32Array {
  const { n, h, w, c, kh, kw, sh, sw, dh, dw, padTop, padLeft, outH, outW } = g;
  const idx = new Int32Array(n * outH * outW * c);
  let o = 0;
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < outH; oy++) {
      for (let ox = 0; ox < outW; ox++) {
        for (let ch = 0; ch < c; ch++, o++) {
          let best = -Infinity,
            bestAt = -1;
          for (let ky = 0; ky < kh; ky++) {
            const iy = oy * sh + ky * dh - padTop;
            if (iy < 0 || iy >= h) continue;
            for (let kx = 0; kx < kw; kx++) {
              const ix = ox * sw + kx * dw - padLeft;
              if (ix < 0 || ix >= w) continue;
              const at = ((b * h + iy) * w + ix) * c + ch;
              const v = x[at];
              if (bestAt < 0 || v > best || v !== v) {
                best = v;
                bestAt = at;
              }
            }
          }
          if (bestAt < 0) throw new RangeError(`max pooling window at (${oy}, ${ox}) lies wholly in the padding`);
          idx[o] = bestAt;
        }
      }
    }
  }
  return idx;
}

/**
 * Window membership for average pooling with zero padding: for window o (NHWC output order, all channels),
 * idx[o·kh·kw + j] is the flat input index of its j-th element or −1 in the padding, and scale[o] is 1 / divisor
 * (kh·kw when padding counts, else the number of input elements in the window).
 */
export function avgPoolWindows(g: ConvGeometry, countIncludePad: boolean): { idx: Int32Array; scale: Float64Array } {
  const { n, h, w, c, kh, kw, sh, sw, dh, dw, padTop, padLeft, outH, outW } = g;
  const k = kh * kw,
    outs = n * outH * outW * c;
  const idx = new Int32Array(outs * k),
    scale = new Float64Array(outs);
  let o = 0;
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < outH; oy++) {
      for (let ox = 0; ox < outW; ox++) {
        for (let ch = 0; ch < c; ch++, o++) {
          let p = o * k,
            inside = 0;
          for (let ky = 0; ky < kh; ky++) {
            const iy = oy * sh + ky * dh - padTop;
            for (let kx = 0; kx < kw; kx++, p++) {
              const ix = ox * sw + kx * dw - padLeft;
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) {
                idx[p] = -1;
              } else {
                idx[p] = ((b * h + iy) * w + ix) * c + ch;
                inside++;
              }
            }
          }
          if (inside === 0 && !countIncludePad)
            throw new RangeError(`average pooling window at (${oy}, ${ox}) lies wholly in the padding`);
          scale[o] = 1 / (countIncludePad ? k : inside);
        }
      }
    }
  }
  return { idx, scale };
}

/** out[o] = scale[o] · Σ_j x[idx[o·k + j]] (idx −1 skipped): average pooling through its window table. */
export function windowMeanJs(x: Data, out: Data, idx: Int32Array, scale: Float64Array, k: number): void {
  for (let o = 0, p = 0; o < scale.length; o++) {
    let s = 0;
    for (let j = 0; j < k; j++, p++) {
      const i = idx[p];
      if (i >= 0) s += x[i];
    }
    out[o] = s * scale[o];
  }
}

/** Adjoint of windowMeanJs: out = 0, then scale[o]·g[o] is added to every element of window o. */
export function windowMeanAdjointJs(g: Data, out: Data, idx: Int32Array, scale: Float64Array, k: number): void {
  out.fill(0);
  for (let o = 0, p = 0; o < scale.length; o++) {
    const v = g[o] * scale[o];
    for (let j = 0; j < k; j++, p++) {
      const i = idx[p];
      if (i >= 0) out[i] += v;
    }
  }
}

// ---- Broadcasting, reductions and special functions (used by elementwise.ts) ----

/** Codes for broadcastBinary's operation (a switch outside the inner loop instead of a per-element closure). */
export const BIN_ADD = 0,
  BIN_SUB = 1,
  BIN_MUL = 2,
  BIN_DIV = 3;
const ZERO = new Float32Array(4);

/**
 * Strides (in elements) of a row-major array of `shape` when read as an array of `outShape` under numpy
 * broadcasting (right-aligned): 0 on axes where `shape` has size 1 or no axis. Shapes must already be compatible.
 */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const r = outShape.length,
    off = r - shape.length;
  const strides = new Array<number>(r).fill(0);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d + off] = shape[d] === 1 && outShape[d + off] !== 1 ? 0 : s;
    s *= shape[d];
  }
  return strides;
}

/** Moves an odometer over all axes but the last one step; returns the offset change for each of two operands. */
function step(
  idx: number[],
  shape: readonly number[],
  sa: readonly number[],
  sb: readonly number[],
  off: number[],
): void {
  for (let d = shape.length - 2; d >= 0; d--) {
    idx[d]++;
    off[0] += sa[d];
    off[1] += sb[d];
    if (idx[d] < shape[d]) return;
    off[0] -= sa[d] * shape[d];
    off[1] -= sb[d] * shape[d];
    idx[d] = 0;
  }
}

/** out[i] = a[ia] ∘ b[ib] over outShape, with a and b read through broadcast strides (see broadcastStrides). */
export function broadcastBinary(
  op: number,
  a: Data,
  aStrides: readonly number[],
  b: Data,
  bStrides: readonly number[],
  out: Data,
  outShape: readonly number[],
): void {
  if (out.length === 0) return;
  if (kernels().broadcastBinary?.(op, a, aStrides, b, bStrides, out, outShape)) return;
  broadcastBinaryJs(op, a, aStrides, b, bStrides, out, outShape);
}

/** The JS loop of {@link broadcastBinary} (no backend kernel). */
export function broadcastBinaryJs(
  op: number,
  a: Data,
  aStrides: readonly number[],
  b: Data,
  bStrides: readonly number[],
  out: Data,
  outShape: readonly number[],
): void {
  if (out.length === 0) return;
  const r = outShape.length;
  const n = r === 0 ? 1 : outShape[r - 1];
  const sa = r === 0 ? 0 : aStrides[r - 1],
    sb = r === 0 ? 0 : bStrides[r - 1];
  const idx = new Array<number>(Math.max(0, r - 1)).fill(0);
  const off = [0, 0];
  for (let o = 0; o < out.length; o += n) {
    const ao = off[0],
      bo = off[1];
    switch (op) {
      case BIN_ADD:
        for (let j = 0; j < n; j++) out[o + j] = a[ao + j * sa] + b[bo + j * sb];
        break;
      case BIN_SUB:
        for (let j = 0; j < n; j++) out[o + j] = a[ao + j * sa] - b[bo + j * sb];
        break;
      case BIN_MUL:
        for (let j = 0; j < n; j++) out[o + j] = a[ao + j * sa] * b[bo + j * sb];
        break;
      case BIN_DIV:
        for (let j = 0; j < n; j++) out[o + j] = a[ao + j * sa] / b[bo + j * sb];
        break;
      default:
        throw new RangeError(`broadcastBinary: unknown op ${op}`);
    }
    step(idx, outShape, aStrides, bStrides, off);
  }
}

/** out (of outShape) = x read through broadcast strides. */
export function broadcastCopy(x: Data, xStrides: readonly number[], out: Data, outShape: readonly number[]): void {
  if (out.length === 0) return;
  // Natively as x + 0 with the zero broadcast everywhere (x + 0 is x for every float but −0, which becomes +0).
  if (
    x instanceof Float32Array &&
    kernels().broadcastBinary?.(
      BIN_ADD,
      x,
      xStrides,
      ZERO,
      outShape.map(() => 0),
      out,
      outShape,
    )
  )
    return;
  broadcastCopyJs(x, xStrides, out, outShape);
}

/** The JS loop of {@link broadcastCopy} (no backend kernel). */
export function broadcastCopyJs(x: Data, xStrides: readonly number[], out: Data, outShape: readonly number[]): void {
  if (out.length === 0) return;
  const r = outShape.length;
  const n = r === 0 ? 1 : outShape[r - 1],
    sx = r === 0 ? 0 : xStrides[r - 1];
  const idx = new Array<number>(Math.max(0, r - 1)).fill(0);
  const off = [0, 0];
  for (let o = 0; o < out.length; o += n) {
    const xo = off[0];
    for (let j = 0; j < n; j++) out[o + j] = x[xo + j * sx];
    step(idx, outShape, xStrides, xStrides, off);
  }
}

/**
 * Adjoint of broadcastCopy: sums x (of xShape) into out, whose elements are addressed through outStrides
 * (broadcast strides of out's shape against xShape). Accumulates in float64; out is overwritten.
 */
export function sumToShape(x: Data, xShape: readonly number[], out: Data, outStrides: readonly number[]): void {
  // Summing every leading axis into the last one (a bias or BatchNorm gradient): the backend's column sums.
  const r0 = xShape.length;
  if (r0 >= 2 && outStrides[r0 - 1] === 1 && outStrides.slice(0, -1).every((v) => v === 0)) {
    const cols = xShape[r0 - 1];
    if (cols > 0 && kernels().sumColumns64?.(x, out, x.length / cols, cols)) return;
  }
  sumToShapeJs(x, xShape, out, outStrides);
}

/** The JS loop of {@link sumToShape} (no backend kernel). */
export function sumToShapeJs(x: Data, xShape: readonly number[], out: Data, outStrides: readonly number[]): void {
  const acc = new Float64Array(out.length);
  if (x.length > 0) {
    const r = xShape.length;
    const n = r === 0 ? 1 : xShape[r - 1],
      so = r === 0 ? 0 : outStrides[r - 1];
    const idx = new Array<number>(Math.max(0, r - 1)).fill(0);
    const off = [0, 0];
    for (let o = 0; o < x.length; o += n) {
      const oo = off[0];
      if (so === 0) {
        let s = 0;
        for (let j = 0; j < n; j++) s += x[o + j];
        acc[oo] += s;
      } else {
        for (let j = 0; j < n; j++) acc[oo + j * so] += x[o + j];
      }
      step(idx, xShape, outStrides, outStrides, off);
    }
  }
  out.set(acc);
}

const TWO_OVER_SQRT_PI = 1.1283791670955126;
const ONE_OVER_SQRT_PI = 0.5641895835477563;

/**
 * The error function to about 1e-15 relative accuracy. |x| < 2.5: the everywhere-positive series
 * erf(x) = 2/√π·e^{−x²}·Σ 2ⁿx^{2n+1}/(1·3···(2n+1)) (no cancellation); otherwise 1 − erfc(|x|) with erfc from
 * its continued fraction e^{−x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))), evaluated bottom-up.
 */
export function erfScalar(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax < 2.5) {
    const x2 = ax * ax;
    let term = ax,
      s = ax;
    for (let n = 1; n < 200; n++) {
      term *= (2 * x2) / (2 * n + 1);
      s += term;
      if (term < 1e-17 * s) break;
    }
    const v = TWO_OVER_SQRT_PI * Math.exp(-x2) * s;
    return x < 0 ? -v : v;
  }
  if (ax > 6.5) return x < 0 ? -1 : 1; // erfc(6.5) ≈ 4e-20: below float64 resolution of 1
  let t = ax;
  for (let n = 60; n >= 1; n--) t = ax + n / 2 / t;
  const erfc = (ONE_OVER_SQRT_PI * Math.exp(-ax * ax)) / t;
  const v = 1 - erfc;
  return x < 0 ? -v : v;
}

export function erf(x: Data, out: Data): void {
  for (let i = 0; i < x.length; i++) out[i] = erfScalar(x[i]);
}

/** Logistic sigmoid, without overflow for large |x|. */
export function sigmoid(x: Data, out: Data): void {
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (v >= 0) out[i] = 1 / (1 + Math.exp(-v));
    else {
      const e = Math.exp(v);
      out[i] = e / (1 + e);
    }
  }
}

/** x·sigmoid(x). */
export function silu(x: Data, out: Data): void {
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    out[i] = v >= 0 ? v / (1 + Math.exp(-v)) : (v * Math.exp(v)) / (1 + Math.exp(v));
  }
}

/** PyTorch softplus: log(1 + e^{βx})/β, or x where βx > threshold. mask gets 1 where the log branch is used. */
export function softplus(x: Data, out: Data, mask: Data, beta: number, threshold: number): void {
  for (let i = 0; i < x.length; i++) {
    const bx = beta * x[i];
    if (bx > threshold) out[i] = x[i];
    else {
      out[i] = Math.log1p(Math.exp(bx)) / beta;
      mask[i] = 1;
    }
  }
}

/** x^p elementwise (exact squares and square roots for p = 2, ±0.5). */
export function powScalar(x: Data, out: Data, p: number): void {
  if (p === 2) for (let i = 0; i < x.length; i++) out[i] = x[i] * x[i];
  else if (p === 0.5) for (let i = 0; i < x.length; i++) out[i] = Math.sqrt(x[i]);
  else if (p === -0.5) for (let i = 0; i < x.length; i++) out[i] = 1 / Math.sqrt(x[i]);
  else if (p === -1) for (let i = 0; i < x.length; i++) out[i] = 1 / x[i];
  else for (let i = 0; i < x.length; i++) out[i] = Math.pow(x[i], p);
}

/** GELU: x·Φ(x) (exact, with erf) or PyTorch's tanh approximation 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))). */
export function gelu(x: Data, out: Data, approximate: "none" | "tanh"): void {
  if (approximate === "tanh") {
    const k = Math.sqrt(2 / Math.PI);
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      out[i] = 0.5 * v * (1 + Math.tanh(k * (v + 0.044715 * v * v * v)));
    }
  } else {
    for (let i = 0; i < x.length; i++) out[i] = 0.5 * x[i] * (1 + erfScalar(x[i] * Math.SQRT1_2));
  }
}
