// The convolution and pooling kernels (assembly/conv.ts, assembly/pool.ts) against float64 references and the JS
// engine's window semantics (convGeometry, maxPoolArgmaxGeneral, avgPoolWindows), in the SIMD128 and relaxed builds,
// and row-range splits against whole calls, bit for bit.
import { setFlagsFromString } from "node:v8";
// This test process (never the library) enables relaxed SIMD on Node 20 so that the relaxed build is checked too.
setFlagsFromString("--experimental-wasm-relaxed-simd");

import { test } from "node:test";
import assert from "node:assert/strict";
import { Rng } from "../src/util/rng.js";
import { loadHarness, type WasmHarness } from "./wasmHarness.js";
import { avgPoolWindows, convGeometry, maxPoolArgmaxGeneral, type ConvGeometry } from "../src/engine/kernels.js";

/** Deterministic uniform floats in [-1, 1) from the project's generator. */
function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.uniformIn(-1, 1);
}

interface ConvCase {
  n: number;
  h: number;
  w: number;
  c: number;
  cout: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  pad: [number, number, number, number];
  groups: number;
}

function geometry(k: ConvCase): ConvGeometry {
  return convGeometry([k.n, k.h, k.w, k.c], [k.kh, k.kw], [k.sh, k.sw], k.pad, [k.dh, k.dw]);
}

/** Calls f(b, oy, ox, ky, kx, iy, ix) for every in-image tap of every output pixel. */
function eachTap(
  g: ConvGeometry,
  f: (b: number, oy: number, ox: number, ky: number, kx: number, iy: number, ix: number) => void,
): void {
  for (let b = 0; b < g.n; b++)
    for (let oy = 0; oy < g.outH; oy++)
      for (let ox = 0; ox < g.outW; ox++)
        for (let ky = 0; ky < g.kh; ky++)
          for (let kx = 0; kx < g.kw; kx++) {
            const iy = oy * g.sh + ky * g.dh - g.padTop,
              ix = ox * g.sw + kx * g.dw - g.padLeft;
            if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) f(b, oy, ox, ky, kx, iy, ix);
          }
}

/** float64 forward, input gradient and filter gradient, plus per-element magnitudes for the tolerances. */
function reference(k: ConvCase, g: ConvGeometry, x: Float32Array, wt: Float32Array, dy: Float32Array) {
  const cg = k.c / k.groups,
    og = k.cout / k.groups,
    P = k.n * g.outH * g.outW;
  const y = new Float64Array(P * k.cout),
    yMag = new Float64Array(P * k.cout);
  const dx = new Float64Array(x.length),
    dxMag = new Float64Array(x.length);
  const dw = new Float64Array(wt.length),
    dwMag = new Float64Array(wt.length);
  eachTap(g, (b, oy, ox, ky, kx, iy, ix) => {
    const p = (b * g.outH + oy) * g.outW + ox;
    for (let co = 0; co < k.cout; co++) {
      const grp = Math.floor(co / og);
      for (let ci = 0; ci < cg; ci++) {
        const xi = ((b * k.h + iy) * k.w + ix) * k.c + grp * cg + ci;
        const wi = ((co * k.kh + ky) * k.kw + kx) * cg + ci;
        const yi = p * k.cout + co;
        y[yi] += x[xi] * wt[wi];
        yMag[yi] += Math.abs(x[xi] * wt[wi]);
        dx[xi] += dy[yi] * wt[wi];
        dxMag[xi] += Math.abs(dy[yi] * wt[wi]);
        dw[wi] += dy[yi] * x[xi];
        dwMag[wi] += Math.abs(dy[yi] * x[xi]);
      }
    }
  });
  return { y, yMag, dx, dxMag, dw, dwMag };
}

function close(got: Float32Array, want: Float64Array, mag: Float64Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const tol = 4e-6 * (mag[i] + 1);
    if (Number.isNaN(want[i]) && Number.isNaN(got[i])) continue;
    assert.ok(Math.abs(got[i] - want[i]) <= tol, `${what}[${i}] = ${got[i]}, expected ${want[i]}`);
  }
}

