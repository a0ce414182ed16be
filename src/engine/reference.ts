/**
 * The JS reference kernels: every entry of the kernel table (kernelTable.ts) as plain loops on host typed arrays.
 *
 * These are the loops the ops have always run: on host backends an op calls the backend's native kernel and, when
 * it has none or declines, the entry here (dispatch.ts `run`); the test double `strict` (backends/strict.ts)
 * runs these same functions on the arrays inside its opaque device storage. One set of loops, so the js backend
 * and strict give the same numbers bit for bit. Storage parameters are host arrays here (the callers guarantee it).
 */
import type { Data, IndexStorage, Storage } from "./storage.js";
import type { BinaryName, KernelTable, PoolWindow, UnaryName } from "./kernelTable.js";
import * as K from "./kernels.js";

const h = (s: Storage): Data => s as Data;
const ix = (s: IndexStorage): Int32Array => s as Int32Array;

/** A ConvGeometry for a pool window that reads every channel (what the general loops of kernels.ts take). */
function fullWindow(g: PoolWindow): K.ConvGeometry {
  return {
    ...g,
    c0: 0,
    cg: g.c,
    padBottom: Math.max(0, (g.outH - 1) * g.sh + g.dh * (g.kh - 1) + 1 - g.h - g.padTop),
    padRight: Math.max(0, (g.outW - 1) * g.sw + g.dw * (g.kw - 1) + 1 - g.w - g.padLeft),
  };
}

function binaryLoop(name: BinaryName, a: Data, b: Data, out: Data): void {
  const n = out.length;
  if (name === "add") for (let i = 0; i < n; i++) out[i] = a[i] + b[i];
  else if (name === "sub") for (let i = 0; i < n; i++) out[i] = a[i] - b[i];
  else if (name === "mul") for (let i = 0; i < n; i++) out[i] = a[i] * b[i];
  else for (let i = 0; i < n; i++) out[i] = a[i] / b[i];
}

function unaryLoop(name: UnaryName, x: Data, out: Data): void {
  switch (name) {
    case "exp":
      for (let i = 0; i < out.length; i++) out[i] = Math.exp(x[i]);
      return;
    case "tanh":
      for (let i = 0; i < x.length; i++) out[i] = Math.tanh(x[i]);
      return;
    case "sigmoid":
      return K.sigmoid(x, out);
    case "erf":
      return K.erf(x, out);
    case "silu":
      return K.silu(x, out);
    case "geluErf":
      return K.gelu(x, out, "none");
    case "geluTanh":
      return K.gelu(x, out, "tanh");
  }
}

/** Forward-mode Jacobian of a small MLP per example, accumulated in float64 (the fused measure's reference). */
function mlpJacobianSqNormsLoop(
  x: Data,
  d: number,
  layers: readonly { w: Storage; b: Storage; inSize: number; outSize: number }[],
  act: 0 | 1 | 2,
  out: Data,
): void {
  const n = x.length / d;
  for (let e = 0; e < n; e++) {
    let a = Float64Array.from(x.subarray(e * d, e * d + d));
    let J = new Float64Array(d * d);
    for (let i = 0; i < d; i++) J[i * d + i] = 1;
    layers.forEach((l, li) => {
      const W = h(l.w),
        b = h(l.b);
      const z = new Float64Array(l.outSize),
        Jz = new Float64Array(l.outSize * d);
      for (let o = 0; o < l.outSize; o++) {
        let s = b[o];
        for (let i = 0; i < l.inSize; i++) s += W[o * l.inSize + i] * a[i];
        z[o] = s;
        for (let i = 0; i < l.inSize; i++) {
          const w = W[o * l.inSize + i];
          if (w !== 0) for (let k = 0; k < d; k++) Jz[o * d + k] += w * J[i * d + k];
        }
      }
      if (li < layers.length - 1 && act !== 0) {
        for (let o = 0; o < l.outSize; o++) {
          const t = act === 1 ? 0 : Math.tanh(z[o]);
          const dz = act === 1 ? (z[o] > 0 ? 1 : 0) : 1 - t * t;
          z[o] = act === 1 ? Math.max(z[o], 0) : t;
          for (let k = 0; k < d; k++) Jz[o * d + k] *= dz;
        }
      }
      a = z;
      J = Jz;
    });
    let s = 0;
    for (let i = 0; i < J.length; i++) s += J[i] * J[i];
    out[e] = s;
  }
}

