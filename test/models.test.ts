import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, readFileSync, rmSync, mkdirSync, truncateSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Tensor } from "../src/engine/tensor.js";
import { compileNetwork, forward, type Params } from "../src/models/network.js";
import { initParams, weightStd } from "../src/models/init.js";
import { loadModel, saveModel, WEIGHTS_FILE, MODEL_FILE } from "../src/models/io.js";
import { decodeSafetensors, encodeSafetensors } from "../src/models/safetensors.js";
import { defaultCnnSpec, type ModelSpec } from "../src/models/spec.js";
import { UserError } from "../src/util/errors.js";
import { Rng } from "../src/util/rng.js";

const tmp = () => mkdtempSync(join(tmpdir(), "gcx-model-"));

test("init schemes give the documented standard deviations", () => {
  const net = compileNetwork({ kind: "mlp", sizes: [400, 300, 10], activation: "relu" });
  for (const scheme of ["he", "glorot", "lecun"] as const) {
    for (const distribution of ["normal", "uniform"] as const) {
      const p = initParams(net, { scheme, distribution, scale: 2, bias: 0.1, seed: 4 });
      const w = Array.from(p["layers.0.weight"].data);
      const mean = w.reduce((a, b) => a + b, 0) / w.length;
      const std = Math.sqrt(w.reduce((a, b) => a + (b - mean) ** 2, 0) / w.length);
      const expected =
        2 * (scheme === "he" ? Math.sqrt(2 / 400) : scheme === "glorot" ? Math.sqrt(2 / 700) : Math.sqrt(1 / 400));
      assert.ok(Math.abs(std / expected - 1) < 0.02, `${scheme}/${distribution}: std ${std} vs ${expected}`);
      assert.equal(weightStd(net.params[0], scheme) * 2, expected);
      assert.ok(p["layers.0.bias"].data.every((b) => Math.abs(b - 0.1) < 1e-7));
    }
  }
});

test("same seed gives the same parameters, another seed others", () => {
  const net = compileNetwork({ kind: "mlp", sizes: [5, 4, 3], activation: "tanh" });
  const a = initParams(net, { scheme: "he", distribution: "normal", scale: 1, bias: 0, seed: 1 });
  const b = initParams(net, { scheme: "he", distribution: "normal", scale: 1, bias: 0, seed: 1 });
  const c = initParams(net, { scheme: "he", distribution: "normal", scale: 1, bias: 0, seed: 2 });
  assert.deepEqual(a["layers.1.weight"].data, b["layers.1.weight"].data);
  assert.notDeepEqual(a["layers.1.weight"].data, c["layers.1.weight"].data);
});

test("CNN shapes: default CNN maps 28x28x1 to 10 logits and matches a direct NHWC convolution", () => {
  const spec = defaultCnnSpec();
  const net = compileNetwork(spec);
  assert.equal(net.inputSize, 784);
  assert.equal(net.outputSize, 10);
  assert.deepEqual(
    net.params.map((p) => p.name),
    ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias", "layers.2.weight", "layers.2.bias"],
  );
  assert.deepEqual(net.params[4].shape, [10, 64 * 7 * 7]);
  const p = initParams(net, { scheme: "he", distribution: "normal", scale: 1, bias: 0, seed: 0 });
  const y = forward(net, p, new Tensor(new Float32Array(2 * 784).fill(0.5), [2, 784]));
  assert.deepEqual(y.shape, [2, 10]);
});

