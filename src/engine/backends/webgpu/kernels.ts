/**
 * The WebGPU backend's kernel table: every KernelTable entry as a WGSL dispatch recorded on the context's encoder.
 * Inputs that arrive as host arrays (constants such as a broadcast zero) are uploaded; outputs must be GPU storage.
 * Nothing here reads back: results stay on the device until `read`.
 */
import type { Data } from "../../tensor.js";
import type { BinaryName, DenseLayer, PoolWindow, UnaryName } from "../../kernelTable.js";
import type { Storage } from "./contract.js";
import { GpuArray, GpuContext, f, grid, type Param } from "./context.js";
import * as W from "./wgsl.js";

/** Values per thread chunk of the two-pass column sums (rows ≤ this: one pass of partials and a final sum). */
const SUM_CHUNK = 256;
/** Output pixels per thread chunk of the filter gradient. */
const FILTER_CHUNK = 256;
const BIN_OPS: Record<BinaryName, string> = {
  add: "a[i] + b[i]",
  sub: "a[i] - b[i]",
  mul: "a[i] * b[i]",
  div: "a[i] / b[i]",
};

/** The kernel table over Storage (the engine's KernelTable once its Data parameters become Storage). */
export interface WebGPUKernels {
  gemm(A: Storage, B: Storage, C: Storage, M: number, K: number, N: number, transA: boolean, transB: boolean): boolean;
  linear(x: Storage, Wt: Storage, b: Storage, out: Storage, M: number, K: number, N: number, relu: boolean): boolean;
  binary(name: BinaryName, a: Storage, b: Storage, out: Storage): boolean;
  unary(name: UnaryName, x: Storage, out: Storage): boolean;
  scale(x: Storage, out: Storage, s: number): boolean;
  affine(x: Storage, out: Storage, alpha: number, beta: number): boolean;
  reluMask(x: Storage, mask: Storage): boolean;
  relu(x: Storage, out: Storage, mask: Storage): boolean;
  addRowVector(x: Storage, v: Storage, out: Storage, rows: number, cols: number): boolean;
  broadcastBinary(
    op: number,
    a: Storage,
    aStrides: readonly number[],
    b: Storage,
    bStrides: readonly number[],
    out: Storage,
    outShape: readonly number[],
  ): boolean;
  sumColumns64(x: Storage, out: Storage, rows: number, cols: number): boolean;
  sumColumns(x: Storage, out: Storage, rows: number, cols: number): boolean;
  sumRows(x: Storage, out: Storage, rows: number, cols: number): boolean;
  /** Σ x into out[0] (the device form of `sum`: no number comes back). */
  sumAll(x: Storage, out: Storage): boolean;
  softmaxRows(x: Storage, out: Storage, rows: number, cols: number): boolean;
  logSumExpRows(x: Storage, out: Storage, rows: number, cols: number): boolean;
  axpby(c: number, a: Storage, b: number, d: Storage | null, out: Storage): boolean;
  adam(
    g: Storage,
    m: Storage,
    v: Storage,
    m2: Storage,
    v2: Storage,
    u: Storage,
    lr: number,
    b1: number,
    b2: number,
    c1: number,
    c2: number,
    eps: number,
  ): boolean;
  mlpJacobianSqNorms(x: Storage, d: number, layers: readonly DenseLayer[], act: 0 | 1 | 2, out: Float64Array): boolean;
  conv(
    which: "forward" | "input" | "filter",
    a: Storage,
    b: Storage,
    out: Storage,
    g: PoolWindow,
    cout: number,
  ): boolean;
  /** Max pooling: values y and flat argmax indices idx (float values, exact below 2^24). */
  maxPool(x: Storage, y: Storage, idx: Storage, g: PoolWindow): boolean;
  /** out = v everywhere. */
  fill(out: Storage, v: number): boolean;
}