function randomCase(r: () => number): ConvCase {
  const pick = <T>(xs: T[]): T => xs[Math.floor(((r() + 1) / 2) * xs.length) % xs.length];
  for (;;) {
    const groups = pick([1, 1, 1, 2, 3]);
    const c = groups * pick([1, 2, 3, 4, 5, 8, 9]);
    const cout = groups * pick([1, 3, 8, 9, 12]);
    const k: ConvCase = {
      n: pick([1, 2]),
      h: pick([1, 3, 5, 8]),
      w: pick([1, 2, 6, 7]),
      c,
      cout,
      kh: pick([1, 2, 3]),
      kw: pick([1, 3]),
      sh: pick([1, 2]),
      sw: pick([1, 2, 3]),
      dh: pick([1, 2]),
      dw: pick([1, 2]),
      pad: [pick([0, 1, 2]), pick([0, 1]), pick([0, 1, 2]), pick([0, 2])],
      groups,
    };
    try {
      geometry(k);
      return k;
    } catch {
      // kernel larger than the padded input: draw again
    }
  }
}

type Fn = (...a: number[]) => number | void;

function runConv(
  h: WasmHarness,
  k: ConvCase,
  g: ConvGeometry,
  x: Float32Array,
  wt: Float32Array,
  dy: Float32Array,
  bias: Float32Array | null,
  act: number,
) {
  h.reset();
  const xp = h.put(x),
    wp = h.put(wt),
    dyp = h.put(dy),
    bp = bias ? h.put(bias) : 0;
  const P = k.n * g.outH * g.outW;
  const yp = h.alloc(P * k.cout),
    dxp = h.alloc(x.length),
    dwp = h.alloc(wt.length);
  const geo = [
    k.n,
    k.h,
    k.w,
    k.c,
    k.cout,
    k.kh,
    k.kw,
    k.sh,
    k.sw,
    k.dh,
    k.dw,
    g.padTop,
    g.padLeft,
    g.outH,
    g.outW,
    k.groups,
  ];
  h.exports.conv2dForward(xp, wp, yp, bp, ...geo, act, 0, 0, P);
  h.exports.conv2dBackwardInput(dyp, wp, dxp, ...geo, 0, 0, k.n * k.h * k.w);
  h.exports.conv2dBackwardFilter(xp, dyp, dwp, ...geo, 0, 0, k.cout);
  return { y: h.get(yp, P * k.cout), dx: h.get(dxp, x.length), dw: h.get(dwp, wt.length), xp, wp, dyp, bp, geo, P };
}

