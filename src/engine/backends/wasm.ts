/**
 * The wasm backend: float32 kernels in WebAssembly SIMD (assembly/*.ts) over tensors that live in the kernels'
 * linear memory while a scope is open (arena.ts). Float64 tensors (the exactness tests) and kernels it lacks use the
 * JS reference implementations on the same storage, so every op works on every backend.
 */
import { Tensor } from "../tensor.js";
import type { IndexStorage, Storage } from "../storage.js";
import type { Backend, KernelTable, UnaryName } from "../kernelTable.js";
import { Arena, type Staged } from "../arena.js";
import {
  wasmConv2dBackwardFilter,
  wasmConv2dBackwardInput,
  wasmConv2dForward,
  wasmGemm,
  wasmMaxPoolBackward,
  wasmMaxPoolForward,
  wasmRuntime,
  type WasmRuntime,
} from "../wasmKernels.js";

interface ProcessLike {
  env?: Record<string, string | undefined>;
  stderr?: { write(s: string): unknown };
}
const proc = (globalThis as { process?: ProcessLike }).process;

let made: Backend | null = null;
let madeFor: WasmRuntime | null = null;
let arenaOf: Arena | null = null;

function note(text: string): void {
  if (proc?.stderr) proc.stderr.write(`gcx: note: ${text}\n`);
  else console.warn(`gcx: note: ${text}`);
}

/**
 * The result of a scope made independent of its graphs, with every array of the arena (also inside tensors,
 * arrays, maps and plain objects) replaced by `move(array)`: a copy on the JS heap for `scope`, its view in a kept
 * block for `scopeKept`.
 */
function relocate(v: unknown, arena: Arena, move: (a: Staged) => Staged): unknown {
  if (v instanceof Tensor) {
    if (arena.owns(v.data)) return new Tensor(move(v.data) as Float32Array, v.shape);
    return v.requiresGrad ? new Tensor(v.data, v.shape) : v;
  }
  if (v instanceof Float32Array || v instanceof Int32Array) return arena.owns(v) ? move(v) : v;
  if (Array.isArray(v)) return v.map((x) => relocate(x, arena, move));
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [k, relocate(x, arena, move)]));
  if (v !== null && typeof v === "object") {
    const proto: unknown = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = relocate(x, arena, move);
    return out;
  }
  return v;
}

/** Copies of arena-backed values in a scope's result, so nothing returned points into released memory. */
const detach = (v: unknown, arena: Arena): unknown => relocate(v, arena, (a) => a.slice());

/** The arena's arrays a scope's result holds, in the order `relocate` visits them. */
function arraysOf(v: unknown, arena: Arena): Staged[] {
  const found: Staged[] = [];
  relocate(v, arena, (a) => {
    found.push(a);
    return a;
  });
  return found;
}

type Fn = (...args: number[]) => number;
/** What the kernel table hands this backend: its own storage (typed arrays) and host indices. */
type Operand = Storage | IndexStorage;

const UNARY: Record<UnaryName, string> = {
  exp: "ew_exp",
  tanh: "ew_tanh",
  sigmoid: "ew_sigmoid",
  erf: "ew_erf",
  silu: "ew_silu",
  geluErf: "ew_gelu_erf",
  geluTanh: "ew_gelu_tanh",
};

/** Below this many values an elementwise call costs more in staging and dispatch than its JS loop. */
const MIN_ELEMENTS = 256;