/** Merges adjacent axes that both operands walk contiguously (or both broadcast), so rank ≤ 8 covers most calls. */
export function mergeAxes(
  shape: readonly number[],
  sa: readonly number[],
  sb: readonly number[],
): { shape: number[]; sa: number[]; sb: number[] } {
  const out = { shape: [] as number[], sa: [] as number[], sb: [] as number[] };
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const k = out.shape.length - 1;
    if (k >= 0 && out.sa[k] === sa[d] * shape[d] && out.sb[k] === sb[d] * shape[d]) {
      out.shape[k] *= shape[d];
      out.sa[k] = sa[d];
      out.sb[k] = sb[d];
    } else {
      out.shape.push(shape[d]);
      out.sa.push(sa[d]);
      out.sb.push(sb[d]);
    }
  }
  return out;
}

/** The kernels of a WebGPU context. */
export function makeWebGPUKernels(ctx: GpuContext): WebGPUKernels {
  /** Device storage of an input (host arrays are uploaded: an upload is not a read-back). */
  const inp = (s: Storage): GpuArray => (s instanceof GpuArray ? s : ctx.upload(s as Data));
  const isOut = (...s: Storage[]) => s.every((x) => x instanceof GpuArray);

  const run = (
    key: string,
    code: () => string,
    reads: readonly GpuArray[],
    writes: readonly GpuArray[],
    params: readonly Param[],
    groups: readonly [number, number],
  ) => ctx.dispatch({ key, code, reads, writes, params, groups });
  /** A 1-D kernel over n threads. */
  const run1 = (key: string, code: () => string, reads: GpuArray[], writes: GpuArray[], params: Param[], n: number) =>
    run(key, code, reads, writes, params, grid(Math.ceil(n / W.WG)));
  const ew = (key: string, reads: string[], writes: string[], body: string) => () => W.elementwise(reads, writes, body);

  const fill = (out: GpuArray, v: number) => run1("fill", () => W.FILL, [], [out], [out.length, f(v)], out.length);
  ctx.zeroFill = (a) => fill(a, 0);

  const gemmCall = (
    A: GpuArray,
    B: GpuArray,
    bias: GpuArray | null,
    C: GpuArray,
    M: number,
    K: number,
    N: number,
    tA: boolean,
    tB: boolean,
    relu: boolean,
  ) => {
    if (M * N === 0) return;
    if (K === 0) {
      if (bias) throw new RangeError("linear with no inputs");
      fill(C, 0);
      return;
    }
    const key = `gemm:${+tA}${+tB}${+!!bias}${+relu}`;
    run(
      key,
      () => W.gemm(tA, tB, !!bias, relu),
      bias ? [A, B, bias] : [A, B],
      [C],
      [M, K, N],
      [Math.ceil(N / W.GEMM_TILE), Math.ceil(M / W.GEMM_TILE)],
    );
  };

  const sumColumns = (x: Storage, out: Storage, rows: number, cols: number): boolean => {
    if (!isOut(out)) return false;
    const o = out as GpuArray;
    if (cols === 0) return true;
    if (rows === 0) {
      fill(o, 0);
      return true;
    }
    const xi = inp(x);
    const chunk = Math.min(rows, SUM_CHUNK);
    const chunks = Math.ceil(rows / chunk);
    const part = ctx.allocUninitialized(2 * chunks * cols);
    run1(
      "sumColumnsPartial",
      () => W.SUM_COLUMNS_PARTIAL,
      [xi],
      [part],
      [rows, cols, chunk, chunks * cols],
      chunks * cols,
    );
    run1("sumColumnsFinal", () => W.SUM_COLUMNS_FINAL, [part], [o], [chunks, cols], cols);
    ctx.recycle(part);
    return true;
  };

  const rowKernel = (key: string, code: string, x: Storage, out: Storage, rows: number, cols: number): boolean => {
    if (!isOut(out)) return false;
    if (rows === 0) return true;
    run(key, () => code, [inp(x)], [out as GpuArray], [rows, cols], grid(rows));
    return true;
  };

  const geomParams = (count: number, g: PoolWindow, cout: number): number[] => [
    count,
    g.n,
    g.h,
    g.w,
    g.c,
    cout,
    g.kh,
    g.kw,
    g.sh,
    g.sw,
    g.dh,
    g.dw,
    g.padTop,
    g.padLeft,
    g.outH,
    g.outW,
  ];

  return {
    gemm(A, B, C, M, K, N, transA, transB) {
      if (!isOut(C)) return false;
      gemmCall(inp(A), inp(B), null, C as GpuArray, M, K, N, transA, transB, false);
      return true;
    },
    linear(x, Wt, b, out, M, K, N, relu) {
      if (!isOut(out)) return false;
      gemmCall(inp(x), inp(Wt), inp(b), out as GpuArray, M, K, N, false, true, relu);
      return true;
    },
    binary(name, a, b, out) {
      if (!isOut(out) || out.length === 0) return isOut(out);
      run1(
        `binary:${name}`,
        ew(name, ["a", "b"], ["out"], `out[i] = ${BIN_OPS[name]};`),
        [inp(a), inp(b)],
        [out as GpuArray],
        [out.length],
        out.length,
      );
      return true;
    },
    unary(name, x, out) {
      if (!isOut(out) || out.length === 0) return isOut(out);
      const body = `let x = xs[i]; out[i] = ${W.UNARY_EXPR[name]};`;
      run1(`unary:${name}`, ew(name, ["xs"], ["out"], body), [inp(x)], [out as GpuArray], [out.length], out.length);
      return true;
    },
    scale(x, out, s) {
      if (!isOut(out) || out.length === 0) return isOut(out);
      run1(
        "scale",
        ew("scale", ["x"], ["out"], "out[i] = x[i] * pf(1u);"),
        [inp(x)],
        [out as GpuArray],
        [out.length, f(s)],
        out.length,
      );
      return true;
    },
    affine(x, out, alpha, beta) {
      if (!isOut(out) || out.length === 0) return isOut(out);
      const body = "out[i] = pf(1u) * x[i] + pf(2u);";
      run1(
        "affine",
        ew("affine", ["x"], ["out"], body),
        [inp(x)],
        [out as GpuArray],
        [out.length, f(alpha), f(beta)],
        out.length,
      );
      return true;
    },
    reluMask(x, mask) {
      if (!isOut(mask) || mask.length === 0) return isOut(mask);
      const body = "out[i] = select(0.0, 1.0, x[i] > 0.0);";
      run1("reluMask", ew("reluMask", ["x"], ["out"], body), [inp(x)], [mask as GpuArray], [mask.length], mask.length);
      return true;
    },
    relu(x, out, mask) {
      if (!isOut(out, mask) || out.length === 0) return isOut(out, mask);
      const body = "let v = x[i]; let p = v > 0.0; out[i] = select(0.0, v, p); mask[i] = select(0.0, 1.0, p);";
      run1(
        "relu",
        ew("relu", ["x"], ["out", "mask"], body),
        [inp(x)],
        [out as GpuArray, mask as GpuArray],
        [out.length],
        out.length,
      );
      return true;
    },
    addRowVector(x, v, out, rows, cols) {
      if (!isOut(out) || out.length === 0) return isOut(out);
      const body = "out[i] = x[i] + v[i % pu(1u)];";
      run1(
        "addRowVector",
        ew("addRowVector", ["x", "v"], ["out"], body),
        [inp(x), inp(v)],
        [out as GpuArray],
        [rows * cols, cols],
        rows * cols,
      );
      return true;
    },
    broadcastBinary(op, a, aStrides, b, bStrides, out, outShape) {
      if (!isOut(out)) return false;
      if (out.length === 0) return true;
      const m = mergeAxes(outShape, aStrides, bStrides);
      if (m.shape.length > 8) return false;
      const params: number[] = new Array<number>(32).fill(0);
      params[0] = out.length;
      params[1] = m.shape.length;
      params[2] = op;
      m.shape.forEach((s, d) => {
        params[8 + d] = s;
        params[16 + d] = m.sa[d];
        params[24 + d] = m.sb[d];
      });
      run1("broadcastBinary", () => W.BROADCAST_BINARY, [inp(a), inp(b)], [out as GpuArray], params, out.length);
      return true;
    },
    sumColumns64: sumColumns,
    sumColumns,
    sumRows: (x, out, rows, cols) => {
      if (cols === 0 && isOut(out)) {
        if (rows > 0) fill(out as GpuArray, 0);
        return true;
      }
      return rowKernel("sumRows", W.SUM_ROWS, x, out, rows, cols);
    },
    sumAll: (x, out) => sumColumns(x, out, x.length, 1),
    softmaxRows: (x, out, rows, cols) => cols > 0 && rowKernel("softmaxRows", W.SOFTMAX_ROWS, x, out, rows, cols),
    logSumExpRows: (x, out, rows, cols) => cols > 0 && rowKernel("logSumExpRows", W.LOGSUMEXP_ROWS, x, out, rows, cols),
    axpby(c, a, b, d, out) {
      if (!isOut(out) || out.length === 0) return isOut(out);
      if (d) {
        const body = "out[i] = pf(1u) * a[i] + pf(2u) * d[i];";
        run1(
          "axpby",
          ew("axpby", ["a", "d"], ["out"], body),
          [inp(a), inp(d)],
          [out as GpuArray],
          [out.length, f(c), f(b)],
          out.length,
        );
      } else {
        run1(
          "scale",
          ew("scale", ["x"], ["out"], "out[i] = x[i] * pf(1u);"),
          [inp(a)],
          [out as GpuArray],
          [out.length, f(c)],
          out.length,
        );
      }
      return true;
    },
    adam(g, m, v, m2, v2, u, lr, b1, b2, c1, c2, eps) {
      if (!isOut(m2, v2, u) || u.length === 0) return isOut(m2, v2, u);
      const body = `let gi = g[i];
  let mi = pf(2u) * m[i] + pf(3u) * gi;
  let vi = pf(4u) * v[i] + pf(5u) * gi * gi;
  m2[i] = mi;
  v2[i] = vi;
  u[i] = (-pf(1u) * (mi / pf(6u))) / (sqrt(vi / pf(7u)) + pf(8u));`;
      const params = [u.length, f(lr), f(b1), f(1 - b1), f(b2), f(1 - b2), f(c1), f(c2), f(eps)];
      const outs = [m2, v2, u] as GpuArray[];
      run1(
        "adam",
        ew("adam", ["g", "m", "v"], ["m2", "v2", "u"], body),
        [inp(g), inp(m), inp(v)],
        outs,
        params,
        u.length,
      );
      return true;
    },
    // The fused small-MLP Jacobian writes host float64 norms: on a device that would be a read inside a measure
    // batch, so it declines and exact GC takes the op-level path (batched VJPs), which runs on the device.
    mlpJacobianSqNorms: () => false,
    conv(which, a, b, out, g, cout) {
      if (!isOut(out)) return false;
      if (out.length === 0) return true;
      const o = out as GpuArray;
      const A = inp(a),
        B = inp(b);
      if (which === "forward") {
        run1("convForward", () => W.CONV_FORWARD, [A, B], [o], geomParams(o.length, g, cout), o.length);
      } else if (which === "input") {
        run1("convInput", () => W.CONV_INPUT, [A, B], [o], geomParams(o.length, g, cout), o.length);
      } else {
        const pixels = g.n * g.outH * g.outW;
        if (pixels === 0) {
          fill(o, 0);
          return true;
        }
        const chunk = Math.min(pixels, FILTER_CHUNK);
        const chunks = Math.ceil(pixels / chunk);
        const wsize = o.length;
        const part = ctx.allocUninitialized(2 * chunks * wsize);
        const params = [...geomParams(chunks * wsize, g, cout), chunk, wsize];
        run1("convFilterPartial", () => W.CONV_FILTER_PARTIAL, [A, B], [part], params, chunks * wsize);
        run1("sumColumnsFinal", () => W.SUM_COLUMNS_FINAL, [part], [o], [chunks, wsize], wsize);
        ctx.recycle(part);
      }
      return true;
    },
    maxPool(x, y, idx, g) {
      if (!isOut(y, idx)) return false;
      if (y.length === 0) return true;
      run1(
        "maxPool",
        () => W.MAX_POOL,
        [inp(x)],
        [y as GpuArray, idx as GpuArray],
        geomParams(y.length, g, 0),
        y.length,
      );
      return true;
    },
    fill(out, v) {
      if (!isOut(out)) return false;
      if (out.length > 0) fill(out as GpuArray, v);
      return true;
    },
  };
}
