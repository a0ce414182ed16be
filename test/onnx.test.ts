/**
 * ONNX import, first half: decoding (against torch 1.13 exports in test/fixtures/onnx, made by
 * scripts/make_onnx_test_files.py, whose JSON sidecars hold the state_dict's names, shapes and value checksums),
 * folding of the view(x.size(0), -1) shape arithmetic, the support check, hand-built edge cases (typed data fields,
 * external data, old-style attributes), and fuzzing of the decoder with a fixed seed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import onnxProto from "onnx-proto";
import type { onnx as P } from "onnx-proto";
import {
  BATCH,
  checkSupported,
  decodeOnnx,
  foldShapes,
  inferShapes,
  unsupportedProblems,
  type OnnxModel,
  type OnnxTensor,
} from "../src/models/onnx/index.js";
import { UserError } from "../src/util/errors.js";

const { onnx } = onnxProto;
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "test", "fixtures", "onnx");

interface Checksum {
  sum: number;
  wsum: number;
  head: number[];
  count: number;
}
interface Sidecar {
  name: string;
  opset: number;
  training: string;
  dynamicBatch: boolean;
  keepInitializersAsInputs: boolean;
  inputShape: number[];
  stateDict: ({ name: string; shape: number[]; dtype: string } & Checksum)[];
  example: { input: number[]; output: number[]; outputShape: number[] };
  fusedConv?: { weight: { shape: number[] } & Checksum; bias: { shape: number[] } & Checksum };
}

function fixture(name: string): { bytes: Uint8Array; file: string; side: Sidecar; model: OnnxModel } {
  const file = join(FIXTURES, `${name}.onnx`);
  const bytes = new Uint8Array(readFileSync(file));
  const side = JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), "utf8")) as Sidecar;
  return { bytes, file, side, model: decodeOnnx(bytes, file) };
}

function checksumOf(t: OnnxTensor): Checksum {
  const v = Array.from(t.data, Number);
  return {
    sum: v.reduce((a, b) => a + b, 0),
    wsum: v.reduce((a, b, i) => a + b * ((i % 7) + 1), 0),
    head: v.slice(0, 4),
    count: v.length,
  };
}

function assertChecksum(t: OnnxTensor, want: Checksum, what: string): void {
  const got = checksumOf(t);
  assert.equal(got.count, want.count, `${what}: count`);
  const tol = 1e-5 * (1 + want.count);
  assert.ok(Math.abs(got.sum - want.sum) < tol, `${what}: sum ${got.sum} vs ${want.sum}`);
  assert.ok(Math.abs(got.wsum - want.wsum) < 7 * tol, `${what}: wsum ${got.wsum} vs ${want.wsum}`);
  // float32 values widened to float64 on both sides: exact.
  assert.deepEqual(got.head, want.head, `${what}: first values`);
}

/** The state_dict entries torch writes as initializers (num_batches_tracked is not used by inference graphs). */
function exportedParams(side: Sidecar): Sidecar["stateDict"] {
  return side.stateDict.filter((e) => !e.name.endsWith("num_batches_tracked"));
}

const ops = (m: OnnxModel): string[] => m.graph.nodes.map((n) => n.opType);

function userError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof UserError, `expected a UserError, got ${e instanceof Error ? e.stack : String(e)}`);
    assert.ok(!/[\n\r\u2028\u2029]/.test(e.message), `one line: ${JSON.stringify(e.message)}`);
    return e.message;
  }
  assert.fail("expected a UserError");
}