/** o = act(o + bias) in place, bias repeated over rows of n values (the finish of linear and convBiasAct). */
function biasAct(o: Data, bias: Data, n: number, relu: boolean): void {
  for (let i = 0; i < o.length; i += n) for (let j = 0; j < n; j++) o[i + j] = o[i + j] + bias[j];
  if (relu) for (let i = 0; i < o.length; i++) if (!(o[i] > 0)) o[i] = 0;
}

/** Every kernel-table entry as the engine's JS reference loop (each returns true: it always handles the call). */
export const reference: Required<KernelTable> = {
  gemm(A, B, C, M, Kd, N, transA, transB) {
    const a = transA ? transposedCopy(h(A), Kd, M) : h(A);
    const b = transB ? transposedCopy(h(B), N, Kd) : h(B);
    K.matmulJs(a, b, h(C), M, Kd, N);
    return true;
  },
  linear(x, W, b, out, M, Kd, N, relu) {
    reference.gemm(x, W, out, M, Kd, N, false, true);
    biasAct(h(out), h(b), N, relu);
    return true;
  },
  transpose(x, out, M, N) {
    K.transpose(h(x), h(out), M, N);
    return true;
  },
  binary(name, a, b, out) {
    binaryLoop(name, h(a), h(b), h(out));
    return true;
  },
  unary(name, x, out) {
    unaryLoop(name, h(x), h(out));
    return true;
  },
  scale(x, out, s) {
    const d = h(x),
      o = h(out);
    for (let i = 0; i < d.length; i++) o[i] = d[i] * s;
    return true;
  },
  affine(x, out, alpha, beta) {
    const d = h(x),
      o = h(out);
    for (let i = 0; i < d.length; i++) o[i] = alpha * d[i] + beta;
    return true;
  },
  fill(out, value) {
    h(out).fill(value);
    return true;
  },
  copy(x, out) {
    h(out).set(h(x));
    return true;
  },
  powScalar(x, out, p) {
    K.powScalar(h(x), h(out), p);
    return true;
  },
  reluMask(x, mask) {
    const d = h(x),
      m = h(mask);
    for (let i = 0; i < d.length; i++) m[i] = d[i] > 0 ? 1 : 0;
    return true;
  },
  relu(x, out, mask) {
    const d = h(x),
      o = h(out),
      m = h(mask);
    for (let i = 0; i < d.length; i++) {
      if (d[i] > 0) {
        o[i] = d[i];
        m[i] = 1;
      } else {
        o[i] = 0;
        m[i] = 0;
      }
    }
    return true;
  },
  leakyRelu(x, out, mask, alpha) {
    const d = h(x),
      o = h(out),
      m = h(mask);
    for (let i = 0; i < d.length; i++) {
      const v = d[i] > 0 ? 1 : alpha;
      m[i] = v;
      o[i] = d[i] * v;
    }
    return true;
  },
  softplus(x, out, mask, beta, threshold) {
    h(mask).fill(0);
    K.softplus(h(x), h(out), h(mask), beta, threshold);
    return true;
  },
  addRowVector(x, v, out, rows, cols) {
    const d = h(x),
      b = h(v),
      o = h(out);
    for (let i = 0; i < rows * cols; i += cols) for (let j = 0; j < cols; j++) o[i + j] = d[i + j] + b[j];
    return true;
  },
  broadcastBinary(op, a, aStrides, b, bStrides, out, outShape) {
    K.broadcastBinaryJs(op, h(a), aStrides, h(b), bStrides, h(out), outShape);
    return true;
  },
  broadcastCopy(x, xStrides, out, outShape) {
    K.broadcastCopyJs(h(x), xStrides, h(out), outShape);
    return true;
  },
  sumToShape(x, xShape, out, outStrides) {
    K.sumToShapeJs(h(x), xShape, h(out), outStrides);
    return true;
  },
  sumColumns64(x, out, rows, cols) {
    const d = h(x),
      acc = new Float64Array(cols);
    for (let i = 0; i < rows * cols; i += cols) for (let j = 0; j < cols; j++) acc[j] += d[i + j];
    h(out).set(acc);
    return true;
  },
  sumColumns(x, out, rows, cols) {
    const d = h(x),
      o = h(out);
    o.fill(0);
    for (let i = 0; i < rows * cols; i += cols) for (let j = 0; j < cols; j++) o[j] += d[i + j];
    return true;
  },
  sumRows(x, out, rows, cols) {
    const d = h(x),
      o = h(out);
    for (let i = 0; i < rows; i++) {
      let s = 0;
      for (let j = 0; j < cols; j++) s += d[i * cols + j];
      o[i] = s;
    }
    return true;
  },
  sum(x, out) {
    const d = h(x);
    let s = 0;
    for (let i = 0; i < d.length; i++) s += d[i];
    h(out)[0] = s;
    return true;
  },
  softmaxRows(x, out, rows, cols) {
    const d = h(x),
      o = h(out),
      n = cols;
    for (let i = 0; i < rows; i++) {
      let mx = -Infinity;
      for (let j = 0; j < n; j++) mx = Math.max(mx, d[i * n + j]);
      let s = 0;
      for (let j = 0; j < n; j++) s += o[i * n + j] = Math.exp(d[i * n + j] - mx);
      for (let j = 0; j < n; j++) o[i * n + j] /= s;
    }
    return true;
  },
  logSumExpRows(x, out, rows, cols) {
    const d = h(x),
      o = h(out),
      n = cols;
    for (let i = 0; i < rows; i++) {
      let mx = -Infinity;
      for (let j = 0; j < n; j++) mx = Math.max(mx, d[i * n + j]);
      let s = 0;
      for (let j = 0; j < n; j++) s += Math.exp(d[i * n + j] - mx);
      o[i] = mx + Math.log(s);
    }
    return true;
  },
  gather(x, idx, out) {
    const d = h(x),
      o = h(out),
      id = ix(idx);
    for (let i = 0; i < id.length; i++) o[i] = d[id[i]];
    return true;
  },
  scatterAdd(g, idx, out) {
    const d = h(g),
      o = h(out),
      id = ix(idx);
    o.fill(0);
    for (let i = 0; i < id.length; i++) o[id[i]] += d[i];
    return true;
  },
  permute(x, out, shape, perm) {
    const rank = shape.length;
    const inStrides = new Array<number>(rank);
    for (let i = rank - 1, s = 1; i >= 0; i--) {
      inStrides[i] = s;
      s *= shape[i];
    }
    const outShape = perm.map((p) => shape[p]);
    const strides = perm.map((p) => inStrides[p]); // input stride of each output axis
    const o = h(out),
      d = h(x);
    if (o.length === 0) return true;
    const counter = new Array<number>(rank).fill(0);
    let src = 0;
    for (let i = 0; i < o.length; i++) {
      o[i] = d[src];
      // Advance the output multi-index (last axis fastest), keeping src = Σ counter·strides.
      for (let a = rank - 1; a >= 0; a--) {
        if (++counter[a] < outShape[a]) {
          src += strides[a];
          break;
        }
        src -= (counter[a] - 1) * strides[a];
        counter[a] = 0;
      }
    }
    return true;
  },
  concatLastAxis(xs, widths, rows, out) {
    const o = h(out),
      total = widths.reduce((a, b) => a + b, 0);
    let off = 0;
    xs.forEach((t, k) => {
      const cw = widths[k],
        d = h(t);
      for (let r = 0; r < rows; r++) o.set(d.subarray(r * cw, r * cw + cw), r * total + off);
      off += cw;
    });
    return true;
  },
  pad2d(x, out, shape, padding, value) {
    const [n, hh, w, c] = shape;
    const [t, l, b, r] = padding;
    const H = hh + t + b,
      W = w + l + r;
    const o = h(out),
      src = h(x),
      rowLen = w * c;
    o.fill(value === 0 ? 0 : value); // −0 pads as +0, as the op always has
    for (let bi = 0; bi < n; bi++) {
      for (let y = 0; y < hh; y++) {
        const s = (bi * hh + y) * rowLen;
        o.set(src.subarray(s, s + rowLen), ((bi * H + y + t) * W + l) * c);
      }
    }
    return true;
  },
  crop2d(x, out, shape, padding) {
    const [n, H, W, c] = shape;
    const [t, l, b, r] = padding;
    const hh = H - t - b,
      w = W - l - r;
    const o = h(out),
      src = h(x),
      rowLen = w * c;
    for (let bi = 0; bi < n; bi++) {
      for (let y = 0; y < hh; y++) {
        const s = ((bi * H + y + t) * W + l) * c;
        o.set(src.subarray(s, s + rowLen), (bi * hh + y) * rowLen);
      }
    }
    return true;
  },
  im2col(x, cols, g) {
    K.im2colGeneral(h(x), h(cols), g);
    return true;
  },
  col2im(cols, x, g) {
    K.col2imGeneral(h(cols), h(x), g);
    return true;
  },
  convBiasAct(x, w, b, out, g, cout, relu) {
    reference.conv("forward", x, w, out, g, cout);
    biasAct(h(out), h(b), cout, relu);
    return true;
  },
  conv(which, a, b, out, g, cout) {
    const geom = fullWindow(g);
    const rows = g.n * g.outH * g.outW,
      k = g.kh * g.kw * g.c;
    const A = h(a),
      B = h(b),
      o = h(out);
    const like = (n: number): Data => (A instanceof Float64Array ? new Float64Array(n) : new Float32Array(n));
    if (which === "forward") {
      const c = like(rows * k),
        wt = like(k * cout);
      K.im2colGeneral(A, c, geom);
      K.transpose(B, wt, cout, k);
      K.matmulJs(c, wt, o, rows, k, cout);
    } else if (which === "input") {
      const dc = like(rows * k);
      K.matmulJs(A, B, dc, rows, cout, k);
      K.col2imGeneral(dc, o, geom);
    } else {
      const c = like(rows * k),
        dyt = like(rows * cout);
      K.im2colGeneral(A, c, geom);
      K.transpose(B, dyt, rows, cout);
      K.matmulJs(dyt, c, o, cout, rows, k);
    }
    return true;
  },
  maxPool(x, y, idx, g) {
    const id = K.maxPoolArgmaxGeneralJs(h(x), fullWindow(g));
    ix(idx).set(id);
    const d = h(x),
      o = h(y);
    for (let i = 0; i < id.length; i++) o[i] = d[id[i]];
    return true;
  },
  maxPoolBackward(dy, idx, dx) {
    const d = h(dy),
      o = h(dx),
      id = ix(idx);
    o.fill(0);
    for (let i = 0; i < id.length; i++) if (id[i] >= 0) o[id[i]] += d[i];
    return true;
  },
  avgPool(x, out, g, countIncludePad) {
    const { idx, scale } = K.avgPoolWindows(fullWindow(g), countIncludePad);
    K.windowMeanJs(h(x), h(out), idx, scale, g.kh * g.kw);
    return true;
  },
  avgPoolBackward(dy, dx, g, countIncludePad) {
    const { idx, scale } = K.avgPoolWindows(fullWindow(g), countIncludePad);
    K.windowMeanAdjointJs(h(dy), h(dx), idx, scale, g.kh * g.kw);
    return true;
  },
  globalAvgPool(x, out, n, hw, c) {
    const d = h(x),
      o = h(out);
    o.fill(0);
    for (let b = 0; b < n; b++) {
      for (let p = 0; p < hw; p++) {
        const s = (b * hw + p) * c;
        for (let ch = 0; ch < c; ch++) o[b * c + ch] += d[s + ch];
      }
    }
    for (let i = 0; i < o.length; i++) o[i] /= hw;
    return true;
  },
  spreadMean(g, out, n, hw, c) {
    const d = h(g),
      o = h(out);
    for (let b = 0; b < n; b++) {
      for (let p = 0; p < hw; p++) {
        const s = (b * hw + p) * c;
        for (let ch = 0; ch < c; ch++) o[s + ch] = d[b * c + ch] / hw;
      }
    }
    return true;
  },
  bnApply(x, mean, k, beta, out, rows, C) {
    const d = h(x),
      m = h(mean),
      kk = h(k),
      b = h(beta),
      o = h(out);
    // Float32 storage rounds after each operation, as the three broadcast ops (sub, mul, add) it replaces do.
    const r = o instanceof Float32Array ? Math.fround : (v: number) => v;
    for (let i = 0, at = 0; i < rows; i++) for (let c = 0; c < C; c++, at++) o[at] = r(r(d[at] - m[c]) * kk[c]) + b[c];
    return true;
  },
  batchNormForward(x, gamma, beta, mean, variance, out, rows, C, eps) {
    // The loops of the wasm kernels channel_moments, bn_scale and bn_apply (assembly/reduce.ts, norm.ts), bit for bit.
    const d = h(x),
      gm = h(gamma),
      bt = h(beta),
      m = h(mean),
      v = h(variance),
      o = h(out);
    const f = Math.fround,
      inv = 1 / rows;
    const k = new Float64Array(C);
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let r = 0, at = c; r < rows; r++, at += C) s += d[at];
      const mc = f(f(s) * inv);
      let q = 0;
      for (let r = 0, at = c; r < rows; r++, at += C) {
        const xc = f(d[at] - mc);
        q += f(xc * xc);
      }
      const vc = f(f(q) * inv);
      m[c] = mc;
      v[c] = vc;
      k[c] = f(gm[c] * f(1 / Math.sqrt(f(vc + eps))));
    }
    for (let r = 0, at = 0; r < rows; r++)
      for (let c = 0; c < C; c++, at++) o[at] = f(f(f(d[at] - m[c]) * k[c]) + bt[c]);
    return true;
  },
  batchNormBackward(g, x, mean, variance, gamma, dx, dgamma, dbeta, rows, C, eps) {
    // The loops of the wasm kernels bn_backward_sums, bn_backward_coeffs and bn_backward_input (assembly/norm.ts).
    const G = h(g),
      d = h(x),
      m = h(mean),
      v = h(variance),
      gm = h(gamma),
      o = h(dx),
      dg = h(dgamma),
      db = h(dbeta);
    const f = Math.fround,
      inv = 1 / rows;
    const kk = new Float64Array(C),
      bb = new Float64Array(C),
      qq = new Float64Array(C);
    for (let c = 0; c < C; c++) {
      let a = 0,
        b = 0;
      for (let r = 0, at = c; r < rows; r++, at += C) {
        a += G[at];
        b += f(G[at] * f(d[at] - m[c]));
      }
      const sg = f(a),
        sgx = f(b);
      const s2 = 1 / (v[c] + eps),
        s = Math.sqrt(s2),
        k = gm[c] * s;
      kk[c] = f(k);
      bb[c] = f(-k * sg * inv);
      qq[c] = f(-k * s2 * sgx * inv);
      dg[c] = f(s * sgx);
      db[c] = sg;
    }
    for (let r = 0, at = 0; r < rows; r++)
      for (let c = 0; c < C; c++, at++) o[at] = f(f(f(kk[c] * G[at]) + bb[c]) + f(qq[c] * f(d[at] - m[c])));
    return true;
  },
  axpby(c, a, b, d, out) {
    const x = h(a),
      o = h(out);
    if (d) {
      const y = h(d);
      for (let i = 0; i < o.length; i++) o[i] = c * x[i] + b * y[i];
    } else for (let i = 0; i < o.length; i++) o[i] = c * x[i];
    return true;
  },
  adam(g, m, v, m2, v2, u, lr, b1, b2, c1, c2, eps) {
    const G = h(g),
      M = h(m),
      V = h(v),
      M2 = h(m2),
      V2 = h(v2),
      U = h(u);
    for (let i = 0; i < U.length; i++) {
      const gi = G[i];
      M2[i] = b1 * M[i] + (1 - b1) * gi;
      V2[i] = b2 * V[i] + (1 - b2) * gi * gi;
      U[i] = (-lr * (M2[i] / c1)) / (Math.sqrt(V2[i] / c2) + eps); // the stored (rounded) moments, as checkpoints hold them
    }
    return true;
  },
  mlpJacobianSqNorms(x, d, layers, act, out) {
    mlpJacobianSqNormsLoop(h(x), d, layers, act, h(out));
    return true;
  },
};

function transposedCopy(d: Data, m: number, n: number): Data {
  const out = d instanceof Float64Array ? new Float64Array(m * n) : new Float32Array(m * n);
  K.transpose(d, out, m, n);
  return out;
}