function makeKernels(rt: WasmRuntime, arena: Arena): KernelTable {
  const fn = (name: string): Fn => {
    const f = rt.exports[name];
    if (typeof f !== "function") throw new Error(`wasm kernel ${name} is not exported`);
    return f as Fn;
  };
  /** Runs body on the staged offsets of inputs and outputs; false when they cannot be staged (e.g. float64). */
  // A host backend only ever sees its own storage: typed arrays (narrowed here from the table's Storage types).
  const call = (
    inputs: readonly Operand[],
    outputs: readonly Operand[],
    body: (p: number[]) => void,
    inouts: readonly Operand[] = [],
  ): boolean => {
    const s = arena.stage(inputs as Staged[], outputs as Staged[], inouts as Staged[]);
    if (!s) return false;
    body(s.ptrs);
    s.done();
    return true;
  };
  const small = (a: Storage) => a.length < MIN_ELEMENTS || !(a instanceof Float32Array);
  return {
    gemm: (A, B, C, M, K, N, transA, transB) =>
      call([A, B], [C], ([a, b, c]) => wasmGemm(rt, a, b, c, M, K, N, { transA, transB })),
    linear: (x, W, b, out, M, K, N, relu) =>
      call([x, W, b], [out], ([px, pw, pb, po]) => wasmGemm(rt, px, pw, po, M, K, N, { transB: true, bias: pb, relu })),
    binary: (name, a, b, out) =>
      !small(out) && call([a, b], [out], ([pa, pb, po]) => fn(`ew_${name}`)(pa, pb, po, out.length)),
    unary: (name, x, out) => !small(out) && call([x], [out], ([px, po]) => fn(UNARY[name])(px, po, out.length)),
    scale: (x, out, s) =>
      !small(out) && Math.fround(s) === s && call([x], [out], ([px, po]) => fn("ew_mul_scalar")(px, po, out.length, s)),
    affine: (x, out, alpha, beta) =>
      !small(out) && call([x], [out], ([px, po]) => fn("ew_affine")(px, po, out.length, alpha, beta)),
    reluMask: (x, mask) => !small(mask) && call([x], [mask], ([px, pm]) => fn("ew_relu_mask")(px, pm, mask.length)),
    relu: (x, out, mask) =>
      !small(out) && call([x], [out, mask], ([px, po, pm]) => fn("ew_relu")(px, po, pm, out.length)),
    addRowVector: (x, v, out, rows, cols) =>
      !small(out) &&
      call([x, v], [out], ([px, pv, po]) => rt.parallel("add_row_vector", [px, pv, po, cols], rows, rows * cols)),
    sumColumns: (x, out, rows, cols) =>
      !small(x) && call([x], [out], ([px, po]) => rt.parallel("sum_columns", [px, po, rows, cols], cols, rows * cols)),
    broadcastBinary(op, a, aStrides, b, bStrides, out, outShape) {
      if (small(out) || outShape.length === 0) return false;
      const contiguous = (st: readonly number[]) =>
        st.every((v, i) => v === outShape.slice(i + 1).reduce((p, q) => p * q, 1));
      if (contiguous(aStrides) && contiguous(bStrides)) {
        return call([a, b], [out], ([pa, pb, po]) =>
          fn(["ew_add", "ew_sub", "ew_mul", "ew_div"][op])(pa, pb, po, out.length),
        );
      }
      const r = outShape.length;
      const meta = [Int32Array.from(outShape), Int32Array.from(aStrides), Int32Array.from(bStrides), new Int32Array(r)];
      return call([a, b, ...meta], [out], ([pa, pb, ps, pas, pbs, pidx, po]) =>
        fn("broadcast_binary")(op, pa, pas, pb, pbs, po, ps, r, pidx),
      );
    },
    sumColumns64: (x, out, rows, cols) =>
      !small(x) &&
      call([x], [out], ([px, po]) => rt.parallel("sum_columns_f64", [px, po, rows, cols], cols, rows * cols)),
    sumRows: (x, out, rows, cols) =>
      !small(x) && call([x], [out], ([px, po]) => rt.parallel("sum_rows", [px, po, cols], rows, rows * cols)),
    sum(x, out) {
      if (small(x)) return false;
      let r = 0;
      if (!call([x], [], ([px]) => (r = fn("sum")(px, x.length)))) return false;
      (out as Float32Array)[0] = r;
      return true;
    },
    softmaxRows: (x, out, rows, cols) =>
      !small(x) && call([x], [out], ([px, po]) => rt.parallel("softmax_rows", [px, po, cols], rows, rows * cols * 8)),
    logSumExpRows: (x, out, rows, cols) =>
      !small(x) && call([x], [out], ([px, po]) => rt.parallel("logsumexp_rows", [px, po, cols], rows, rows * cols * 8)),
    axpby(c, a, b, d, out) {
      if (small(out)) return false;
      if (!d) return call([a], [out], ([pa, po]) => fn("ew_scale")(pa, po, out.length, c));
      return call([a, d], [out], ([pa, pd, po]) => fn("ew_axpby")(pa, pd, po, out.length, c, b));
    },
    adam: (g, m, v, m2, v2, u, lr, b1, b2, c1, c2, eps) =>
      !small(u) &&
      call([g, m, v], [m2, v2, u], ([pg, pm, pv, pm2, pv2, pu]) =>
        fn("adam_moments")(pg, pm, pv, pm2, pv2, pu, u.length, lr, b1, b2, eps, c1, c2),
      ),
    mlpJacobianSqNorms(x, d, layers, act, out) {
      if (!(x instanceof Float32Array) || layers.some((l) => !(l.w instanceof Float32Array))) return false;
      const mark = arena.mark();
      try {
        const staged = arena.stage([x, ...layers.flatMap((l) => [l.w, l.b])] as Staged[], []);
        if (!staged) return false;
        const table = arena.reserve(layers.length * 16);
        const res = arena.reserve(out.length * 8);
        if (table === null || res === null) return false;
        const t = new Int32Array(rt.memory.buffer, table, layers.length * 4);
        layers.forEach((l, i) => t.set([staged.ptrs[1 + 2 * i], staged.ptrs[2 + 2 * i], l.inSize, l.outSize], 4 * i));
        // One scratch area per thread; the examples are shared by two threads when there is enough work
        // (each example is computed alone, so the split changes no bit).
        const perThread = fn("jacobian_mlp_scratch_bytes")(d, table, layers.length);
        const scratch = arena.reserve(perThread * rt.threads);
        if (scratch === null) return false;
        const macs = layers.reduce((s, l) => s + l.inSize * l.outSize, 0) * (d + 1) * out.length;
        rt.parallel(
          "jacobian_mlp_sqnorms",
          [staged.ptrs[0], d, table, layers.length, act, scratch, res],
          out.length,
          macs,
        );
        (out as Float64Array).set(new Float64Array(rt.memory.buffer, res, out.length));
        return true;
      } finally {
        arena.release(mark);
      }
    },
    conv(which, a, b, out, g, cout) {
      if (!(a instanceof Float32Array)) return false;
      if (which === "forward") return call([a, b], [out], ([px, pw, py]) => wasmConv2dForward(rt, px, pw, py, g, cout));
      if (which === "input")
        return call([a, b], [out], ([pdy, pw, pdx]) => wasmConv2dBackwardInput(rt, pdy, pw, pdx, g, cout));
      return call([a, b], [out], ([px, pdy, pdw]) => wasmConv2dBackwardFilter(rt, px, pdy, pdw, g, cout));
    },
    convBiasAct: (x, w, bias, out, g, cout, relu) =>
      x instanceof Float32Array &&
      call([x, w, bias], [out], ([px, pw, pb, py]) =>
        wasmConv2dForward(rt, px, pw, py, g, cout, 1, { bias: pb, relu }),
      ),
    maxPool: (x, y, idx, g) => call([x], [y, idx], ([px, py, pi]) => wasmMaxPoolForward(rt, px, py, pi, g)),
    // Clears dx per image (memory.fill), then adds in output order: the reference's 0 + dy[o] + … bit for bit.
    maxPoolBackward: (dy, idx, dx, g) =>
      dy instanceof Float32Array &&
      call([dy, idx], [dx], ([pdy, pi, pdx]) => wasmMaxPoolBackward(rt, pdy, pi, pdx, g, { accumulate: false })),
    bnApply: (x, mean, k, beta, out, rows, C) =>
      !small(out) &&
      call([x, mean, k, beta], [out], ([px, pm, pk, pb, po]) =>
        rt.parallel("bn_apply", [px, pm, pk, pb, po, C], rows, rows * C),
      ),
    // Training-mode BatchNorm: channel moments (parallel over channels), k, then one normalizing pass (over rows).
    batchNormForward(x, gamma, beta, mean, variance, out, rows, C, eps) {
      if (small(out)) return false;
      const k = new Float32Array(C);
      return call([x, gamma, beta], [mean, variance, out, k], ([px, pg, pb, pm, pv, po, pk]) => {
        rt.parallel("channel_moments", [px, pm, pv, rows, C], C, rows * C);
        fn("bn_scale")(pv, pg, pk, C, eps);
        rt.parallel("bn_apply", [px, pm, pk, pb, po, C], rows, rows * C);
      });
    },
    // Its closed-form backward: per-channel sums, the three coefficients, then dx in one pass.
    batchNormBackward(g, x, mean, variance, gamma, dx, dgamma, dbeta, rows, C, eps) {
      if (small(dx)) return false;
      const sums = new Float32Array(2 * C),
        coef = new Float32Array(3 * C);
      return call(
        [g, x, mean, variance, gamma],
        [dx, dgamma, dbeta, sums, coef],
        ([pg, px, pm, pv, pgm, pdx, pdg, pdb, ps, pc]) => {
          rt.parallel("bn_backward_sums", [pg, px, pm, ps, ps + 4 * C, rows, C], C, rows * C);
          fn("bn_backward_coeffs")(pv, pgm, ps, ps + 4 * C, rows, eps, pc, pdg, pdb, C);
          rt.parallel("bn_backward_input", [pg, px, pm, pc, pdx, C], rows, rows * C);
        },
      );
    },
  };
}