test("MLP export: initializers match the state_dict, ops, inputs/outputs", () => {
  const { model, side, file } = fixture("mlp");
  assert.equal(model.opsetVersion, 13);
  assert.equal(model.producer, "pytorch 1.13.0");
  assert.equal(model.file, file);
  assert.deepEqual(model.graph.inputs, [{ name: "input", shape: ["batch", 4], elemType: "float32" }]);
  assert.deepEqual(model.graph.outputs, [{ name: "output", shape: ["batch", 3], elemType: "float32" }]);
  assert.deepEqual(
    [...model.graph.initializers.keys()].sort(),
    exportedParams(side)
      .map((e) => e.name)
      .sort(),
  );
  for (const e of exportedParams(side)) {
    const t = model.graph.initializers.get(e.name)!;
    assert.equal(t.dtype, "float32");
    assert.ok(t.data instanceof Float32Array);
    assert.deepEqual(t.dims, e.shape, e.name);
    assertChecksum(t, e, e.name);
  }
  assert.deepEqual(ops(model), ["Gemm", "Relu", "Gemm"]);
  const gemm = model.graph.nodes[0];
  assert.deepEqual(gemm.inputs, ["input", "fc1.weight", "fc1.bias"]);
  assert.equal(gemm.attributes.transB, 1);
  assert.equal(gemm.attributes.alpha, 1);
  assert.equal(gemm.domain, "");
  // Nothing to fold; supported as it is.
  const folded = foldShapes(model, [4]);
  assert.deepEqual(ops(folded), ["Gemm", "Relu", "Gemm"]);
  checkSupported(folded);
  assert.deepEqual(inferShapes(model, [4]).shapes.get("output"), [BATCH, 3]);
});

