/**
 * The WebGPU backend's kernel table: every KernelTable entry as a WGSL dispatch recorded on the context's encoder.
 * Inputs that arrive as host arrays (constants such as a broadcast zero) are uploaded; outputs must be GPU storage.
 * Nothing here reads back: results stay on the device until `read`.
 */
import type { BinaryName, KernelTable, PoolWindow } from "../../kernelTable.js";
import type { Data, IndexStorage, Storage } from "./contract.js";
import { GpuArray, GpuContext, GpuIndexArray, f, grid, type Bindable, type Param } from "./context.js";
import * as W from "./wgsl.js";
import * as L from "./wgslLayout.js";

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

/**
 * The WebGPU kernel table: every KernelTable entry (all required) except the training-mode BatchNorm pair and the
 * fused convolution + bias + ReLU, not ported yet: without them `batchNormTraining` and `conv2dBiasAct` run their
 * composites on the device.
 */
export type WebGPUKernels = Required<Omit<KernelTable, "batchNormForward" | "batchNormBackward" | "convBiasAct">>;

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
    writes: readonly Bindable[],
    params: readonly Param[],
    groups: readonly [number, number],
    extra: readonly Bindable[] = [],
  ) => ctx.dispatch({ key, code, reads, writes, params, groups, extra });
  /** A 1-D kernel over n threads. */
  const run1 = (
    key: string,
    code: () => string,
    reads: GpuArray[],
    writes: Bindable[],
    params: Param[],
    n: number,
    extra: Bindable[] = [],
  ) => run(key, code, reads, writes, params, grid(Math.ceil(n / W.WG)), extra);
  const ew = (reads: string[], writes: string[], body: string) => () => W.elementwise(reads, writes, body);
  /** A kernel with one output and a thread per output value: false when out is not this backend's storage. */
  const single = (
    key: string,
    code: () => string,
    inputs: Storage[],
    out: Storage,
    params: (n: number) => Param[],
    extra: () => Bindable[] = () => [],
  ): boolean => {
    if (!isOut(out)) return false;
    const n = out.length;
    if (n > 0) run1(key, code, inputs.map(inp), [out as GpuArray], params(n), n, extra());
    return true;
  };
  /** Device indices (host Int32Arrays are uploaded; their inverse for scatters is computed on the host). */
  const indices = (idx: IndexStorage): GpuIndexArray => {
    if (idx instanceof GpuIndexArray) return idx;
    if (idx instanceof Int32Array) return ctx.uploadIndices(idx);
    throw new TypeError("webgpu: indices of another backend");
  };
  const csrCache = new WeakMap<Int32Array, { n: number; start: GpuIndexArray; list: GpuIndexArray }>();
  const inverseIndex = (idx: Int32Array, n: number) => {
    const hit = csrCache.get(idx);
    if (hit && hit.n === n) return hit;
    const inv = inverseIndexHost(idx, n);
    const v = ctx.unscoped(() => ({ n, start: ctx.uploadIndices(inv.start), list: ctx.uploadIndices(inv.list) }));
    csrCache.set(idx, v);
    return v;
  };
  /** out[i] = x[Σ_d coord_d(i)·strides[d]] over shape (rank ≤ 8 after merging axes). */
  const stridedCopy = (x: GpuArray, out: GpuArray, shape: readonly number[], strides: readonly number[]) => {
    const m = mergeAxes(shape, strides, strides);
    if (m.shape.length > 8) throw new RangeError(`webgpu: a strided copy of rank ${m.shape.length} (at most 8)`);
    const params = new Array<number>(24).fill(0);
    params[0] = out.length;
    params[1] = m.shape.length;
    m.shape.forEach((s, d) => {
      params[8 + d] = s;
      params[16 + d] = m.sa[d];
    });
    run1("stridedCopy", () => L.STRIDED_COPY, [x], [out], params, out.length);
  };

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

  /** dx from dy and maxPool's device argmax over window g: a gather over each input's windows (sums in window order). */
  const poolScatter = (dy: GpuArray, idx: GpuIndexArray, dx: GpuArray, g: PoolWindow): void =>
    run1("maxPoolBackward", () => L.MAX_POOL_BACKWARD, [dy], [dx], winParams(dx.length, g, false), dx.length, [idx]);

  const rowKernel = (key: string, code: string, x: Storage, out: Storage, rows: number, cols: number): boolean => {
    if (!isOut(out)) return false;
    if (rows === 0) return true;
    run(key, () => code, [inp(x)], [out as GpuArray], [rows, cols], grid(rows));
    return true;
  };

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
    binary: (name, a, b, out) =>
      single(`binary:${name}`, ew(["a", "b"], ["out"], `out[i] = ${BIN_OPS[name]};`), [a, b], out, (n) => [n]),
    unary: (name, x, out) =>
      single(`unary:${name}`, ew(["xs"], ["out"], `let x = xs[i]; out[i] = ${W.UNARY_EXPR[name]};`), [x], out, (n) => [
        n,
      ]),
    scale: (x, out, s) => single("scale", ew(["x"], ["out"], "out[i] = x[i] * pf(1u);"), [x], out, (n) => [n, f(s)]),
    affine: (x, out, alpha, beta) =>
      single("affine", ew(["x"], ["out"], "out[i] = pf(1u) * x[i] + pf(2u);"), [x], out, (n) => [n, f(alpha), f(beta)]),
    reluMask: (x, mask) =>
      single("reluMask", ew(["x"], ["out"], "out[i] = select(0.0, 1.0, x[i] > 0.0);"), [x], mask, (n) => [n]),
    relu(x, out, mask) {
      if (!isOut(out, mask) || out.length === 0) return isOut(out, mask);
      const body = "let v = x[i]; let p = v > 0.0; out[i] = select(0.0, v, p); mask[i] = select(0.0, 1.0, p);";
      run1(
        "relu",
        ew(["x"], ["out", "mask"], body),
        [inp(x)],
        [out as GpuArray, mask as GpuArray],
        [out.length],
        out.length,
      );
      return true;
    },
    addRowVector: (x, v, out, rows, cols) =>
      single("addRowVector", ew(["x", "v"], ["out"], "out[i] = x[i] + v[i % pu(1u)];"), [x, v], out, (n) => [n, cols]),
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
    sum: (x, out) => sumColumns(x, out, x.length, 1),
    softmaxRows: (x, out, rows, cols) => cols > 0 && rowKernel("softmaxRows", W.SOFTMAX_ROWS, x, out, rows, cols),
    logSumExpRows: (x, out, rows, cols) => cols > 0 && rowKernel("logSumExpRows", W.LOGSUMEXP_ROWS, x, out, rows, cols),
    axpby(c, a, b, d, out) {
      if (!isOut(out) || out.length === 0) return isOut(out);
      if (d) {
        const body = "out[i] = pf(1u) * a[i] + pf(2u) * d[i];";
        run1(
          "axpby",
          ew(["a", "d"], ["out"], body),
          [inp(a), inp(d)],
          [out as GpuArray],
          [out.length, f(c), f(b)],
          out.length,
        );
      } else {
        run1(
          "scale",
          ew(["x"], ["out"], "out[i] = x[i] * pf(1u);"),
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
      run1("adam", ew(["g", "m", "v"], ["m2", "v2", "u"], body), [inp(g), inp(m), inp(v)], outs, params, u.length);
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
        run1("convForward", () => W.CONV_FORWARD, [A, B], [o], winParams(o.length, g, false, cout), o.length);
      } else if (which === "input") {
        run1("convInput", () => W.CONV_INPUT, [A, B], [o], winParams(o.length, g, false, cout), o.length);
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
        const params = winParams(chunks * wsize, g, false, cout, chunk, wsize);
        run1("convFilterPartial", () => W.CONV_FILTER_PARTIAL, [A, B], [part], params, chunks * wsize);
        run1("sumColumnsFinal", () => W.SUM_COLUMNS_FINAL, [part], [o], [chunks, wsize], wsize);
        ctx.recycle(part);
      }
      return true;
    },
    maxPool(x, y, idx, g) {
      if (!isOut(y) || !(idx instanceof GpuIndexArray)) return false;
      if (y.length === 0) return true;
      const params = winParams(y.length, g, false);
      run1("maxPool", () => W.MAX_POOL, [inp(x)], [y as GpuArray, idx], params, y.length);
      idx.pool = { ...g, xLength: x.length };
      return true;
    },
    fill(out, v) {
      if (!isOut(out)) return false;
      if (out.length > 0) fill(out as GpuArray, v);
      return true;
    },
    transpose: (x, out, M, N) =>
      single(
        "transpose",
        () => L.TRANSPOSE,
        [x],
        out,
        (n) => [n, M, N],
      ),
    copy: (x, out) => single("copy", ew(["x"], ["out"], "out[i] = x[i];"), [x], out, (n) => [n]),
    powScalar(x, out, p) {
      if (!isOut(out)) return false;
      if (out.length === 0) return true;
      let key: string, body: string;
      if (p === 2) [key, body] = ["pow2", "out[i] = x[i] * x[i];"];
      else if (p === 0.5) [key, body] = ["sqrt", "out[i] = sqrt(x[i]);"];
      else if (p === -0.5) [key, body] = ["rsqrt", "out[i] = 1.0 / sqrt(x[i]);"];
      else if (p === -1) [key, body] = ["recip", "out[i] = 1.0 / x[i];"];
      else [key, body] = ["pow", "out[i] = pow_(x[i], pf(1u), pu(2u));"];
      // pow_: x > 0 by exp2(p·log2 x); x < 0 only for integer p (sign by parity, word 2: 1 integer, 2 odd); x = 0 by cases.
      const POW = `fn pow_(x: f32, p: f32, kind: u32) -> f32 {
  if (x > 0.0) { return exp2(p * log2(x)); }
  if (x == 0.0) { if (p > 0.0) { return 0.0; } if (p == 0.0) { return 1.0; } return bitcast<f32>(0x7f800000u | (kind & 0u)); }
  if (kind == 0u) { return bitcast<f32>(0x7fc00000u | (kind & 0u)); }
  let m = exp2(p * log2(-x));
  return select(m, -m, kind == 2u);
}`;
      const kind = Number.isInteger(p) ? (Math.abs(p) % 2 === 1 ? 2 : 1) : 0;
      run1(
        `powScalar:${key}`,
        () => W.elementwise(["x"], ["out"], body, POW),
        [inp(x)],
        [out as GpuArray],
        [out.length, f(p), kind],
        out.length,
      );
      return true;
    },
    leakyRelu(x, out, mask, alpha) {
      if (!isOut(out, mask)) return false;
      if (out.length === 0) return true;
      const body = "let v = x[i]; let m = select(pf(1u), 1.0, v > 0.0); mask[i] = m; out[i] = v * m;";
      run1(
        "leakyRelu",
        ew(["x"], ["out", "mask"], body),
        [inp(x)],
        [out as GpuArray, mask as GpuArray],
        [out.length, f(alpha)],
        out.length,
      );
      return true;
    },
    softplus(x, out, mask, beta, threshold) {
      if (!isOut(out, mask)) return false;
      if (out.length === 0) return true;
      const body = `let v = x[i]; let bx = pf(1u) * v;
  if (bx > pf(2u)) { out[i] = v; mask[i] = 0.0; } else { out[i] = log1p_(exp(bx)) / pf(1u); mask[i] = 1.0; }`;
      // log(1 + y) for y ≥ 0 to float32 accuracy: WGSL's log may be off by 2^-21 absolute near 1, so below y = 1 use
      // 2·atanh(z) = 2(z + z³/3 + …) with z = y/(2 + y) ≤ 1/3 (terms to z¹⁵: truncation < 1e-8 relative).
      const LOG1P = `fn log1p_(y: f32) -> f32 {
  if (y >= 1.0) { return log(1.0 + y); }
  let z = y / (2.0 + y);
  let z2 = z * z;
  var s = 1.0 / 15.0;
  s = s * z2 + 1.0 / 13.0; s = s * z2 + 1.0 / 11.0; s = s * z2 + 1.0 / 9.0; s = s * z2 + 1.0 / 7.0;
  s = s * z2 + 1.0 / 5.0; s = s * z2 + 1.0 / 3.0; s = s * z2 + 1.0;
  return 2.0 * z * s;
}`;
      run1(
        "softplus",
        () => W.elementwise(["x"], ["out", "mask"], body, LOG1P),
        [inp(x)],
        [out as GpuArray, mask as GpuArray],
        [out.length, f(beta), f(threshold)],
        out.length,
      );
      return true;
    },
    broadcastCopy(x, xStrides, out, outShape) {
      if (!isOut(out)) return false;
      if (out.length === 0) return true;
      stridedCopy(inp(x), out as GpuArray, outShape, xStrides);
      return true;
    },
    permute(x, out, shape, perm) {
      if (!isOut(out)) return false;
      if (out.length === 0) return true;
      const st = rowMajorStrides(shape);
      stridedCopy(
        inp(x),
        out as GpuArray,
        perm.map((p) => shape[p]),
        perm.map((p) => st[p]),
      );
      return true;
    },
    sumToShape(x, xShape, out, outStrides) {
      if (!isOut(out)) return false;
      const o = out as GpuArray;
      if (o.length === 0) return true;
      if (x.length === 0) {
        fill(o, 0);
        return true;
      }
      const m = mergeAxes(xShape, rowMajorStrides(xShape), outStrides);
      if (m.shape.length > 8) return false;
      const count = m.shape.reduce((p, s, d) => (m.sb[d] === 0 ? p * s : p), 1);
      const chunk = Math.min(count, SUM_CHUNK);
      const chunks = Math.ceil(count / chunk);
      const params = new Array<number>(32).fill(0);
      [params[0], params[1], params[2], params[3], params[4]] = [
        chunks * o.length,
        m.shape.length,
        chunk,
        o.length,
        count,
      ];
      m.shape.forEach((s, d) => {
        params[8 + d] = s;
        params[16 + d] = m.sa[d];
        params[24 + d] = m.sb[d];
      });
      const part = ctx.allocUninitialized(2 * chunks * o.length);
      run1("sumToShapePartial", () => L.SUM_TO_SHAPE_PARTIAL, [inp(x)], [part], params, chunks * o.length);
      run1("sumColumnsFinal", () => W.SUM_COLUMNS_FINAL, [part], [o], [chunks, o.length], o.length);
      ctx.recycle(part);
      return true;
    },
    gather: (x, idx, out) =>
      single(
        "gather",
        () => L.GATHER,
        [x],
        out,
        (n) => [n],
        () => [indices(idx)],
      ),
    scatterAdd(g, idx, out) {
      if (!isOut(out)) return false;
      const o = out as GpuArray;
      if (o.length === 0) return true;
      if (idx.length === 0) {
        fill(o, 0);
        return true;
      }
      const G = inp(g);
      if (idx instanceof Int32Array) {
        const { start, list } = inverseIndex(idx, o.length);
        run1("scatterCsr", () => L.SCATTER_CSR, [G], [o], [o.length], o.length, [start, list]);
        return true;
      }
      if (!(idx instanceof GpuIndexArray)) return false;
      const pool = idx.pool as (PoolWindow & { xLength: number }) | null;
      if (pool && pool.xLength === o.length) {
        poolScatter(G, idx, o, pool);
        return true;
      }
      run("scatterSerial", () => L.SCATTER_SERIAL, [G], [o], [o.length, idx.length], [1, 1], [idx]);
      return true;
    },
    maxPoolBackward(dy, idx, dx, g) {
      // The device argmax of maxPool, scattered by gathering over the pooling windows (sums in window order, as
      // scatterAdd's do); host indices never reach here (maxPool's indices live on the device).
      if (!isOut(dx) || !(idx instanceof GpuIndexArray)) return false;
      const o = dx as GpuArray;
      if (o.length === 0) return true;
      if (idx.length === 0) {
        fill(o, 0);
        return true;
      }
      poolScatter(inp(dy), idx, o, g);
      return true;
    },
    bnApply: (x, mean, k, beta, out, _rows, C) =>
      single(
        "bnApply",
        ew(["x", "m", "k", "b"], ["out"], "let c = i % pu(1u); out[i] = (x[i] - m[c]) * k[c] + b[c];"),
        [x, mean, k, beta],
        out,
        (n) => [n, C],
      ),
    concatLastAxis(xs, widths, rows, out) {
      if (!isOut(out)) return false;
      const total = widths.reduce((p, q) => p + q, 0);
      let off = 0;
      xs.forEach((x, k) => {
        const n = rows * widths[k];
        if (n > 0)
          run1("copyColumns", () => L.COPY_COLUMNS, [inp(x)], [out as GpuArray], [n, widths[k], total, off], n);
        off += widths[k];
      });
      return true;
    },
    pad2d(x, out, shape, padding, value) {
      if (!isOut(out)) return false;
      if (out.length === 0) return true;
      const [, h, w, c] = shape;
      const [top, left, bottom, right] = padding;
      const params = [out.length, h, w, c, top, left, h + top + bottom, w + left + right, f(value)];
      run1("pad2d", () => L.PAD2D, [inp(x)], [out as GpuArray], params, out.length);
      return true;
    },
    crop2d(x, out, shape, padding) {
      if (!isOut(out)) return false;
      if (out.length === 0) return true;
      const [, H, Wd, c] = shape;
      const [top, left, bottom, right] = padding;
      const params = [out.length, H - top - bottom, Wd - left - right, c, top, left, H, Wd];
      run1("crop2d", () => L.CROP2D, [inp(x)], [out as GpuArray], params, out.length);
      return true;
    },
    im2col: (x, cols, g) =>
      single(
        "im2col",
        () => L.IM2COL,
        [x],
        cols,
        (n) => winParams(n, g, false),
      ),
    col2im: (cols, x, g) =>
      single(
        "col2im",
        () => L.COL2IM,
        [cols],
        x,
        (n) => winParams(n, g, false),
      ),
    avgPool: (x, out, g, countIncludePad) =>
      single(
        "avgPool",
        () => L.AVG_POOL,
        [x],
        out,
        (n) => winParams(n, g, countIncludePad),
      ),
    avgPoolBackward: (dy, dx, g, countIncludePad) =>
      single(
        "avgPoolBackward",
        () => L.AVG_POOL_BACKWARD,
        [dy],
        dx,
        (n) => winParams(n, g, countIncludePad),
      ),
    globalAvgPool: (x, out, _n, hw, c) =>
      single(
        "globalAvgPool",
        () => L.GLOBAL_AVG_POOL,
        [x],
        out,
        (n) => [n, hw, c],
      ),
    spreadMean: (g, out, _n, hw, c) =>
      single(
        "spreadMean",
        () => L.SPREAD_MEAN,
        [g],
        out,
        (n) => [n, hw, c],
      ),
  };
}