for (const build of ["kernels.wasm", "kernels-relaxed.wasm"]) {
  test(`conv2d (${build}): forward, input and filter gradients match float64 on random geometries`, (t) => {
    const h = loadHarness(build);
    if (!h) return t.skip(`dist/wasm/${build} not built`);
    const r = rng(build.length);
    for (let trial = 0; trial < 60; trial++) {
      const k = randomCase(r),
        g = geometry(k);
      const P = k.n * g.outH * g.outW;
      const x = Float32Array.from({ length: k.n * k.h * k.w * k.c }, r);
      const wt = Float32Array.from({ length: k.cout * k.kh * k.kw * (k.c / k.groups) }, r);
      const dy = Float32Array.from({ length: P * k.cout }, r);
      const bias = trial % 2 ? Float32Array.from({ length: k.cout }, r) : null;
      const act = trial % 3 === 0 ? 1 : 0;
      const got = runConv(h, k, g, x, wt, dy, bias, act);
      const ref = reference(k, g, x, wt, dy);
      const y = ref.y.map((v, i) => {
        const s = v + (bias ? bias[i % k.cout] : 0);
        return act ? Math.max(s, 0) : s;
      });
      const what = JSON.stringify(k);
      close(got.y, y, ref.yMag, `y ${what}`);
      close(got.dx, ref.dx, ref.dxMag, `dx ${what}`);
      close(got.dw, ref.dw, ref.dwMag, `dw ${what}`);
    }
  });

  test(`conv2d (${build}): deep and wide blocks (K > 256, cout > 8, > 64 rows), accumulate, and row splits bit for bit`, (t) => {
    const h = loadHarness(build);
    if (!h) return t.skip(`dist/wasm/${build} not built`);
    const r = rng(5);
    for (const k of [
      { n: 2, h: 9, w: 10, c: 32, cout: 20, kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: 1, pad: [1, 1, 1, 1], groups: 1 },
      { n: 1, h: 12, w: 11, c: 24, cout: 12, kh: 3, kw: 3, sh: 2, sw: 1, dh: 1, dw: 2, pad: [1, 2, 0, 1], groups: 2 },
    ] as ConvCase[]) {
      const g = geometry(k);
      const P = k.n * g.outH * g.outW;
      const x = Float32Array.from({ length: k.n * k.h * k.w * k.c }, r);
      const wt = Float32Array.from({ length: k.cout * k.kh * k.kw * (k.c / k.groups) }, r);
      const dy = Float32Array.from({ length: P * k.cout }, r);
      const bias = Float32Array.from({ length: k.cout }, r);
      const got = runConv(h, k, g, x, wt, dy, bias, 1);
      const ref = reference(k, g, x, wt, dy);
      close(
        got.y,
        ref.y.map((v, i) => Math.max(v + bias[i % k.cout], 0)),
        ref.yMag,
        "y",
      );
      close(got.dx, ref.dx, ref.dxMag, "dx");
      close(got.dw, ref.dw, ref.dwMag, "dw");
      // Split every kernel's rows in two: the same bits.
      const { xp, wp, dyp, bp, geo } = got;
      const splitRun = (
        name: string,
        args: number[],
        out: number,
        len: number,
        rows: number,
        s: number,
      ): Float32Array => {
        const fn = h.exports[name];
        fn(...args, 0, s);
        fn(...args, s, rows);
        return h.get(out, len);
      };
      const yp = h.alloc(P * k.cout),
        dxp = h.alloc(x.length),
        dwp = h.alloc(wt.length);
      for (const s of [1, 5, 67]) {
        assert.deepEqual(
          splitRun("conv2dForward", [xp, wp, yp, bp, ...geo, 1, 0], yp, P * k.cout, P, s),
          got.y,
          `forward split ${s}`,
        );
        assert.deepEqual(
          splitRun("conv2dBackwardInput", [dyp, wp, dxp, ...geo, 0], dxp, x.length, k.n * k.h * k.w, s),
          got.dx,
          `input split ${s}`,
        );
        assert.deepEqual(
          splitRun("conv2dBackwardFilter", [xp, dyp, dwp, ...geo, 0], dwp, wt.length, k.cout, Math.min(s, k.cout - 1)),
          got.dw,
          `filter split ${s}`,
        );
      }
      // accumulate = 1 adds to what is there: dw + dw = 2 dw.
      h.exports.conv2dBackwardFilter(xp, dyp, dwp, ...geo, 1, 0, k.cout);
      close(
        h.get(dwp, wt.length),
        ref.dw.map((v) => 2 * v),
        ref.dwMag.map((v) => 2 * v),
        "accumulated dw",
      );
    }
  });

  test(`conv2d (${build}): strided input gradients by output phase and filter gradients by column slabs`, (t) => {
    const h = loadHarness(build);
    if (!h) return t.skip(`dist/wasm/${build} not built`);
    const r = rng(13);
    // cg ≥ 8 (the phased path; fewer channels take the narrow one): strides 2 and 3, a 1×1 and a 2×2 kernel with
    // phases that no tap reaches, dilation, groups, odd sizes and one-sided padding; a case with more rows per
    // phase than one batch holds and more than 256 columns per phase; one with channels so wide that a batch is
    // a few dozen rows.
    for (const k of [
      { n: 2, h: 9, w: 11, c: 8, cout: 12, kh: 3, kw: 3, sh: 2, sw: 2, dh: 1, dw: 1, pad: [1, 1, 1, 1], groups: 1 },
      { n: 1, h: 13, w: 10, c: 18, cout: 10, kh: 3, kw: 2, sh: 3, sw: 2, dh: 1, dw: 2, pad: [2, 0, 1, 1], groups: 2 },
      { n: 3, h: 7, w: 8, c: 16, cout: 24, kh: 1, kw: 1, sh: 2, sw: 2, dh: 1, dw: 1, pad: [0, 0, 0, 0], groups: 1 },
      { n: 2, h: 11, w: 9, c: 8, cout: 8, kh: 2, kw: 2, sh: 3, sw: 3, dh: 2, dw: 1, pad: [0, 1, 0, 0], groups: 1 },
      { n: 1, h: 10, w: 9, c: 27, cout: 9, kh: 3, kw: 3, sh: 2, sw: 3, dh: 2, dw: 1, pad: [2, 1, 0, 2], groups: 3 },
      { n: 2, h: 70, w: 66, c: 8, cout: 72, kh: 3, kw: 3, sh: 2, sw: 2, dh: 1, dw: 1, pad: [1, 1, 1, 1], groups: 1 },
      { n: 1, h: 15, w: 15, c: 600, cout: 8, kh: 3, kw: 3, sh: 2, sw: 2, dh: 1, dw: 1, pad: [1, 1, 1, 1], groups: 1 },
      // Stride 1 with borders (the filter gradient's unchecked gather and its border fix-up), and a dilated
      // kernel taller than the image (no pixel inside: the checked gather).
      { n: 2, h: 6, w: 7, c: 16, cout: 8, kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: 1, pad: [1, 2, 1, 0], groups: 1 },
      { n: 2, h: 3, w: 4, c: 16, cout: 8, kh: 3, kw: 3, sh: 1, sw: 1, dh: 2, dw: 1, pad: [2, 1, 2, 1], groups: 1 },
      // One output channel: dyᵀ rows are contiguous, so a slab narrower than 8 columns would take the driver's dot
      // path and change bits.
      { n: 2, h: 5, w: 6, c: 8, cout: 1, kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: 1, pad: [1, 1, 1, 1], groups: 1 },
    ] as ConvCase[]) {
      const g = geometry(k);
      const what = JSON.stringify(k);
      const P = k.n * g.outH * g.outW,
        pixels = k.n * k.h * k.w,
        K = k.kh * k.kw * (k.c / k.groups);
      const x = Float32Array.from({ length: pixels * k.c }, r);
      const wt = Float32Array.from({ length: k.cout * K }, r);
      const dy = Float32Array.from({ length: P * k.cout }, r);
      const ref = reference(k, g, x, wt, dy);
      h.reset();
      const xp = h.put(x),
        wp = h.put(wt),
        dyp = h.put(dy);
      const geo = [k.n, k.h, k.w, k.c, k.cout, k.kh, k.kw, k.sh, k.sw, k.dh, k.dw, g.padTop, g.padLeft, g.outH, g.outW];
      const args = [...geo, k.groups];
      // Every dx element is written (NaN before), including those no tap reaches.
      const dxp = h.put(new Float32Array(x.length).fill(NaN));
      h.exports.conv2dBackwardInput(dyp, wp, dxp, ...args, 0, 0, pixels);
      const dx = h.get(dxp, x.length);
      close(dx, ref.dx, ref.dxMag, `dx ${what}`);
      for (const s of [1, 5, 67, pixels >> 1, pixels - 3]) {
        const dxs = h.put(new Float32Array(x.length).fill(NaN));
        h.exports.conv2dBackwardInput(dyp, wp, dxs, ...args, 0, 0, s);
        h.exports.conv2dBackwardInput(dyp, wp, dxs, ...args, 0, s, pixels);
        assert.deepEqual(h.get(dxs, x.length), dx, `input split ${s} ${what}`);
      }
      // accumulate = 1 adds to what is there.
      const base = Float32Array.from({ length: x.length }, r);
      const dxa = h.put(base);
      h.exports.conv2dBackwardInput(dyp, wp, dxa, ...args, 1, 0, pixels);
      close(
        h.get(dxa, x.length),
        ref.dx.map((v, i) => v + base[i]),
        ref.dxMag.map((v) => v + 1),
        `accumulated dx ${what}`,
      );
      // Filter gradient by column slabs: the same bits as by output channels, whatever the cut.
      const dwp = h.alloc(wt.length);
      h.exports.conv2dBackwardFilter(xp, dyp, dwp, ...args, 0, 0, k.cout);
      const dw = h.get(dwp, wt.length);
      close(dw, ref.dw, ref.dwMag, `dw ${what}`);
      const dwc = h.put(new Float32Array(wt.length).fill(NaN));
      h.exports.conv2dBackwardFilterColumns(xp, dyp, dwc, ...args, 0, 0, K);
      assert.deepEqual(h.get(dwc, wt.length), dw, `filter by columns ${what}`);
      for (const cuts of [[1], [4], [8], [9, 13], [K >> 1], [K - 1], [4, K >> 1, K - 4]]) {
        const bounds = [0, ...cuts.filter((c) => c > 0 && c < K), K];
        const dws = h.put(new Float32Array(wt.length).fill(NaN));
        for (let i = 0; i + 1 < bounds.length; i++)
          h.exports.conv2dBackwardFilterColumns(xp, dyp, dws, ...args, 0, bounds[i], bounds[i + 1]);
        assert.deepEqual(h.get(dws, wt.length), dw, `filter column cuts ${bounds.join(",")} ${what}`);
      }
      h.exports.conv2dBackwardFilterColumns(xp, dyp, dwc, ...args, 1, 0, K);
      close(
        h.get(dwc, wt.length),
        ref.dw.map((v) => 2 * v),
        ref.dwMag.map((v) => 2 * v),
        `accumulated dw by columns ${what}`,
      );
    }
  });

  test(`pooling (${build}): max pool argmax and average pool match the JS window semantics, backward scatters`, (t) => {
    const h = loadHarness(build);
    if (!h) return t.skip(`dist/wasm/${build} not built`);
    const r = rng(9);
    for (let trial = 0; trial < 60; trial++) {
      const k = randomCase(r);
      k.c = [1, 3, 4, 7, 8][trial % 5];
      k.pad = [
        Math.min(k.pad[0], k.kh >> 1),
        Math.min(k.pad[1], k.kw >> 1),
        Math.min(k.pad[2], k.kh >> 1),
        Math.min(k.pad[3], k.kw >> 1),
      ];
      let g: ConvGeometry;
      try {
        g = geometry(k);
      } catch {
        continue;
      }
      const x = Float32Array.from({ length: k.n * k.h * k.w * k.c }, () => Math.round(r() * 4) / 4); // ties
      if (trial % 7 === 0) x[0] = NaN;
      const outs = k.n * g.outH * g.outW * k.c;
      const dy = Float32Array.from({ length: outs }, r);
      h.reset();
      const xp = h.put(x),
        dyp = h.put(dy),
        yp = h.alloc(outs),
        ip = h.alloc(outs),
        dxp = h.alloc(x.length);
      const geo = [k.n, k.h, k.w, k.c, k.kh, k.kw, k.sh, k.sw, k.dh, k.dw, g.padTop, g.padLeft, g.outH, g.outW];
      let want: Int32Array | null = null;
      try {
        want = maxPoolArgmaxGeneral(x, g);
      } catch {
        // a window wholly in the padding
      }
      const empty = h.exports.maxPoolForward(xp, yp, ip, ...geo, 0, k.n * g.outH * g.outW) as number;
      if (want) {
        assert.equal(empty, 0);
        assert.deepEqual(h.getInt(ip, outs), want, `argmax ${JSON.stringify(k)}`);
        const y = h.get(yp, outs);
        for (let o = 0; o < outs; o++) assert.ok(Object.is(y[o], x[want[o]]), `max value ${o}`);
        h.exports.maxPoolBackward(dyp, ip, dxp, k.n, k.h, k.w, k.c, g.outH, g.outW, 0, 0, k.n);
        const dx = new Float64Array(x.length),
          mag = new Float64Array(x.length);
        for (let o = 0; o < outs; o++) {
          dx[want[o]] += dy[o];
          mag[want[o]] += Math.abs(dy[o]);
        }
        close(h.get(dxp, x.length), dx, mag, "max pool dx");
      } else {
        assert.ok(empty > 0, "empty windows are counted");
      }
      for (const includePad of [true, false]) {
        let win: { idx: Int32Array; scale: Float64Array };
        try {
          win = avgPoolWindows(g, includePad);
        } catch {
          continue;
        }
        const e2 = h.exports.avgPoolForward(xp, yp, ...geo, includePad ? 1 : 0, 0, k.n * g.outH * g.outW) as number;
        assert.equal(e2, 0);
        const kk = k.kh * k.kw;
        const y = new Float64Array(outs),
          ymag = new Float64Array(outs);
        const dx = new Float64Array(x.length),
          dmag = new Float64Array(x.length);
        for (let o = 0; o < outs; o++) {
          for (let j = 0; j < kk; j++) {
            const at = win.idx[o * kk + j];
            if (at < 0) continue;
            y[o] += x[at] * win.scale[o];
            ymag[o] += Math.abs(x[at]);
            dx[at] += dy[o] * win.scale[o];
            dmag[at] += Math.abs(dy[o]);
          }
        }
        close(h.get(yp, outs), y, ymag, `avg pool y (count_include_pad ${includePad})`);
        h.exports.avgPoolBackward(dyp, dxp, ...geo, includePad ? 1 : 0, 0, 0, k.n);
        close(h.get(dxp, x.length), dx, dmag, `avg pool dx (count_include_pad ${includePad})`);
      }
    }
  });
}

