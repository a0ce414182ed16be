import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Tensor } from "../src/engine/tensor.js";
import { spectralNorm, spectralNormUpper, symmetricEigenvalues } from "../src/measures/norms.js";

interface SvdCase {
  name: string;
  shape: [number, number];
  data: number[];
  singular_values: number[];
}

const fixture = JSON.parse(
  readFileSync(new URL("../../test/fixtures/torch/svd/reference.json", import.meta.url), "utf8"),
) as { cases: SvdCase[] };

test("certified spectral norm: never below torch's float64 SVD σ_max, and within 1e-9 of it", () => {
  assert.ok(fixture.cases.length >= 5);
  for (const c of fixture.cases) {
    const w = new Tensor(Float32Array.from(c.data), c.shape);
    const exact = c.singular_values[0];
    const upper = spectralNormUpper(w);
    assert.ok(upper >= exact, `${c.name}: certified ${upper} < σ_max ${exact}`);
    assert.ok((upper - exact) / exact < 1e-9, `${c.name}: certified ${upper} too loose vs ${exact}`);
    // The transposed matrix has the same σ_max (the other Gram side is used).
    const t = new Float32Array(c.data.length);
    const [r, k] = c.shape;
    for (let i = 0; i < r; i++) for (let j = 0; j < k; j++) t[j * r + i] = c.data[i * k + j];
    const upperT = spectralNormUpper(new Tensor(t, [k, r]));
    assert.ok(upperT >= exact && (upperT - exact) / exact < 1e-9, `${c.name}ᵀ: ${upperT} vs ${exact}`);
  }
});

test("power iteration to a tolerance converges on separated spectra; a fixed 50 iterations under-estimates close ones", () => {
  for (const c of fixture.cases) {
    const w = new Tensor(Float32Array.from(c.data), c.shape);
    const [s1, s2] = c.singular_values;
    const est = spectralNorm(w);
    assert.ok(est <= s1 * (1 + 1e-12), `${c.name}: power iteration ${est} above σ_max ${s1}`);
    if (s2 === undefined || s2 / s1 < 0.95) assert.ok((s1 - est) / s1 < 1e-8, `${c.name}: ${est} vs ${s1}`);
  }
  const close = fixture.cases.find((c) => c.name.startsWith("close_top_two"))!;
  const w = new Tensor(Float32Array.from(close.data), close.shape);
  const fifty = spectralNorm(w, 50);
  assert.ok(fifty < close.singular_values[0] * (1 - 1e-7), `50 iterations should under-estimate: ${fifty}`);
  assert.ok(spectralNormUpper(w) >= close.singular_values[0]);
});

test("Jacobi eigenvalues of a symmetric matrix match the closed form of a 2×2 and the trace of a random one", () => {
  const [a, b, d] = [2, 1.5, -1];
  const ev = [...symmetricEigenvalues(Float64Array.from([a, b, b, d]), 2)].sort((x, y) => x - y);
  const m = (a + d) / 2,
    r = Math.sqrt(((a - d) / 2) ** 2 + b * b);
  assert.ok(Math.abs(ev[0] - (m - r)) < 1e-14 && Math.abs(ev[1] - (m + r)) < 1e-14);
  const n = 7,
    s = new Float64Array(n * n);
  let trace = 0,
    fro = 0;
  for (let i = 0; i < n; i++)
    for (let j = 0; j <= i; j++) {
      const v = Math.sin(i * 3 + j * 5 + 1);
      s[i * n + j] = s[j * n + i] = v;
      if (i === j) trace += v;
      fro += (i === j ? 1 : 2) * v * v;
    }
  const e = symmetricEigenvalues(Float64Array.from(s), n);
  assert.ok(Math.abs(e.reduce((x, y) => x + y, 0) - trace) < 1e-12);
  assert.ok(Math.abs(e.reduce((x, y) => x + y * y, 0) - fro) < 1e-11);
});