/** Row-major strides of shape (in elements). */
function rowMajorStrides(shape: readonly number[]): number[] {
  const st = new Array<number>(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    st[d] = s;
    s *= shape[d];
  }
  return st;
}

/** Words of the window kernels (wgsl.ts `GEOM`); a pooling window reads all channels (c0 0, cg c). */
function winParams(
  count: number,
  g: PoolWindow & { c0?: number; cg?: number },
  flag: boolean,
  cout = 0,
  chunk = 0,
  wsize = 0,
): number[] {
  return [
    count,
    g.n,
    g.h,
    g.w,
    g.c,
    g.c0 ?? 0,
    g.cg ?? g.c,
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
    flag ? 1 : 0,
    cout,
    chunk,
    wsize,
  ];
}

/** For each output k, the positions i with idx[i] = k in increasing order (CSR: start [n+1], list). */
export function inverseIndexHost(idx: Int32Array, n: number): { start: Int32Array; list: Int32Array } {
  const start = new Int32Array(n + 1);
  for (let i = 0; i < idx.length; i++) {
    const k = idx[i];
    if (k < 0 || k >= n || !Number.isInteger(k)) throw new RangeError(`scatterAdd: index ${k} outside [0, ${n})`);
    start[k + 1]++;
  }
  for (let k = 0; k < n; k++) start[k + 1] += start[k];
  const fillAt = start.slice(0, n);
  const list = new Int32Array(idx.length);
  for (let i = 0; i < idx.length; i++) list[fillAt[idx[i]]++] = i;
  return { start, list };
}