test("a conv layer computes the textbook cross-correlation (PyTorch semantics) with same padding", () => {
  const spec: ModelSpec = {
    kind: "cnn",
    input: [4, 5, 2],
    layers: [
      { type: "conv", filters: 3, kernel: 3, stride: 1, padding: "same" },
      { type: "flatten" },
      { type: "dense", units: 1 },
    ],
  };
  const net = compileNetwork(spec);
  const p = initParams(net, { scheme: "he", distribution: "normal", scale: 1, bias: 0.3, seed: 2 });
  const rng = new Rng(3);
  const x = Float32Array.from({ length: 40 }, () => rng.normal());
  // Dense layer = identity-like readout of conv output position (1,2), channel 1.
  const dw = new Float32Array(60);
  dw[(1 * 5 + 2) * 3 + 1] = 1;
  p["layers.1.weight"] = new Tensor(dw, [1, 60]);
  p["layers.1.bias"] = new Tensor(new Float32Array(1), [1]);
  const y = forward(net, p, new Tensor(x, [1, 40])).item();
  const w = p["layers.0.weight"].data; // [out, kh, kw, in]
  let expect = p["layers.0.bias"].data[1];
  for (let ky = 0; ky < 3; ky++)
    for (let kx = 0; kx < 3; kx++)
      for (let c = 0; c < 2; c++) {
        const iy = 1 + ky - 1,
          ix = 2 + kx - 1;
        expect += w[((1 * 3 + ky) * 3 + kx) * 2 + c] * x[(iy * 5 + ix) * 2 + c];
      }
  assert.ok(Math.abs(y - expect) < 1e-5, `${y} vs ${expect}`);
});

test("save then load gives the same model and outputs; conv weights are stored as PyTorch [out,in,kh,kw]", () => {
  const spec = defaultCnnSpec([8, 8, 2], 3);
  const net = compileNetwork(spec);
  const p = initParams(net, { scheme: "glorot", distribution: "uniform", scale: 1, bias: 0.01, seed: 5 });
  const dir = tmp();
  saveModel(dir, spec, p);
  const stored = decodeSafetensors(readFileSync(join(dir, WEIGHTS_FILE)), "w");
  assert.deepEqual(stored["layers.0.weight"].shape, [32, 2, 3, 3]);
  // element [o=3, i=1, y=2, x=0] in the file equals [o=3, y=2, x=0, i=1] in memory
  assert.equal(
    stored["layers.0.weight"].data[((3 * 2 + 1) * 3 + 2) * 3 + 0],
    p["layers.0.weight"].data[((3 * 3 + 2) * 3 + 0) * 2 + 1],
  );
  const loaded = loadModel(dir);
  assert.deepEqual(loaded.spec, spec);
  const x = new Tensor(
    Float32Array.from({ length: 2 * 128 }, (_, i) => Math.sin(i)),
    [2, 128],
  );
  assert.deepEqual(forward(loaded.net, loaded.params, x).data, forward(net, p, x).data);
});

test("safetensors round trip keeps float32 and float64 data and rejects corrupt files", () => {
  const enc = encodeSafetensors({
    a: { shape: [2], data: Float32Array.from([1.5, -2]) },
    b: { shape: [1, 1], data: Float64Array.from([Math.PI]) },
  });
  const dec = decodeSafetensors(enc, "x");
  assert.deepEqual(Array.from(dec.a.data), [1.5, -2]);
  assert.equal(dec.b.data[0], Math.PI);
  assert.equal((8 + Number(new DataView(enc.buffer).getBigUint64(0, true))) % 8, 0);
  assert.throws(() => decodeSafetensors(enc.subarray(0, 20), "x"), UserError);
  assert.throws(() => decodeSafetensors(new Uint8Array(4), "x"), UserError);
});

test("loading reports missing, malformed and inconsistent model directories as UserErrors", () => {
  const spec: ModelSpec = { kind: "mlp", sizes: [3, 2], activation: "relu" };
  const net = compileNetwork(spec);
  const p: Params = initParams(net, { scheme: "he", distribution: "normal", scale: 1, bias: 0, seed: 0 });
  const dir = tmp();
  assert.throws(() => loadModel(join(dir, "nope")), /not a model directory/);
  assert.throws(() => loadModel(dir), /no model\.json/);
  writeFileSync(join(dir, MODEL_FILE), "{not json");
  assert.throws(() => loadModel(dir), /malformed JSON/);
  writeFileSync(join(dir, MODEL_FILE), JSON.stringify({ kind: "mlp", sizes: [3] }));
  assert.throws(() => loadModel(dir), /invalid model description: sizes/);
  saveModel(dir, spec, p);
  writeFileSync(join(dir, MODEL_FILE), JSON.stringify({ kind: "mlp", sizes: [4, 2] }));
  assert.throws(() => loadModel(dir), /has shape \[2,3\].*needs \[2,4\]/);
  const nanWeight = Float32Array.from(p["layers.0.weight"].data);
  nanWeight[1] = NaN;
  const bad = { ...p, "layers.0.weight": new Tensor(nanWeight, p["layers.0.weight"].shape) };
  saveModel(dir, spec, bad);
  assert.throws(
    () => loadModel(dir),
    (e: unknown) => e instanceof UserError && e.message.includes("non-finite"),
  );
});

