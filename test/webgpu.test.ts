/**
 * The WebGPU backend from Node: adapter selection (software adapters refused unless allowed, one-line reasons),
 * the pieces of the backend that need no GPU (size classes, axis merging, inverse indices for scatters), the CLI's
 * one-line refusal, and — where Node finds a real adapter through the `webgpu` package — a smoke run of kernels
 * against JS loops. Without an adapter (our CPU machines: Dawn finds no Vulkan driver) that part skips with the
 * reason. The full kernel suite runs in Chromium on SwiftShader (test/e2e/webgpu.test.ts).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { isSoftwareAdapter, requestWebGPU } from "../src/engine/backends/webgpu/index.js";
import { sizeClass } from "../src/engine/backends/webgpu/context.js";
import { inverseIndexHost, mergeAxes } from "../src/engine/backends/webgpu/kernels.js";

const MAIN = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));

/** A GPU object whose only adapter reports `info` (enough for requestWebGPU's selection logic). */
function fakeGpu(info: Record<string, unknown> | null): GPU {
  return {
    requestAdapter: () =>
      Promise.resolve(
        info === null
          ? null
          : ({
              info,
              limits: {},
              requestDevice: () => Promise.reject(new Error("fake adapter: no device")),
            } as unknown as GPUAdapter),
      ),
  } as unknown as GPU;
}

test("software adapters are recognised and refused with one line unless allowed", async () => {
  assert.equal(isSoftwareAdapter({ vendor: "google", architecture: "swiftshader" }), true);
  assert.equal(isSoftwareAdapter({ vendor: "mesa", description: "llvmpipe (LLVM 15.0.6, 256 bits)" }), true);
  assert.equal(isSoftwareAdapter({ vendor: "nvidia", architecture: "ampere" }), false);
  assert.equal(isSoftwareAdapter({ vendor: "nvidia" }, true), true, "isFallbackAdapter");

  const refused = await requestWebGPU({ gpu: fakeGpu({ vendor: "google", architecture: "swiftshader" }) });
  assert.equal(refused.backend, undefined);
  assert.match(refused.reason ?? "", /software renderer \(google swiftshader\)/);
  assert.ok(!refused.reason?.includes("\n"), "one line");
  const fallback = await requestWebGPU({ gpu: fakeGpu({ vendor: "x", architecture: "y", isFallbackAdapter: true }) });
  assert.match(fallback.reason ?? "", /software renderer/);
  // Allowed, selection goes on to the device (which the fake refuses, again in one line).
  const allowed = await requestWebGPU({
    gpu: fakeGpu({ vendor: "google", architecture: "swiftshader" }),
    allowSoftware: true,
  });
  assert.match(allowed.reason ?? "", /^the WebGPU adapter refused a device \(fake adapter: no device\)$/);
  const none = await requestWebGPU({ gpu: fakeGpu(null) });
  assert.match(none.reason ?? "", /^no WebGPU adapter found/);
});

test("buffer size classes: 2^k or 1.5·2^k, never below the request, at most 1.5× it", () => {
  let prev = 0;
  for (let bytes = 1; bytes < 1 << 22; bytes = Math.ceil(bytes * 1.37) + 3) {
    const c = sizeClass(bytes);
    assert.ok(c >= bytes && c >= 256, `${bytes} → ${c}`);
    assert.ok(bytes <= 256 || c <= 1.5 * bytes, `${bytes} → ${c} wastes more than half`);
    assert.ok(c >= prev, "monotone");
    const k = Math.log2(c);
    assert.ok(Number.isInteger(k) || Number.isInteger(Math.log2(c / 3)), `${c} is 2^k or 3·2^k`);
    prev = c;
  }
});

test("axis merging keeps every element's offsets for both operands", () => {
  const cases: [number[], number[], number[]][] = [
    [
      [2, 3, 4],
      [12, 4, 1],
      [0, 0, 1],
    ],
    [
      [2, 1, 3, 4],
      [12, 0, 4, 1],
      [12, 0, 4, 1],
    ],
    [
      [5, 6],
      [1, 5],
      [6, 1],
    ],
    [
      [2, 3, 4, 5],
      [60, 20, 5, 1],
      [0, 0, 5, 1],
    ],
  ];
  for (const [shape, sa, sb] of cases) {
    const m = mergeAxes(shape, sa, sb);
    const offsets = (sh: number[], s1: number[], s2: number[]) => {
      const n = sh.reduce((p, q) => p * q, 1);
      const out: string[] = [];
      for (let i = 0; i < n; i++) {
        let rem = i,
          a = 0,
          b = 0;
        for (let d = sh.length - 1; d >= 0; d--) {
          const c = rem % sh[d];
          rem = Math.floor(rem / sh[d]);
          a += c * s1[d];
          b += c * s2[d];
        }
        out.push(`${a},${b}`);
      }
      return out;
    };
    assert.deepEqual(offsets(m.shape, m.sa, m.sb), offsets(shape, sa, sb), `shape [${shape}]`);
    assert.ok(m.shape.length <= shape.length);
  }
  assert.deepEqual(mergeAxes([2, 3, 4], [12, 4, 1], [12, 4, 1]).shape, [24], "contiguous operands merge to one axis");
});

test("inverse indices list each output's positions in increasing order", () => {
  const idx = Int32Array.from([3, 0, 3, 1, 3, 0]);
  const { start, list } = inverseIndexHost(idx, 5);
  assert.deepEqual([...start], [0, 2, 3, 3, 6, 6]);
  assert.deepEqual([...list], [1, 5, 3, 0, 2, 4]);
  assert.throws(() => inverseIndexHost(Int32Array.from([5]), 5), /index 5 outside \[0, 5\)/);
});

test("webgpu in Node: kernels on a real adapter (skips without one)", async (t) => {
  const r = await requestWebGPU();
  if (!r.backend) {
    t.skip(r.reason);
    return;
  }
  const be = r.backend;
  const a = Float32Array.from({ length: 300 }, (_, i) => Math.sin(i));
  const b = Float32Array.from({ length: 300 }, (_, i) => Math.cos(i));
  const out = be.alloc("float32", 100);
  assert.ok(be.kernels.gemm(be.upload(a), be.upload(b), out, 10, 30, 10, false, false));
  const got = await be.read(out);
  for (let i = 0; i < 10; i++)
    for (let j = 0; j < 10; j++) {
      let s = 0;
      for (let k = 0; k < 30; k++) s += a[i * 30 + k] * b[k * 10 + j];
      assert.ok(Math.abs(got[i * 10 + j] - s) <= 1e-5 * 30, `C[${i},${j}]`);
    }
  t.diagnostic(`adapter: ${JSON.stringify(be.adapter)}`);
});

test("gcx --backend webgpu without a usable adapter: one line, exit 2", async (t) => {
  const probe = await requestWebGPU();
  if (probe.backend) {
    t.skip("this machine has a WebGPU adapter");
    return;
  }
  const r = spawnSync(process.execPath, [MAIN, "--backend", "webgpu", "runs", "list"], { encoding: "utf8" });
  assert.equal(r.status, 2, r.stderr);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line on stderr, nothing native around it: ${r.stderr}`);
  assert.match(lines[0], /^gcx: error: --backend webgpu: /);
});
