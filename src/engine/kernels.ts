/**
 * Raw numeric loops on typed arrays. No allocation policy and no autodiff here: ops.ts wraps these.
 * Kept separate so a faster implementation (wasm, threads) can replace one kernel at a time.
 */
import type { Data } from "./tensor.js";
import { wasmMatmul } from "./wasmKernels.js";

/**
 * C[M,N] = A[M,K] · B[K,N], all row-major, C overwritten.
 * Four rows of A at a time so each loaded row of B feeds four accumulations; all-zero groups of A (common after
 * ReLU) are skipped.
 */
export function matmul(A: Data, B: Data, C: Data, M: number, K: number, N: number): void {
  // float32 goes to the wasm SIMD kernel when it is built; float64 (used by the exactness tests) stays in JS.
  if (A instanceof Float32Array && B instanceof Float32Array && C instanceof Float32Array && M * K * N >= 4096 && wasmMatmul(A, B, C, M, K, N)) return;
  matmulJs(A, B, C, M, K, N);
}

export function matmulJs(A: Data, B: Data, C: Data, M: number, K: number, N: number): void {
  C.fill(0);
  let i = 0;
  for (; i + 3 < M; i += 4) {
    const c0 = i * N, c1 = c0 + N, c2 = c1 + N, c3 = c2 + N;
    const a0o = i * K, a1o = a0o + K, a2o = a1o + K, a3o = a2o + K;
    for (let k = 0; k < K; k++) {
      const a0 = A[a0o + k], a1 = A[a1o + k], a2 = A[a2o + k], a3 = A[a3o + k];
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
    const ci = i * N, ao = i * K;
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
  let outH: number, outW: number, padTop = 0, padLeft = 0;
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
  let o = 0;
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < outH; oy++) {
      for (let ox = 0; ox < outW; ox++) {
        for (let ch = 0; ch < c; ch++, o++) {
          let best = -Infinity, bestAt = -1;
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
