// GEMM family (AssemblyScript → WebAssembly SIMD). Kernel ABI: tensor arguments are byte offsets of row-major f32
// data (16-byte aligned), sizes i32, and a kernel worth splitting across threads takes the output row range
// (r0, r1) as its last two arguments. Every output element is computed by the same sequence of float operations
// whatever (r0, r1) is (edge rows run the same vector code as full blocks), so a split across threads never
// changes a bit.
//
// One source, two instruction sets: built with `--enable relaxed-simd`, the multiply-add is f32x4.relaxed_madd
// (a fused multiply-add on x86 with FMA); otherwise f32x4.mul then f32x4.add.

import { scratch, SCRATCH_BYTES } from "./scratch";
import { hsum, madd, relu4 } from "./simd";
import { packOutputGradRows, packPatches, packPatchRows, packWeightsForInputGrad } from "./convpack";

/** Row length of B [K, N] when gemmColumns runs on a column range of it (0: N). Per instance, so per thread. */
let bRowLength: i32 = 0;
/** True while gemmColumns runs: a narrow column range keeps the panel path (the sequence gemm ran for all of N). */
let inColumns: bool = false;

/** Depth of one packed block of B (rows of op(B)). */
const KC: i32 = 256;
/** Width of one packed block of B (columns of op(B)); a multiple of 8. */
const NC: i32 = 256;
/** Rows of op(A) swept per packed panel of B (their A block stays in L2). */
const MC: i32 = 64;
/** Bytes of the packed block (KC × NC floats). */
const PACK_BYTES: usize = <usize>KC * <usize>NC * 4;
/** A 4×8 tile (edge columns) and 8 bias values follow the packed block in the thread's scratch. */
const TILE_OFF: usize = PACK_BYTES;
const BIAS_OFF: usize = PACK_BYTES + 128;
/** Rows of A gathered by the convolutions: MC × KC floats. */
const APACK_OFF: usize = PACK_BYTES + 256;

// The scratch area must hold the packed block, the tile, the bias lane and the gathered rows of A.
assert(APACK_OFF + <usize>MC * <usize>KC * 4 <= SCRATCH_BYTES);

/**
 * Packs op(B)[pc:pc+kc, jc:jc+nc] into panels of 8 columns: panel p holds kc rows of 8 floats (zero beyond nc).
 * B is [K, N] (transB = 0) or [N, K] (transB = 1).
 */