/**
 * The kernel runtime the engine uses (two threads unless GCX_THREADS=1) once its helper is up, with a bump
 * allocator from its heap base over at least `bytes` bytes: alloc(len, fill) returns a byte offset (zeros without
 * fill); read(p, len) copies floats out. Null when the wasm kernels are not available.
 */
async function readyRuntime(bytes: number) {
  const K = await import("../src/engine/wasmKernels.js");
  const rt = K.wasmRuntime();
  if (!rt) return null;
  if (rt.threads === 2) {
    for (let i = 0; i < 100 && !rt.helperReady(); i++) await new Promise((res) => setTimeout(res, 50));
    assert.ok(rt.helperReady(), "the helper thread started");
  }
  let top = rt.heapBase;
  const need = top + bytes;
  if (rt.memory.buffer.byteLength < need) rt.memory.grow(Math.ceil((need - rt.memory.buffer.byteLength) / 65536));
  const alloc = (len: number, fill?: () => number): number => {
    const p = top;
    const v = new Float32Array(rt.memory.buffer, p, len);
    if (fill) for (let i = 0; i < len; i++) v[i] = fill();
    else v.fill(0);
    top = (top + len * 4 + 15) & ~15;
    return p;
  };
  const read = (p: number, len: number): Float32Array => new Float32Array(rt.memory.buffer.slice(p, p + len * 4));
  return { K, rt, alloc, read };
}