test("CNN eval export (dynamic batch): Conv+BN fused by torch, view(x.size(0), -1) folds to Reshape [0, -1]", () => {
  const { model, side } = fixture("cnn_eval");
  assert.deepEqual(ops(model), [
    "Conv",
    "Relu",
    "MaxPool",
    "Shape",
    "Constant",
    "Gather",
    "Constant",
    "Unsqueeze",
    "Constant",
    "Concat",
    "Reshape",
    "Gemm",
  ]);
  // fc.* keep their names; the fused conv weight/bias are anonymous initializers (onnx::Conv_NN).
  for (const e of exportedParams(side).filter((e) => e.name.startsWith("fc."))) {
    const t = model.graph.initializers.get(e.name)!;
    assert.deepEqual(t.dims, e.shape);
    assertChecksum(t, e, e.name);
  }
  const conv = model.graph.nodes[0];
  assert.deepEqual(conv.attributes.strides, [2, 2]);
  assert.deepEqual(conv.attributes.pads, [1, 1, 1, 1]);
  assert.deepEqual(conv.attributes.kernel_shape, [3, 3]);
  assertChecksum(model.graph.initializers.get(conv.inputs[1])!, side.fusedConv!.weight, "fused conv weight");
  assertChecksum(model.graph.initializers.get(conv.inputs[2])!, side.fusedConv!.bias, "fused conv bias");
  // The Constant nodes' tensor attributes decode (int64 scalars and vectors).
  const minusOne = model.graph.nodes[8].attributes.value as OnnxTensor;
  assert.deepEqual(minusOne.dims, [1]);
  assert.deepEqual(Array.from(minusOne.data as BigInt64Array), [-1n]);

  const shapes = inferShapes(model, [1, 8, 8]).shapes;
  assert.deepEqual(shapes.get("/conv1/Conv_output_0"), [BATCH, 4, 4, 4]);
  assert.deepEqual(shapes.get("/pool/MaxPool_output_0"), [BATCH, 4, 2, 2]);
  assert.deepEqual(shapes.get("/Reshape_output_0"), [BATCH, 16]);
  assert.deepEqual(shapes.get("output"), [BATCH, 3]);

  const folded = foldShapes(model, [1, 8, 8]);
  assert.deepEqual(ops(folded), ["Conv", "Relu", "MaxPool", "Reshape", "Gemm"]);
  const reshape = folded.graph.nodes[3];
  const target = folded.graph.initializers.get(reshape.inputs[1])!;
  assert.equal(target.dtype, "int64");
  assert.deepEqual(Array.from(target.data as BigInt64Array), [0n, -1n], "batch as 0 (copy from input), then -1");
  // Dead shape constants are gone; the weights stay; the input model is unchanged.
  assert.deepEqual(
    [...folded.graph.initializers.keys()].sort(),
    [conv.inputs[1], conv.inputs[2], "fc.bias", "fc.weight", reshape.inputs[1]].sort(),
  );
  assert.equal(model.graph.nodes.length, 12);
  checkSupported(folded);
  // Unfolded, the shape ops are what is unsupported.
  assert.match(
    userError(() => checkSupported(model)),
    /node "\/Shape" \(Shape, opset 13\): op Shape is not supported \(shape arithmetic/,
  );
});

test("CNN PRESERVE export (fixed batch 2): BatchNormalization kept, torch's [2, -1] target read as [batch, -1]", () => {
  const { model, side } = fixture("cnn_preserve");
  assert.deepEqual(model.graph.inputs[0].shape, [2, 1, 8, 8]);
  assert.deepEqual(
    [...model.graph.initializers.keys()].sort(),
    exportedParams(side)
      .map((e) => e.name)
      .sort(),
  );
  for (const e of exportedParams(side)) assertChecksum(model.graph.initializers.get(e.name)!, e, e.name);
  assert.deepEqual(ops(model), ["Conv", "BatchNormalization", "Relu", "MaxPool", "Constant", "Reshape", "Gemm"]);
  const bn = model.graph.nodes[1];
  assert.deepEqual(bn.inputs.slice(1), ["bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"]);
  assert.ok(Math.abs((bn.attributes.epsilon as number) - 1e-5) < 1e-9);
  const folded = foldShapes(model, [1, 8, 8]);
  assert.deepEqual(ops(folded), ["Conv", "BatchNormalization", "Relu", "MaxPool", "Reshape", "Gemm"]);
  const target = folded.graph.initializers.get(folded.graph.nodes[4].inputs[1])!;
  assert.deepEqual(Array.from(target.data as BigInt64Array), [0n, -1n]);
  assert.deepEqual(inferShapes(model, [1, 8, 8]).shapes.get("output"), [BATCH, 3]);
  checkSupported(folded);
  // The example shape must fit the declared input.
  assert.match(
    userError(() => foldShapes(model, [1, 9, 8])),
    /cnn_preserve\.onnx: input "input" has shape \[2, 1, 8, 8\].*example of shape \[1,9,8\]/,
  );
});

test("GELU + LayerNorm: decomposed at opset 13 (initializers also listed as inputs), LayerNormalization at 17", () => {
  const a = fixture("gelu_ln_opset13");
  const b = fixture("gelu_ln_opset17");
  for (const { model, side } of [a, b]) {
    // keep_initializers_as_inputs: the weights are not model inputs.
    assert.deepEqual(
      model.graph.inputs.map((i) => i.name),
      ["input"],
    );
    assert.deepEqual(
      [...model.graph.initializers.keys()].sort(),
      exportedParams(side)
        .map((e) => e.name)
        .sort(),
    );
    for (const e of exportedParams(side)) assertChecksum(model.graph.initializers.get(e.name)!, e, e.name);
  }
  assert.equal(a.model.opsetVersion, 13);
  assert.equal(b.model.opsetVersion, 17);
  assert.ok(
    ops(a.model).includes("Erf") && ops(a.model).includes("ReduceMean") && !ops(a.model).includes("LayerNormalization"),
  );
  assert.deepEqual(a.model.graph.nodes.find((n) => n.opType === "ReduceMean")!.attributes.axes, [-1]);
  const ln = b.model.graph.nodes.find((n) => n.opType === "LayerNormalization")!;
  assert.equal(ln.attributes.axis, -1);
  assert.deepEqual(ln.inputs.slice(1), ["ln.weight", "ln.bias"]);
  // Constant nodes (sqrt(2), 1, 0.5, eps) become scalar initializers.
  const fa = foldShapes(a.model, [6]);
  assert.ok(!ops(fa).includes("Constant"));
  const sqrt2 = fa.graph.initializers.get("/Constant_output_0")!;
  assert.deepEqual(sqrt2.dims, []);
  assert.ok(Math.abs((sqrt2.data[0] as number) - Math.SQRT2) < 1e-6);
  checkSupported(fa);
  const fb = foldShapes(b.model, [6]);
  assert.deepEqual(ops(fb), ["Gemm", "Div", "Erf", "Add", "Mul", "Mul", "LayerNormalization", "Gemm"]);
  checkSupported(fb);
  assert.deepEqual(inferShapes(b.model, [6]).shapes.get("output"), [BATCH, 2]);
});

test("unsupported op: one-line error naming the file, node, op and opset", () => {
  const { model, file } = fixture("upsample");
  const folded = foldShapes(model, [1, 4, 4]);
  const msg = userError(() => checkSupported(folded));
  assert.equal(msg, `${file}: node "/up/Resize" (Resize, opset 13): op Resize is not supported`);
  assert.equal(unsupportedProblems(folded).length, 1);
});

// ---- hand-built models (onnx-proto's encoder), for what torch does not write ----

type Props = P.IModelProto;
function encode(m: Props): Uint8Array {
  return onnx.ModelProto.encode(onnx.ModelProto.create(m)).finish();
}
const f32 = onnx.TensorProto.DataType.FLOAT;
function vinfo(name: string, dims: (number | string)[], elemType = f32): P.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}
function model(graph: P.IGraphProto, opset = 13): Props {
  return { irVersion: 7, opsetImport: [{ domain: "", version: opset }], producerName: "test", graph };
}