function packB(b: usize, dst: usize, pc: i32, kc: i32, jc: i32, nc: i32, K: i32, N: i32, transB: i32): void {
  // A column range of a wider B (gemmColumns): rows of B are bRowLength floats apart, not N.
  if (bRowLength > 0) N = bRowLength;
  const panels = (nc + 7) >> 3;
  for (let p = 0; p < panels; p++) {
    const j0 = jc + (p << 3);
    const w = min(8, jc + nc - j0);
    const out = dst + <usize>p * <usize>kc * 32;
    if (!transB) {
      let src = b + ((<usize>pc * <usize>N + <usize>j0) << 2);
      const ldb = <usize>N << 2;
      if (w == 8) {
        for (let k = 0; k < kc; k++) {
          v128.store(out + (<usize>k << 5), v128.load(src));
          v128.store(out + (<usize>k << 5), v128.load(src, 16), 16);
          src += ldb;
        }
      } else {
        for (let k = 0; k < kc; k++) {
          const o = out + (<usize>k << 5);
          v128.store(o, f32x4.splat(0));
          v128.store(o, f32x4.splat(0), 16);
          for (let jj = 0; jj < w; jj++) store<f32>(o + (<usize>jj << 2), load<f32>(src + (<usize>jj << 2)));
          src += ldb;
        }
      }
    } else {
      // B[j, k]: each column of the panel is a contiguous run of k.
      const ldb = <usize>K << 2;
      if (w == 8) {
        // 4×4 transposes: rows j0..j0+3 and j0+4..j0+7, four k at a time.
        const k4 = kc & ~3;
        const s0 = b + ((<usize>j0 * <usize>K + <usize>pc) << 2);
        for (let h = 0; h < 2; h++) {
          const r0 = s0 + <usize>(h << 2) * ldb;
          const r1 = r0 + ldb, r2 = r1 + ldb, r3 = r2 + ldb;
          const oh = out + (<usize>h << 4);
          for (let k = 0; k < k4; k += 4) {
            const kb = <usize>k << 2;
            const x0 = v128.load(r0 + kb), x1 = v128.load(r1 + kb), x2 = v128.load(r2 + kb), x3 = v128.load(r3 + kb);
            const t0 = v128.shuffle<f32>(x0, x1, 0, 4, 1, 5), t1 = v128.shuffle<f32>(x2, x3, 0, 4, 1, 5);
            const t2 = v128.shuffle<f32>(x0, x1, 2, 6, 3, 7), t3 = v128.shuffle<f32>(x2, x3, 2, 6, 3, 7);
            const o = oh + (<usize>k << 5);
            v128.store(o, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
            v128.store(o, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7), 32);
            v128.store(o, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5), 64);
            v128.store(o, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7), 96);
          }
          for (let k = k4; k < kc; k++) {
            const kb = <usize>k << 2, o = oh + (<usize>k << 5);
            store<f32>(o, load<f32>(r0 + kb));
            store<f32>(o, load<f32>(r1 + kb), 4);
            store<f32>(o, load<f32>(r2 + kb), 8);
            store<f32>(o, load<f32>(r3 + kb), 12);
          }
        }
      } else {
        for (let k = 0; k < kc; k++) {
          const o = out + (<usize>k << 5);
          v128.store(o, f32x4.splat(0));
          v128.store(o, f32x4.splat(0), 16);
        }
        for (let jj = 0; jj < w; jj++) {
          const src = b + (((<usize>(j0 + jj)) * <usize>K + <usize>pc) << 2);
          for (let k = 0; k < kc; k++) store<f32>(out + (<usize>k << 5) + (<usize>jj << 2), load<f32>(src + (<usize>k << 2)));
        }
      }
    }
  }
}

/**
 * Four rows × 8 columns over kc steps of a packed panel (A values broadcast by load32_splat, one load each: 1.10–1.20×
 * over f32.load + f32x4.splat on the MLP products; 5- and 6-row tiles and a k loop unrolled by two measured 0.6–0.75×,
 * as V8's x64 code then spills accumulators: measured in docs/decisions/0008). A element (r, k) is at a + r·sai + k·sak. C tile rows at
 * c + r·ldc; load = start from C (else 0); bias (0 = none) and act are applied only when `fin`.
 */
// @ts-ignore: decorator
@inline function micro4(a: usize, sai: usize, sak: usize, bp: usize, kc: i32, c: usize, ldc: usize, acc: bool,
  fin: bool, bias: usize, act: i32): void {
  const z = f32x4.splat(0);
  let c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
  if (acc) {
    c00 = v128.load(c); c01 = v128.load(c, 16);
    c10 = v128.load(c + ldc); c11 = v128.load(c + ldc, 16);
    c20 = v128.load(c + 2 * ldc); c21 = v128.load(c + 2 * ldc, 16);
    c30 = v128.load(c + 3 * ldc); c31 = v128.load(c + 3 * ldc, 16);
  }
  let ap = a, p = bp;
  const a1 = sai, a2 = sai * 2, a3 = sai * 3;
  for (let k = 0; k < kc; k++) {
    const b0 = v128.load(p), b1 = v128.load(p, 16);
    let av = v128.load32_splat(ap);
    c00 = madd(av, b0, c00); c01 = madd(av, b1, c01);
    av = v128.load32_splat(ap + a1);
    c10 = madd(av, b0, c10); c11 = madd(av, b1, c11);
    av = v128.load32_splat(ap + a2);
    c20 = madd(av, b0, c20); c21 = madd(av, b1, c21);
    av = v128.load32_splat(ap + a3);
    c30 = madd(av, b0, c30); c31 = madd(av, b1, c31);
    p += 32;
    ap += sak;
  }
  if (fin) {
    if (bias) {
      const d0 = v128.load(bias), d1 = v128.load(bias, 16);
      c00 = f32x4.add(c00, d0); c01 = f32x4.add(c01, d1);
      c10 = f32x4.add(c10, d0); c11 = f32x4.add(c11, d1);
      c20 = f32x4.add(c20, d0); c21 = f32x4.add(c21, d1);
      c30 = f32x4.add(c30, d0); c31 = f32x4.add(c31, d1);
    }
    if (act == 1) {
      c00 = relu4(c00); c01 = relu4(c01); c10 = relu4(c10); c11 = relu4(c11);
      c20 = relu4(c20); c21 = relu4(c21); c30 = relu4(c30); c31 = relu4(c31);
    }
  }
  v128.store(c, c00); v128.store(c, c01, 16);
  v128.store(c + ldc, c10); v128.store(c + ldc, c11, 16);
  v128.store(c + 2 * ldc, c20); v128.store(c + 2 * ldc, c21, 16);
  v128.store(c + 3 * ldc, c30); v128.store(c + 3 * ldc, c31, 16);
}