/** The wasm backend, or null where its kernels are not available (not built, GCX_NO_WASM=1, or — in a browser —
 * not yet installed by initWasmKernels). Made once per loaded runtime. */
export function makeWasmBackend(): Backend | null {
  if (proc?.env?.GCX_NO_WASM === "1") return null;
  const rt = wasmRuntime();
  if (!rt) return null;
  if (made && madeFor === rt) return made;
  madeFor = rt;
  const resident = typeof SharedArrayBuffer !== "undefined" && rt.memory.buffer instanceof SharedArrayBuffer;
  const base = (Math.max(rt.heapBase, 1024) + 15) & ~15;
  const fill = rt.exports.ew_fill as ((ptr: number, n: number, c: number) => void) | undefined;
  const arena = new Arena(
    rt.memory,
    resident,
    base,
    proc?.env?.GCX_ARENA_POISON === "1",
    (bytes) =>
      note(
        `a step needs ${(bytes / 2 ** 30).toFixed(2)} GiB of WebAssembly memory, more than its 4 GiB address space allows; the rest of it uses JavaScript memory (use a smaller --batch-size to stay fast)`,
      ),
    fill ? (ptr, n) => fill(ptr, n, 0) : null,
    (rt.exports.mem_copy as ((dst: number, src: number, n: number) => void) | undefined) ?? null,
  );
  arenaOf = arena;
  made = {
    name: "wasm",
    variant: rt.variant,
    device: false,
    alloc: (dtype, n, zero) =>
      dtype === "float64" ? new Float64Array(n) : (arena.alloc(n, zero) ?? new Float32Array(n)),
    // Max-pooling indices in wasm memory (int32 in a float32 allocation of the same width): resident in a scope,
    // not zeroed (the maxPool kernel writes every index).
    allocIndices(n) {
      const s = arena.alloc(n, false);
      return s ? new Int32Array(s.buffer, s.byteOffset, n) : new Int32Array(n);
    },
    adopt(s) {
      if (!(s instanceof Float32Array) || arena.owns(s)) return s;
      const v = arena.alloc(s.length, false);
      if (!v) return s;
      v.set(s);
      return v;
    },
    kernels: makeKernels(rt, arena),
    scope: (fn) => arena.run(fn, (r) => detach(r, arena) as typeof r),
    scopeKept: (fn) =>
      arena.runKept(
        fn,
        (r) => arraysOf(r, arena),
        (r, moved) => relocate(r, arena, moved) as typeof r,
        (r) => detach(r, arena) as typeof r,
      ),
    unscoped: (fn) => arena.outside(fn),
  };
  return made;
}

/** Bytes of wasm memory the open scopes hold, and the high-water mark (tests check that steps do not leak). */
export function wasmArenaUsage(): { used: number; peak: number; kept: number } | null {
  makeWasmBackend();
  return arenaOf ? { used: arenaOf.used, peak: arenaOf.peak, kept: arenaOf.keptBytes } : null;
}