/** A safetensors file from a header (object, or raw JSON text) and data bytes, with the header length given or true. */
function craft(header: unknown, data: Uint8Array | number = 0, headerLen?: bigint): Uint8Array {
  const text = typeof header === "string" ? header : JSON.stringify(header);
  const h = Buffer.from(text, "utf8");
  const body = typeof data === "number" ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + body.length);
  new DataView(out.buffer).setBigUint64(0, headerLen ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(body, 8 + h.length);
  return out;
}

const f32 = (shape: number[], begin: number, end: number) => ({ dtype: "F32", shape, data_offsets: [begin, end] });

/** [what, file bytes, expected message pattern]: each must be one UserError line naming the file. */
const MALFORMED: [string, Uint8Array, RegExp][] = [
  ["empty file", new Uint8Array(0), /0 bytes, shorter than the 8-byte header length/],
  ["header length past the end", craft({}, 0, 1000n), /header length 1000 exceeds the 2 bytes after it/],
  [
    "absurd header length",
    craft({}, 0, 2n ** 63n),
    /header length 9223372036854775808 is over the 100000000-byte limit/,
  ],
  ["header not UTF-8", craft('{"a":"x"}').map((b, i) => (i === 14 ? 0xff : b)), /header is not valid UTF-8/],
  ["header with a byte-order mark", craft("\ufeff{}"), /does not start with "\{"/],
  ["header is an array", craft([]), /does not start with "\{"/],
  ["header with leading space", craft(" {}"), /does not start with "\{"/],
  ["header not JSON", craft('{"a": {"dtype": "F32",'), /header is not valid JSON/],
  [
    "duplicate tensor name",
    craft(
      '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
      8,
    ),
    /key "a" more than once/,
  ],
  ["metadata not an object", craft({ __metadata__: ["x"] }), /__metadata__ is \["x"\], not an object of strings/],
  [
    "metadata value not a string",
    craft({ __metadata__: { epoch: 3 } }),
    /__metadata__ entry "epoch" is 3, not a string/,
  ],
  ["entry not an object", craft({ w: 5 }), /tensor "w" is 5, not an object/],
  ["entry null", craft({ w: null }), /tensor "w" is null, not an object/],
  ["dtype missing", craft({ w: { shape: [1], data_offsets: [0, 4] } }, 4), /tensor "w" has no dtype\)$/],
  [
    "dtype not a string",
    craft({ w: { dtype: 4, shape: [1], data_offsets: [0, 4] } }, 4),
    /tensor "w" has dtype 4, not a string/,
  ],
  ["shape missing", craft({ w: { dtype: "F32", data_offsets: [0, 4] } }, 4), /tensor "w" has no shape\)$/],
  [
    "dtype unknown",
    craft({ w: { dtype: "toString", shape: [1], data_offsets: [0, 4] } }, 4),
    /tensor "w" has unknown dtype "toString"/,
  ],
  [
    "dtype U64",
    craft({ w: { dtype: "U64", shape: [1], data_offsets: [0, 8] } }, 8),
    /tensor "w" has unsupported dtype U64; supported: F32, F64, F16, BF16, I64, I32/,
  ],
  ["dtype BOOL", craft({ w: { dtype: "BOOL", shape: [1], data_offsets: [0, 1] } }, 1), /unsupported dtype BOOL/],
  [
    "shape not a list",
    craft({ w: { dtype: "F32", shape: 4, data_offsets: [0, 4] } }, 4),
    /shape 4, not a list of non-negative integers/,
  ],
  ["negative shape", craft({ w: f32([-1], 0, 0) }), /shape \[-1\], not a list/],
  ["fractional shape", craft({ w: f32([1.5], 0, 6) }, 6), /shape \[1.5\], not a list/],
  ["string in shape", craft({ w: f32(["2"] as never, 0, 8) }, 8), /shape \["2"\], not a list/],
  ["overflowing shape", craft({ w: f32([2 ** 30, 2 ** 30, 2 ** 30], 0, 0) }), /has too many elements/],
  ["offsets missing", craft({ w: { dtype: "F32", shape: [1] } }, 4), /tensor "w" has no data_offsets\)$/],
  ["negative offsets", craft({ w: f32([2], -8, 0) }, 0), /data_offsets \[-8,0\], not two non-negative integers/],
  ["fractional offsets", craft({ w: f32([1], 0.5, 4.5) }, 5), /data_offsets \[0.5,4.5\], not two/],
  [
    "three offsets",
    craft({ w: { dtype: "F32", shape: [1], data_offsets: [0, 4, 8] } }, 8),
    /data_offsets \[0,4,8\], not two/,
  ],
  ["begin after end", craft({ w: f32([0], 4, 0) }, 4), /data_offsets \[4, 0\] with begin after end/],
  [
    "length does not match shape",
    craft({ w: f32([2], 0, 4) }, 4),
    /data_offsets \[0, 4\] hold 4 bytes, but F32 shape \[2\] needs 8/,
  ],
  [
    "overlapping tensors",
    craft({ a: f32([2], 0, 8), b: f32([2], 4, 12) }, 12),
    /tensor "b" data_offsets \[4, 12\] overlap the previous tensor, which ends at byte 8/,
  ],
  ["same region twice", craft({ a: f32([2], 0, 8), b: f32([2], 0, 8) }, 8), /overlap the previous tensor/],
  [
    "hole between tensors",
    craft({ a: f32([1], 0, 4), b: f32([1], 8, 12) }, 12),
    /tensor "b" data_offsets \[8, 12\] leave a gap after byte 4/,
  ],
  ["data not starting at 0", craft({ a: f32([1], 4, 8) }, 8), /leave a gap after byte 0/],
  ["truncated data", craft({ a: f32([4], 0, 16) }, 10), /run past the 10-byte data buffer \(truncated file\?\)/],
  ["trailing bytes", craft({ a: f32([1], 0, 4) }, 8), /the tensors cover 4 bytes of data but the file holds 8/],
  ["newline in a tensor name", craft({ "a\nb": 5 }), /tensor "a\\nb" is 5/],
];