/** One row × 8 columns: the same per-element operation sequence as micro4 (edge rows). */
// @ts-ignore: decorator
@inline function micro1(a: usize, sak: usize, bp: usize, kc: i32, c: usize, acc: bool, fin: bool, bias: usize,
  act: i32): void {
  const z = f32x4.splat(0);
  let c00 = z, c01 = z;
  if (acc) {
    c00 = v128.load(c); c01 = v128.load(c, 16);
  }
  let ap = a, p = bp;
  for (let k = 0; k < kc; k++) {
    const av = v128.load32_splat(ap);
    c00 = madd(av, v128.load(p), c00); c01 = madd(av, v128.load(p, 16), c01);
    p += 32;
    ap += sak;
  }
  if (fin) {
    if (bias) {
      c00 = f32x4.add(c00, v128.load(bias)); c01 = f32x4.add(c01, v128.load(bias, 16));
    }
    if (act == 1) {
      c00 = relu4(c00); c01 = relu4(c01);
    }
  }
  v128.store(c, c00); v128.store(c, c01, 16);
}

/** Rows [i, i+rows) (rows ≤ 4) of one 8-column panel, writing C directly (w = 8 valid columns). */
// @ts-ignore: decorator
@inline function block(rows: i32, a: usize, sai: usize, sak: usize, bp: usize, kc: i32, c: usize, ldc: usize,
  acc: bool, fin: bool, bias: usize, act: i32): void {
  if (rows == 4) micro4(a, sai, sak, bp, kc, c, ldc, acc, fin, bias, act);
  else for (let r = 0; r < rows; r++) micro1(a + <usize>r * sai, sak, bp, kc, c + <usize>r * ldc, acc, fin, bias, act);
}

/**
 * Edge columns (w < 8): runs the full-width code on a 4×8 tile (zero-padded C and bias) and copies the valid part
 * back, so edge elements see the same operation sequence as the others.
 */
function edge(rows: i32, w: i32, a: usize, sai: usize, sak: usize, bp: usize, kc: i32, c: usize, ldc: usize,
  acc: bool, fin: bool, bias: usize, act: i32, tile: usize, tbias: usize): void {
  for (let r = 0; r < rows; r++) {
    for (let jj = 0; jj < 8; jj++) {
      store<f32>(tile + (<usize>(r * 8 + jj) << 2), acc && jj < w ? load<f32>(c + <usize>r * ldc + (<usize>jj << 2)) : 0);
    }
  }
  if (bias) for (let jj = 0; jj < 8; jj++) store<f32>(tbias + (<usize>jj << 2), jj < w ? load<f32>(bias + (<usize>jj << 2)) : 0);
  block(rows, a, sai, sak, bp, kc, tile, 32, acc, fin, bias ? tbias : 0, act);
  for (let r = 0; r < rows; r++) {
    for (let jj = 0; jj < w; jj++) store<f32>(c + <usize>r * ldc + (<usize>jj << 2), load<f32>(tile + (<usize>(r * 8 + jj) << 2)));
  }
}