test("wasm runtime: convolutions and pooling on two threads equal one thread bit for bit", async (t) => {
  const k: ConvCase = {
    n: 16,
    h: 14,
    w: 14,
    c: 16,
    cout: 32,
    kh: 3,
    kw: 3,
    sh: 1,
    sw: 1,
    dh: 1,
    dw: 1,
    pad: [1, 1, 1, 1],
    groups: 1,
  };
  const g = geometry(k),
    P = k.n * g.outH * g.outW;
  const r = rng(21);
  const run = await readyRuntime(4 * (20 * P * k.cout) + (1 << 20));
  if (!run) return t.skip("wasm kernels not available");
  const { K, rt, alloc, read: bytes } = run;
  const x = alloc(k.n * k.h * k.w * k.c, r),
    w = alloc(k.cout * 9 * k.c, r),
    dy = alloc(P * k.cout, r),
    bias = alloc(k.cout, r);
  const geo = [k.n, k.h, k.w, k.c, k.cout, k.kh, k.kw, k.sh, k.sw, k.dh, k.dw, g.padTop, g.padLeft, g.outH, g.outW, 1];
  const direct = rt.exports as unknown as Record<string, Fn>;
  const y1 = alloc(P * k.cout),
    y2 = alloc(P * k.cout);
  K.wasmConv2dForward(rt, x, w, y1, g, k.cout, 1, { bias, relu: true });
  direct.conv2dForward(x, w, y2, bias, ...geo, 1, 0, 0, P);
  assert.deepEqual(bytes(y1, P * k.cout), bytes(y2, P * k.cout));
  const dx1 = alloc(k.n * k.h * k.w * k.c),
    dx2 = alloc(k.n * k.h * k.w * k.c);
  K.wasmConv2dBackwardInput(rt, dy, w, dx1, g, k.cout);
  direct.conv2dBackwardInput(dy, w, dx2, ...geo, 0, 0, k.n * k.h * k.w);
  assert.deepEqual(bytes(dx1, k.n * k.h * k.w * k.c), bytes(dx2, k.n * k.h * k.w * k.c));
  const dw1 = alloc(k.cout * 9 * k.c),
    dw2 = alloc(k.cout * 9 * k.c);
  K.wasmConv2dBackwardFilter(rt, x, dy, dw1, g, k.cout);
  direct.conv2dBackwardFilter(x, dy, dw2, ...geo, 0, 0, k.cout);
  assert.deepEqual(bytes(dw1, k.cout * 9 * k.c), bytes(dw2, k.cout * 9 * k.c));
  // 2×2 max pool with stride 1 (overlapping windows) of y, and its backward.
  const pg = convGeometry([k.n, g.outH, g.outW, k.cout], [2, 2], [1, 1], [0, 0, 0, 0]);
  assert.equal(K.emptyPoolWindow(pg), null);
  const outs = pg.n * pg.outH * pg.outW * pg.c;
  const py = alloc(outs),
    pi = alloc(outs),
    pdy = alloc(outs, r),
    pdx1 = alloc(P * k.cout),
    pdx2 = alloc(P * k.cout);
  K.wasmMaxPoolForward(rt, y1, py, pi, pg);
  assert.deepEqual(
    new Int32Array(rt.memory.buffer.slice(pi, pi + outs * 4)),
    maxPoolArgmaxGeneral(bytes(y1, P * k.cout), pg),
  );
  K.wasmMaxPoolBackward(rt, pdy, pi, pdx1, pg);
  direct.maxPoolBackward(pdy, pi, pdx2, pg.n, pg.h, pg.w, pg.c, pg.outH, pg.outW, 0, 0, pg.n);
  assert.deepEqual(bytes(pdx1, P * k.cout), bytes(pdx2, P * k.cout));
  K.wasmAvgPoolBackward(rt, pdy, pdx1, pg, true);
  direct.avgPoolBackward(pdy, pdx2, pg.n, pg.h, pg.w, pg.c, 2, 2, 1, 1, 1, 1, 0, 0, pg.outH, pg.outW, 1, 0, 0, pg.n);
  assert.deepEqual(bytes(pdx1, P * k.cout), bytes(pdx2, P * k.cout));
  // A window wholly in the bottom padding (rows 4, 5 of a 4-row image), as the JS kernel reports it.
  const eg = convGeometry([1, 4, 4, 1], [2, 2], [2, 2], [0, 0, 2, 0]);
  assert.deepEqual(K.emptyPoolWindow(eg), [2, 0]);
  assert.throws(() => maxPoolArgmaxGeneral(new Float32Array(16), eg), /\(2, 0\) lies wholly in the padding/);
});