test("the safetensors reader rejects each malformed file with one UserError line naming the file", () => {
  for (const [what, bytes, pattern] of MALFORMED) {
    assert.throws(
      () => decodeSafetensors(bytes, "/m/w.safetensors"),
      (e: unknown) => {
        assert.ok(e instanceof UserError, `${what}: ${String(e)}`);
        assert.ok(!e.message.includes("\n"), `${what}: message on several lines: ${e.message}`);
        assert.ok(e.message.startsWith("/m/w.safetensors: "), `${what}: ${e.message}`);
        assert.match(e.message, pattern, what);
        return true;
      },
      what,
    );
  }
});

test("the safetensors reader accepts files as PyTorch writes them: padded headers, metadata, F16/BF16, empty and scalar tensors", () => {
  const values = [0, 1, 2, 3, 4, 5];
  const data = new Uint8Array(Float32Array.from(values).buffer);
  // test_serialization_forced_alignement of the reference: header padded with spaces to 8-byte alignment.
  const padded = craft('{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       ', data);
  assert.equal((8 + Number(new DataView(padded.buffer).getBigUint64(0, true))) % 8, 0);
  const a = decodeSafetensors(padded, "p");
  assert.deepEqual(a.attn0.shape, [1, 1, 2, 3]);
  assert.deepEqual(Array.from(a.attn0.data), values);
  // Unpadded header, metadata, a null metadata, half precision, zero-size and scalar tensors, odd byte offsets.
  const half = new Uint8Array([0x00, 0x3c, 0x00, 0xc0, 0x80, 0x3f, 0x49, 0x40]); // F16 1, -2; BF16 1, 3.140625
  const mixed = craft(
    {
      __metadata__: { format: "pt" },
      h: { dtype: "F16", shape: [2], data_offsets: [0, 4] },
      b: { dtype: "BF16", shape: [2], data_offsets: [4, 8] },
      z: { dtype: "F32", shape: [0, 3], data_offsets: [8, 8] },
      s: { dtype: "F64", shape: [], data_offsets: [8, 16] },
    },
    new Uint8Array([...half, ...new Uint8Array(Float64Array.from([Math.E]).buffer)]),
  );
  const m = decodeSafetensors(mixed, "m");
  assert.deepEqual(Array.from(m.h.data), [1, -2]);
  assert.deepEqual(Array.from(m.b.data), [1, 3.140625]);
  assert.equal(m.z.data.length, 0);
  assert.deepEqual(m.s.shape, []);
  assert.equal(m.s.data[0], Math.E);
  assert.deepEqual(Object.keys(decodeSafetensors(craft({ __metadata__: null }), "n")), []);
  assert.deepEqual(Object.keys(decodeSafetensors(craft("{}      "), "e")), []);
});