/** C element = act(C + s or s, + bias) at the end of a K block of the dot path. */
// @ts-ignore: decorator
@inline function finishDot(v: f32, c: usize, acc: bool, fin: bool, bias: f32, act: i32): void {
  if (acc) v = load<f32>(c) + v;
  if (fin) {
    v += bias;
    if (act == 1) v = v > 0 ? v : 0;
  }
  store<f32>(c, v);
}

/**
 * Narrow outputs (N < 8): each element is a dot product along k of a contiguous row of A and a contiguous column
 * of B (bt: op(B) transposed, [N, kc]), two vector partial sums (k mod 8 < 4 and ≥ 4), then the lanes, then the
 * k mod 4 tail in order. Four rows at once for independent chains; edge rows run the same per-row sequence.
 */
function dotRows(rows: i32, a: usize, lda: usize, bt: usize, kc: i32, c: usize, ldc: usize, N: i32, acc: bool,
  fin: bool, bias: usize, act: i32): void {
  const k8 = kc & ~7, k4 = kc & ~3;
  for (let j = 0; j < N; j++) {
    const b = bt + <usize>j * <usize>kc * 4;
    const bj: f32 = bias ? load<f32>(bias + (<usize>j << 2)) : 0;
    if (rows == 4) {
      const a0 = a, a1 = a + lda, a2 = a + 2 * lda, a3 = a + 3 * lda;
      const z = f32x4.splat(0);
      let s00 = z, s01 = z, s10 = z, s11 = z, s20 = z, s21 = z, s30 = z, s31 = z;
      let k = 0;
      for (; k < k8; k += 8) {
        const o = <usize>k << 2;
        const b0 = v128.load(b + o), b1 = v128.load(b + o, 16);
        s00 = madd(v128.load(a0 + o), b0, s00); s01 = madd(v128.load(a0 + o, 16), b1, s01);
        s10 = madd(v128.load(a1 + o), b0, s10); s11 = madd(v128.load(a1 + o, 16), b1, s11);
        s20 = madd(v128.load(a2 + o), b0, s20); s21 = madd(v128.load(a2 + o, 16), b1, s21);
        s30 = madd(v128.load(a3 + o), b0, s30); s31 = madd(v128.load(a3 + o, 16), b1, s31);
      }
      if (k < k4) {
        const o = <usize>k << 2;
        const b0 = v128.load(b + o);
        s00 = madd(v128.load(a0 + o), b0, s00); s10 = madd(v128.load(a1 + o), b0, s10);
        s20 = madd(v128.load(a2 + o), b0, s20); s30 = madd(v128.load(a3 + o), b0, s30);
      }
      let v0 = hsum(f32x4.add(s00, s01)), v1 = hsum(f32x4.add(s10, s11));
      let v2 = hsum(f32x4.add(s20, s21)), v3 = hsum(f32x4.add(s30, s31));
      for (let t = k4; t < kc; t++) {
        const o = <usize>t << 2, bv = load<f32>(b + o);
        v0 += load<f32>(a0 + o) * bv; v1 += load<f32>(a1 + o) * bv;
        v2 += load<f32>(a2 + o) * bv; v3 += load<f32>(a3 + o) * bv;
      }
      const cj = c + (<usize>j << 2);
      finishDot(v0, cj, acc, fin, bj, act); finishDot(v1, cj + ldc, acc, fin, bj, act);
      finishDot(v2, cj + 2 * ldc, acc, fin, bj, act); finishDot(v3, cj + 3 * ldc, acc, fin, bj, act);
    } else {
      for (let r = 0; r < rows; r++) {
        const ar = a + <usize>r * lda;
        const z = f32x4.splat(0);
        let s0 = z, s1 = z;
        let k = 0;
        for (; k < k8; k += 8) {
          const o = <usize>k << 2;
          s0 = madd(v128.load(ar + o), v128.load(b + o), s0); s1 = madd(v128.load(ar + o, 16), v128.load(b + o, 16), s1);
        }
        if (k < k4) s0 = madd(v128.load(ar + (<usize>k << 2)), v128.load(b + (<usize>k << 2)), s0);
        let v = hsum(f32x4.add(s0, s1));
        for (let t = k4; t < kc; t++) v += load<f32>(ar + (<usize>t << 2)) * load<f32>(b + (<usize>t << 2));
        finishDot(v, c + <usize>r * ldc + (<usize>j << 2), acc, fin, bj, act);
      }
    }
  }
}