test("wasm runtime: strided convolutions' gradients (by output phase, by column slabs) on two threads equal one thread", async (t) => {
  const run = await readyRuntime(1 << 24);
  if (!run) return t.skip("wasm kernels not available");
  const { K, rt, alloc, read: bytes } = run;
  const r = rng(23);
  const direct = rt.exports as unknown as Record<string, Fn>;
  // ResNet's downsampling 3×3 and its 1×1 shortcut (both stride 2), and a stride-3 one with groups: large enough
  // to be shared (≥ 2^20 multiply-adds).
  for (const k of [
    { n: 16, h: 14, w: 14, c: 16, cout: 32, kh: 3, kw: 3, sh: 2, sw: 2, dh: 1, dw: 1, pad: [1, 1, 1, 1], groups: 1 },
    { n: 64, h: 14, w: 14, c: 16, cout: 32, kh: 1, kw: 1, sh: 2, sw: 2, dh: 1, dw: 1, pad: [0, 0, 0, 0], groups: 1 },
    { n: 8, h: 17, w: 15, c: 24, cout: 36, kh: 3, kw: 3, sh: 3, sw: 3, dh: 1, dw: 1, pad: [1, 1, 1, 1], groups: 2 },
  ] as ConvCase[]) {
    const g = geometry(k),
      P = k.n * g.outH * g.outW,
      X = k.n * k.h * k.w * k.c,
      W = (k.cout * k.kh * k.kw * k.c) / k.groups;
    const x = alloc(X, r),
      w = alloc(W, r),
      dy = alloc(P * k.cout, r);
    const geo = [k.n, k.h, k.w, k.c, k.cout, k.kh, k.kw, k.sh, k.sw, k.dh, k.dw, g.padTop, g.padLeft, g.outH, g.outW];
    const dx1 = alloc(X, () => NaN),
      dx2 = alloc(X, () => NaN);
    K.wasmConv2dBackwardInput(rt, dy, w, dx1, g, k.cout, k.groups);
    direct.conv2dBackwardInput(dy, w, dx2, ...geo, k.groups, 0, 0, k.n * k.h * k.w);
    assert.deepEqual(bytes(dx1, X), bytes(dx2, X), `input gradient ${JSON.stringify(k)}`);
    const dw1 = alloc(W, () => NaN),
      dw2 = alloc(W, () => NaN);
    K.wasmConv2dBackwardFilter(rt, x, dy, dw1, g, k.cout, k.groups);
    direct.conv2dBackwardFilter(x, dy, dw2, ...geo, k.groups, 0, 0, k.cout);
    assert.deepEqual(bytes(dw1, W), bytes(dw2, W), `filter gradient ${JSON.stringify(k)}`);
  }
});