test("encodeSafetensors output passes the strict reader, with metadata and awkward names", () => {
  const tensors = {
    "layers.0.weight": { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
    "layers.0.bias": { shape: [2], data: Float64Array.from([0.5, -0.5]) },
    ["__proto__"]: { shape: [1], data: Float32Array.from([7]) },
    'a "b"\n': { shape: [0], data: new Float32Array(0) },
  };
  const enc = encodeSafetensors(tensors, { epoch: "3", note: "x\ny" });
  assert.equal((8 + Number(new DataView(enc.buffer).getBigUint64(0, true))) % 8, 0);
  const dec = decodeSafetensors(enc, "x");
  assert.deepEqual(Object.keys(dec).sort(), Object.keys(tensors).sort());
  for (const [name, t] of Object.entries(tensors)) {
    assert.deepEqual(dec[name].shape, t.shape);
    assert.deepEqual(Array.from(dec[name].data), Array.from(t.data));
  }
  assert.throws(() => encodeSafetensors({ w: { shape: [3], data: new Float32Array(2) } }), /shape \[3\] but 2 values/);
});

test("model.json is strict: unknown keys, wrong types and extra tuple items are one-line errors naming the file", () => {
  const dir = tmp();
  saveModel(
    dir,
    { kind: "mlp", sizes: [3, 2], activation: "relu" },
    initParams(compileNetwork({ kind: "mlp", sizes: [3, 2], activation: "relu" }), {
      scheme: "he",
      distribution: "normal",
      scale: 1,
      bias: 0,
      seed: 0,
    }),
  );
  const cases: [unknown, RegExp][] = [
    [{ kind: "mlp", sizes: [3, 2], activaton: "tanh" }, /Unrecognized key: "activaton"/],
    [{ kind: "mlp", sizes: [3, 2], "a\nb": 1 }, /Unrecognized key: "a\\nb"/],
    [{ kind: "mlp", sizes: [3, 2.5] }, /sizes\.1: /],
    [{ kind: "mlp", sizes: [3, -2] }, /sizes\.1: /],
    [{ kind: "mlp", sizes: ["3", 2] }, /sizes\.0: /],
    [{ kind: "mlp", sizes: [2 ** 40, 2 ** 20] }, /too many to count exactly/],
    [{ kind: "mlp", sizes: [3, 2], activation: "softsign" }, /activation: /],
    [{ kind: "cnn", input: [4, 4, 1, 1], layers: [{ type: "dense", units: 2 }] }, /input: /],
    [
      { kind: "cnn", input: [4, 4, 1], layers: [{ type: "dense", units: 2, stride: 1 }] },
      /layers\.0: Unrecognized key: "stride"/,
    ],
    [
      {
        kind: "cnn",
        input: [4, 4, 1],
        layers: [
          { type: "flatten", size: 2 },
          { type: "dense", units: 2 },
        ],
      },
      /layers\.0: Unrecognized key: "size"/,
    ],
    [{ kind: "cnn", input: [4, 4, 1], layers: [] }, /layers: /],
    [
      {
        kind: "cnn",
        input: [4, 4, 1],
        layers: [
          { type: "conv", filters: 2, kernel: 3, padding: "full" },
          { type: "dense", units: 2 },
        ],
      },
      /layers\.0\.padding: /,
    ],
    [[], /\(root\): /],
    [null, /\(root\): /],
  ];
  for (const [json, pattern] of cases) {
    writeFileSync(join(dir, MODEL_FILE), JSON.stringify(json));
    assert.throws(
      () => loadModel(dir),
      (e: unknown) => {
        assert.ok(e instanceof UserError, String(e));
        assert.ok(!e.message.includes("\n"), e.message);
        assert.match(
          e.message,
          new RegExp(`^${join(dir, MODEL_FILE).replace(/[.\\]/g, "\\$&")}: invalid model description: `),
        );
        assert.match(e.message, pattern);
        return true;
      },
      JSON.stringify(json),
    );
  }
  writeFileSync(join(dir, MODEL_FILE), '{"kind":\n "mlp",\n x}');
  assert.throws(
    () => loadModel(dir),
    (e: unknown) =>
      e instanceof UserError && !e.message.includes("\n") && e.message.includes("model.json: malformed JSON"),
  );
});

test("model directories whose files are directories, huge or not regular give one line naming the file", () => {
  const spec: ModelSpec = { kind: "mlp", sizes: [3, 2], activation: "relu" };
  const p = initParams(compileNetwork(spec), { scheme: "he", distribution: "normal", scale: 1, bias: 0, seed: 0 });
  const oneLineError = (dir: string, pattern: RegExp) =>
    assert.throws(
      () => loadModel(dir),
      (e: unknown) => {
        assert.ok(e instanceof UserError, String(e));
        assert.ok(!e.message.includes("\n"), e.message);
        assert.match(e.message, pattern);
        return true;
      },
    );
  const a = tmp();
  saveModel(a, spec, p);
  rmSync(join(a, WEIGHTS_FILE));
  mkdirSync(join(a, WEIGHTS_FILE));
  oneLineError(a, new RegExp(`cannot read ${join(a, WEIGHTS_FILE).replace(/[.\\]/g, "\\$&")}: it is a directory`));
  const b = tmp();
  saveModel(b, spec, p);
  rmSync(join(b, MODEL_FILE));
  mkdirSync(join(b, MODEL_FILE));
  oneLineError(
    b,
    new RegExp(
      `cannot read ${join(b, MODEL_FILE).replace(/[.\\]/g, "\\$&")}: it is a directory, not a model description`,
    ),
  );
  rmSync(join(b, MODEL_FILE), { recursive: true });
  writeFileSync(join(b, MODEL_FILE), "");
  truncateSync(join(b, MODEL_FILE), 64 * 1024 * 1024); // sparse: nothing is written
  oneLineError(b, /model\.json: 67108864 bytes is larger than the \d+-byte limit for a model description/);
  const c = tmp();
  saveModel(c, spec, p);
  writeFileSync(join(c, WEIGHTS_FILE), craft({ "layers.0.weight": f32([2, 3], 0, 24) }, 24));
  oneLineError(c, /weights\.safetensors: missing tensor "layers\.0\.bias"/);
  writeFileSync(join(c, WEIGHTS_FILE), craft({ "layers.0.weight": f32([2, 3], -8, 16) }, 24));
  oneLineError(
    c,
    /weights\.safetensors: not a valid safetensors file \(tensor "layers\.0\.weight" has data_offsets \[-8,16\]/,
  );
  if (process.platform !== "win32") {
    const d = tmp();
    saveModel(d, spec, p);
    rmSync(join(d, WEIGHTS_FILE));
    symlinkSync("/dev/zero", join(d, WEIGHTS_FILE));
    oneLineError(d, /weights\.safetensors: not a regular file/);
  }
});