/** How the driver reads its operands: a plain GEMM, or one of the convolutions (geometry in convpack.ts). */
export const MODE_GEMM: i32 = 0;
export const MODE_CONV_FWD: i32 = 1;
export const MODE_CONV_BWD_IN: i32 = 2;
export const MODE_CONV_BWD_W: i32 = 3;

/**
 * C[r0:r1, 0:N] (row stride ldc bytes) = act(op(A)·op(B) + bias), or act(C + …) when accumulating, blocked for the
 * caches: N in blocks of NC columns and K in blocks of KC, each block of op(B) packed into panels of 8 columns; rows
 * in blocks of MC that sweep every panel (their rows of A stay in L2). A element (i, k) is at a + i·sai + k·sak
 * unless the mode packs A (im2col-like gathers for the convolutions) into the scratch first.
 */
export function drive(mode: i32, a: usize, sai: usize, sak: usize, b: usize, transB: i32, c: usize, ldc: usize,
  bias: usize, M: i32, K: i32, N: i32, act: i32, accumulate: i32, r0: i32, r1: i32): void {
  if (r1 > M) r1 = M;
  if (r0 < 0) r0 = 0;
  if (r1 <= r0 || N <= 0) return;
  const work = scratch();
  const bp = work, tile = work + TILE_OFF, tbias = work + BIAS_OFF, apack = work + APACK_OFF;
  if (K <= 0) {
    // No products: C = act(C or 0 + bias), with the same scalar operations as the vector finish.
    for (let i = r0; i < r1; i++) {
      for (let j = 0; j < N; j++) {
        let v: f32 = accumulate ? load<f32>(c + <usize>i * ldc + (<usize>j << 2)) : 0;
        if (bias) v += load<f32>(bias + (<usize>j << 2));
        if (act == 1) v = v > 0 ? v : 0;
        store<f32>(c + <usize>i * ldc + (<usize>j << 2), v);
      }
    }
    return;
  }
  const packsA = mode == MODE_CONV_FWD || mode == MODE_CONV_BWD_IN;
  // Fewer than 8 columns would waste most of a panel's lanes: dot products along k instead, when rows of A are
  // contiguous along k (packed, or A not transposed).
  const dot = N < 8 && !inColumns && (packsA || sak == 4);
  for (let jc = 0; jc < N; jc += NC) {
    const nc = min(NC, N - jc);
    const panels = (nc + 7) >> 3;
    for (let pc = 0; pc < K; pc += KC) {
      const kc = min(KC, K - pc);
      if (mode == MODE_CONV_BWD_IN) packWeightsForInputGrad(bp, pc, kc, jc, nc);
      else if (mode == MODE_CONV_BWD_W) packPatches(bp, pc, kc, jc, nc);
      else packB(b, bp, pc, kc, jc, nc, K, N, transB);
      const acc = pc > 0 || accumulate != 0;
      const fin = pc + kc >= K;
      // The packed panel [kc, 8] transposed to [N, kc] for the dot path.
      const bt = bp + <usize>kc * 32;
      if (dot) {
        for (let j = 0; j < nc; j++) {
          for (let k = 0; k < kc; k++) store<f32>(bt + ((<usize>(j * kc + k)) << 2), load<f32>(bp + ((<usize>(k * 8 + j)) << 2)));
        }
      }
      for (let ic = r0; ic < r1; ic += MC) {
        const ie = min(r1, ic + MC);
        let aBlock: usize, si: usize = sai, sk: usize = sak;
        if (packsA) {
          if (mode == MODE_CONV_FWD) packPatchRows(apack, ic, ie, pc, kc);
          else packOutputGradRows(apack, ic, ie, pc, kc);
          aBlock = apack - <usize>ic * <usize>kc * 4;
          si = <usize>kc << 2;
          sk = 4;
        } else {
          aBlock = a + <usize>pc * sak;
        }
        if (dot) {
          for (let i = ic; i < ie; i += 4) {
            dotRows(min(4, ie - i), aBlock + <usize>i * si, si, bt, kc, c + <usize>i * ldc, ldc, N, acc, fin, bias, act);
          }
          continue;
        }
        for (let p = 0; p < panels; p++) {
          const j0 = jc + (p << 3);
          const w = min(8, N - j0);
          const pp = bp + <usize>p * <usize>kc * 32;
          const bj = bias ? bias + (<usize>j0 << 2) : 0;
          for (let i = ic; i < ie; i += 4) {
            const rows = min(4, ie - i);
            const ai = aBlock + <usize>i * si;
            const cj = c + <usize>i * ldc + (<usize>j0 << 2);
            if (w == 8) block(rows, ai, si, sk, pp, kc, cj, ldc, acc, fin, bj, act);
            else edge(rows, w, ai, si, sk, pp, kc, cj, ldc, acc, fin, bj, act, tile, tbias);
          }
        }
      }
    }
  }
}