test("typed data fields, raw little-endian data, float16 and small ints decode", () => {
  const T = onnx.TensorProto.DataType;
  const raw = (arr: ArrayBufferView) => new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
  const bytes = encode(
    model({
      input: [vinfo("x", ["N", 2])],
      output: [vinfo("y", ["N", 2])],
      initializer: [
        { name: "f", dims: [2], dataType: T.FLOAT, floatData: [1.5, -2] },
        { name: "d", dims: [1, 2], dataType: T.DOUBLE, doubleData: [0.1, 1e300] },
        { name: "i64", dims: [3], dataType: T.INT64, int64Data: [-1, 2 ** 40, 7] },
        { name: "i32", dims: [2], dataType: T.INT32, int32Data: [-5, 6] },
        { name: "h", dims: [3], dataType: T.FLOAT16, int32Data: [0x3c00, 0xc000, 0x7c00] },
        { name: "u8", dims: [2], dataType: T.UINT8, rawData: Uint8Array.of(255, 1) },
        { name: "b", dims: [2], dataType: T.BOOL, int32Data: [0, 3] },
        { name: "rf", dims: [2], dataType: T.FLOAT, rawData: raw(Float32Array.of(3.25, -0.5)) },
        { name: "rd", dims: [], dataType: T.DOUBLE, rawData: raw(Float64Array.of(Math.PI)) },
        { name: "ri", dims: [2], dataType: T.INT64, rawData: raw(BigInt64Array.of(-(2n ** 62n), 9n)) },
        { name: "rh", dims: [1], dataType: T.FLOAT16, rawData: Uint8Array.of(0x00, 0x38) },
        { name: "empty", dims: [0, 3], dataType: T.FLOAT },
      ],
      node: [{ opType: "Add", input: ["x", "f"], output: ["y"] }],
    }),
  );
  const m = decodeOnnx(bytes, "typed.onnx");
  const get = (n: string) => m.graph.initializers.get(n)!;
  const vals = (n: string): (number | bigint)[] => Array.prototype.slice.call(get(n).data);
  assert.deepEqual(vals("f"), [1.5, -2]);
  assert.deepEqual(get("d"), { dims: [1, 2], dtype: "float64", data: Float64Array.of(0.1, 1e300) });
  assert.deepEqual(vals("i64"), [-1n, 2n ** 40n, 7n]);
  assert.deepEqual(get("i32"), { dims: [2], dtype: "int32", data: Int32Array.of(-5, 6) });
  assert.deepEqual(vals("h"), [1, -2, Infinity]);
  assert.equal(get("h").dtype, "float16");
  assert.deepEqual(vals("u8"), [255, 1]);
  assert.deepEqual(vals("b"), [0, 1]);
  assert.deepEqual(vals("rf"), [3.25, -0.5]);
  assert.deepEqual(get("rd"), { dims: [], dtype: "float64", data: Float64Array.of(Math.PI) });
  assert.deepEqual(vals("ri"), [-(2n ** 62n), 9n]);
  assert.deepEqual(vals("rh"), [0.5]);
  assert.equal(get("empty").data.length, 0);
  assert.deepEqual(m.graph.inputs[0].shape, ["N", 2]);
  assert.equal(m.graph.nodes[0].name, "Add#0");
});

test("decoder errors are one line: external data, bad sizes, undefined inputs, bad bytes", () => {
  const T = onnx.TensorProto.DataType;
  const base = (init: P.ITensorProto[], node: P.INodeProto[] = [{ opType: "Identity", input: ["x"], output: ["y"] }]) =>
    encode(model({ input: [vinfo("x", [1])], output: [vinfo("y", [1])], initializer: init, node }));
  assert.equal(
    userError(() =>
      decodeOnnx(
        base([
          {
            name: "w",
            dims: [2],
            dataType: T.FLOAT,
            dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
            externalData: [{ key: "location", value: "w.bin" }],
          },
        ]),
        "ext.onnx",
      ),
    ),
    'ext.onnx: initializer "w" stores its data outside the file (ONNX external data), which is not supported',
  );
  assert.match(
    userError(() =>
      decodeOnnx(base([{ name: "w", dims: [3], dataType: T.FLOAT, rawData: new Uint8Array(8) }]), "a.onnx"),
    ),
    /^a\.onnx: not a valid ONNX model \(initializer "w" has shape \[3\] \(3 × 4 bytes\) but 8 bytes of raw_data\)$/,
  );
  assert.match(
    userError(() => decodeOnnx(base([{ name: "w", dims: [2], dataType: T.FLOAT, floatData: [1] }]), "a.onnx")),
    /but 1 values/,
  );
  assert.match(
    userError(() => decodeOnnx(base([{ name: "w", dims: [2], dataType: T.STRING }]), "a.onnx")),
    /element type string, which is not supported/,
  );
  assert.match(
    userError(() => decodeOnnx(base([], [{ opType: "Relu", name: "r\nx", input: ["nope"], output: ["y"] }]), "a.onnx")),
    /node "r\\nx" \(Relu\) reads "nope", which no earlier node/,
  );
  assert.match(
    userError(() => decodeOnnx(Uint8Array.of(0x0a, 0xff, 0xff, 0xff, 0x0f), "junk.onnx")),
    /^junk\.onnx: not a valid ONNX model \(/,
  );
  assert.match(
    userError(() => decodeOnnx(new TextEncoder().encode("hello, this is not onnx"), "t.onnx")),
    /^t\.onnx: not a valid ONNX model/,
  );
  assert.match(
    userError(() => decodeOnnx(new Uint8Array(0), "e.onnx")),
    /e\.onnx: not a valid ONNX model \(no graph\)/,
  );
});

test("old-style attributes (no type field) and support problems", () => {
  const bytes = encode(
    model(
      {
        input: [vinfo("x", ["N", 3, 8, 8])],
        output: [vinfo("y", ["N", 3, 3, 3])],
        node: [
          {
            opType: "MaxPool",
            name: "pool",
            input: ["x"],
            output: ["p"],
            attribute: [
              { name: "kernel_shape", ints: [2, 2] },
              { name: "strides", ints: [2, 2] },
              { name: "ceil_mode", i: 1 },
            ],
          },
          {
            opType: "Pad",
            name: "pad",
            input: ["p"],
            output: ["y"],
            attribute: [{ name: "mode", s: new TextEncoder().encode("reflect") }],
          },
        ],
      },
      11,
    ),
  );
  const m = decodeOnnx(bytes, "old.onnx");
  assert.deepEqual({ ...m.graph.nodes[0].attributes }, { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 });
  assert.equal(m.graph.nodes[1].attributes.mode, "reflect");
  assert.deepEqual(inferShapes(m, [3, 8, 8]).shapes.get("p"), [BATCH, 3, 4, 4]);
  const problems = unsupportedProblems(m);
  assert.deepEqual(problems, [
    'old.onnx: node "pool" (MaxPool, opset 11): ceil_mode=1 is not supported (only 0)',
    'old.onnx: node "pad" (Pad, opset 11): mode="reflect" is not supported (only "constant")',
  ]);
  assert.equal(
    userError(() => checkSupported(m)),
    problems[0] + " (and 1 more problem)",
  );
  const m10 = decodeOnnx(encode(model({ input: [vinfo("x", [1])], output: [vinfo("x", [1])] }, 10)), "o10.onnx");
  assert.match(
    userError(() => checkSupported(m10)),
    /^o10\.onnx: opset 10 of the default ONNX domain is not supported/,
  );
});

test("folding: Slice/Squeeze/Cast/arithmetic on shapes, view(x.size(0), x.size(1) * 4), unknown batch stays unfolded", () => {
  const T = onnx.TensorProto.DataType;
  const i64 = (name: string, v: number[], dims = [v.length]): P.ITensorProto => ({
    name,
    dims,
    dataType: T.INT64,
    int64Data: v,
  });
  const bytes = encode(
    model({
      input: [vinfo("x", ["N", 2, 2, 2])],
      output: [vinfo("y", ["N", 8])],
      initializer: [
        i64("zero", [0], []),
        i64("one", [1], []),
        i64("four", [4], []),
        i64("s", [1]),
        i64("e", [2]),
        i64("ax", [0]),
      ],
      node: [
        { opType: "Shape", input: ["x"], output: ["sh"] },
        { opType: "Gather", input: ["sh", "zero"], output: ["n"] },
        { opType: "Slice", input: ["sh", "s", "e", "ax"], output: ["c1"] },
        { opType: "Squeeze", input: ["c1", "ax"], output: ["c"] },
        {
          opType: "Cast",
          input: ["c"],
          output: ["cf"],
          attribute: [{ name: "to", i: T.INT64, type: onnx.AttributeProto.AttributeType.INT }],
        },
        { opType: "Mul", input: ["cf", "four"], output: ["feat"] },
        { opType: "Unsqueeze", input: ["n", "ax"], output: ["n1"] },
        { opType: "Unsqueeze", input: ["feat", "ax"], output: ["f1"] },
        {
          opType: "Concat",
          input: ["n1", "f1"],
          output: ["target"],
          attribute: [{ name: "axis", i: 0, type: onnx.AttributeProto.AttributeType.INT }],
        },
        { opType: "Reshape", input: ["x", "target"], output: ["y"] },
      ],
    }),
  );
  const m = decodeOnnx(bytes, "view.onnx");
  const folded = foldShapes(m, [2, 2, 2]);
  assert.deepEqual(ops(folded), ["Reshape"]);
  assert.deepEqual(Array.from(folded.graph.initializers.get(folded.graph.nodes[0].inputs[1])!.data as BigInt64Array), [
    0n,
    8n,
  ]);
  assert.deepEqual([...folded.graph.initializers.keys()], [folded.graph.nodes[0].inputs[1]]);
  assert.deepEqual(inferShapes(m, [2, 2, 2]).shapes.get("y"), [BATCH, 8]);
  checkSupported(folded);

  // A target that mixes the batch into a product cannot be written statically: left for checkSupported to report.
  const bad = encode(
    model({
      input: [vinfo("x", ["N", 4])],
      output: [vinfo("y", [8])],
      initializer: [i64("zero", [0], []), i64("two", [2], []), i64("ax", [0])],
      node: [
        { opType: "Shape", input: ["x"], output: ["sh"] },
        { opType: "Gather", name: "g", input: ["sh", "zero"], output: ["n"] },
        { opType: "Mul", name: "m", input: ["n", "two"], output: ["n2"] },
        { opType: "Unsqueeze", input: ["n2", "ax"], output: ["t"] },
        { opType: "Reshape", input: ["x", "t"], output: ["y"] },
      ],
    }),
  );
  const fb = foldShapes(decodeOnnx(bad, "bad.onnx"), [4]);
  assert.deepEqual(ops(fb), ["Shape", "Gather", "Mul", "Unsqueeze", "Reshape"]);
  assert.match(
    userError(() => checkSupported(fb)),
    /bad\.onnx: node "Shape#0" \(Shape, opset 13\): op Shape is not supported/,
  );
});

// ---- fuzzing ----

test("fuzz: byte flips and truncations of an export give an OnnxModel or a one-line UserError", () => {
  const { bytes } = fixture("cnn_eval");
  const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : 20260605;
  const mutation = fc.oneof(
    fc.record({
      kind: fc.constant("flip" as const),
      edits: fc.array(fc.record({ at: fc.nat(bytes.length - 1), value: fc.integer({ min: 0, max: 255 }) }), {
        minLength: 1,
        maxLength: 8,
      }),
    }),
    fc.record({ kind: fc.constant("truncate" as const), at: fc.nat(bytes.length) }),
    fc.record({
      kind: fc.constant("bits" as const),
      bits: fc.array(fc.nat(bytes.length * 8 - 1), { minLength: 1, maxLength: 4 }),
    }),
  );
  let ok = 0;
  let errors = 0;
  const details = fc.check(
    fc.property(mutation, (mu) => {
      let b: Uint8Array;
      if (mu.kind === "truncate") b = bytes.slice(0, mu.at);
      else {
        b = bytes.slice();
        if (mu.kind === "flip") for (const e of mu.edits) b[e.at] = e.value;
        else for (const bit of mu.bits) b[bit >> 3] ^= 1 << (bit & 7);
      }
      const start = performance.now();
      try {
        const m = decodeOnnx(b, "fuzz.onnx");
        // A decoded model must also survive folding and the support check without anything but UserErrors.
        try {
          checkSupported(foldShapes(m, [1, 8, 8]));
        } catch (e) {
          if (!(e instanceof UserError)) throw e;
          if (/[\n\r]/.test(e.message)) throw new Error(`several lines: ${JSON.stringify(e.message)}`, { cause: e });
        }
        ok++;
      } catch (e) {
        if (!(e instanceof UserError))
          throw new Error(`not a UserError: ${e instanceof Error ? e.stack : String(e)}`, { cause: e });
        if (/[\n\r\u2028\u2029]/.test(e.message))
          throw new Error(`several lines: ${JSON.stringify(e.message)}`, { cause: e });
        if (!e.message.startsWith("fuzz.onnx: ")) throw new Error(`does not name the file: ${e.message}`, { cause: e });
        errors++;
      }
      const ms = performance.now() - start;
      if (ms > 1000) throw new Error(`one input took ${ms.toFixed(0)} ms (a hang?)`);
    }),
    { seed: SEED, numRuns: 1500, plugins: [fc.interruptAfterTimeLimit(5000)] },
  );
  if (details.failed) {
    assert.fail(
      `seed ${details.seed}, path ${details.counterexamplePath}: ${fc.stringify(details.counterexample)}\n${String(details.errorInstance)}`,
    );
  }
  assert.ok(ok > 0 && errors > 0, `both outcomes seen (${ok} decoded, ${errors} errors)`);
  assert.ok(details.numRuns >= 300, `only ${details.numRuns} runs`);
});

test("fuzz: random bytes never throw anything but a one-line UserError", () => {
  const details = fc.check(
    fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
      try {
        decodeOnnx(b, "r.onnx");
      } catch (e) {
        if (!(e instanceof UserError) || /[\n\r]/.test(e.message)) throw e;
      }
    }),
    { seed: 7, numRuns: 2000, plugins: [fc.interruptAfterTimeLimit(3000)] },
  );
  assert.ok(!details.failed, `${fc.stringify(details.counterexample)}: ${String(details.errorInstance)}`);
});