/**
 * C[r0:r1, :] = act(op(A)·op(B) + bias) (accumulate = 0) or act(C + op(A)·op(B) + bias) (accumulate = 1).
 * op(A) is M×K: A is [M, K] (transA = 0) or [K, M] (transA = 1, read in place); op(B) is K×N: B is [K, N] or [N, K]
 * (transB = 1, packed transposed). bias: N floats added to every row, 0 = none. act: 0 identity, 1 relu.
 * Sums run over k in increasing order from 0 (or from C when accumulating); the bias is added after the sum.
 */
export function gemm(a: usize, b: usize, c: usize, bias: usize, M: i32, K: i32, N: i32, transA: i32, transB: i32,
  act: i32, accumulate: i32, r0: i32, r1: i32): void {
  const sai: usize = transA ? 4 : <usize>K << 2;
  const sak: usize = transA ? <usize>M << 2 : 4;
  drive(MODE_GEMM, a, sai, sak, b, transB, c, <usize>N << 2, bias, M, K, N, act, accumulate, r0, r1);
}

/**
 * gemm's columns [8·p0, 8·p1) of C (panels p0 ≤ p < p1 of 8 columns; the last may be narrower) for every row: the
 * same numbers as gemm (every element runs the same operation sequence), for splitting a product with few rows and
 * many columns across threads by columns, so that each thread packs only its part of op(B). Needs N ≥ 8 (gemm's
 * narrow path for N < 8 is another sequence). The row-range ABI with panels for rows: ceil(N / 8) of them.
 */
export function gemmColumns(a: usize, b: usize, c: usize, bias: usize, M: i32, K: i32, N: i32, transA: i32,
  transB: i32, act: i32, accumulate: i32, p0: i32, p1: i32): void {
  const j0 = max(p0, 0) << 3, j1 = min(N, p1 << 3);
  if (j1 <= j0) return;
  assert(N >= 8);
  const sai: usize = transA ? 4 : <usize>K << 2;
  const sak: usize = transA ? <usize>M << 2 : 4;
  const bj = transB ? b + <usize>j0 * <usize>K * 4 : b + (<usize>j0 << 2);
  if (!transB) bRowLength = N;
  inColumns = true;
  drive(MODE_GEMM, a, sai, sak, bj, transB, c + (<usize>j0 << 2), <usize>N << 2, bias ? bias + (<usize>j0 << 2) : 0,
    M, K, j1 - j0, act, accumulate, 0, M);
  bRowLength = 0;
  inColumns = false;
}
