/**
 * Reads an ONNX file (a protobuf ModelProto) into the plain OnnxModel of types.ts.
 *
 * The wire format is decoded by onnx-proto (the ONNX schema compiled to static protobufjs code; see
 * docs/decisions/0005-onnx-decoding.md); this module turns its messages into plain objects and validates them:
 * tensor data (raw_data little-endian or the typed fields) has exactly product(dims) elements, names are unique,
 * every node input is defined by an earlier node, an initializer or a graph input (so the node list is in
 * topological order), and every graph output is defined. Anything wrong, and anything unsupported (external data,
 * sparse initializers, an element type without a decoder here), is a one-line UserError naming the file.
 */
import onnxProto from "onnx-proto";
import type { onnx as P } from "onnx-proto";
import { UserError, isUserError } from "../../util/errors.js";
import { oneLine } from "../../util/files.js";
import { halfToFloat } from "../../util/float16.js";
import { numel, quote } from "./types.js";
import type { OnnxAttribute, OnnxDim, OnnxDType, OnnxModel, OnnxNode, OnnxTensor, OnnxValueInfo } from "./types.js";

const { onnx } = onnxProto;

/** A protobufjs int64: a number, or a Long (low/high 32-bit halves) when the `long` package is loaded. */
type Int64 = number | { low: number; high: number; unsigned?: boolean };

/** TensorProto.DataType values → [dtype, bytes per element in raw_data]. */
const DTYPES: ReadonlyMap<number, readonly [OnnxDType, number]> = new Map([
  [1, ["float32", 4]],
  [2, ["uint8", 1]],
  [3, ["int8", 1]],
  [4, ["uint16", 2]],
  [5, ["int16", 2]],
  [6, ["int32", 4]],
  [7, ["int64", 8]],
  [9, ["bool", 1]],
  [10, ["float16", 2]],
  [11, ["float64", 8]],
] as const);

/** Names of the other ONNX element types, for messages. */
const OTHER_TYPES: ReadonlyMap<number, string> = new Map([
  [0, "undefined"],
  [8, "string"],
  [12, "uint32"],
  [13, "uint64"],
  [14, "complex64"],
  [15, "complex128"],
  [16, "bfloat16"],
  [17, "float8e4m3fn"],
  [18, "float8e4m3fnuz"],
  [19, "float8e5m2"],
  [20, "float8e5m2fnuz"],
  [21, "uint4"],
  [22, "int4"],
]);

export function elemTypeName(t: number): string {
  return DTYPES.get(t)?.[0] ?? OTHER_TYPES.get(t) ?? `type ${t}`;
}

/** Elements allowed in one tensor (keeps a corrupt dims field from asking for absurd allocations). */
const MAX_ELEMENTS = 2 ** 31 - 1;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Decodes an ONNX model file's bytes. `file` names the file in error messages. */
export function decodeOnnx(bytes: Uint8Array, file: string): OnnxModel {
  let proto: ReturnType<typeof onnx.ModelProto.decode>;
  try {
    proto = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new UserError(`${file}: not a valid ONNX model (${reason(e)})`);
  }
  try {
    return convertModel(proto, file);
  } catch (e) {
    if (isUserError(e)) throw e;
    // A message whose fields do not fit together in a way not checked above: still the file's fault.
    throw new UserError(`${file}: not a valid ONNX model (${reason(e)})`);
  }
}

function reason(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return oneLine(msg.length > 200 ? msg.slice(0, 200) + "…" : msg);
}

/** Thrown inside the converter; decodeOnnx prefixes the file. */
function invalid(file: string, what: string): UserError {
  return new UserError(`${file}: not a valid ONNX model (${what})`);
}

function int(v: Int64 | null | undefined, file: string, what: string): number {
  if (v == null) return 0;
  if (typeof v === "number") return v;
  const n = v.high * 2 ** 32 + (v.low >>> 0);
  if (v.unsigned) return (v.high >>> 0) * 2 ** 32 + (v.low >>> 0);
  if (!Number.isFinite(n)) throw invalid(file, `${what} is not a number`);
  return n;
}

function bigint(v: Int64): bigint {
  if (typeof v === "number") return BigInt(Math.trunc(v));
  return BigInt.asIntN(64, (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0));
}

const utf8 = new TextDecoder("utf-8");

function convertModel(m: P.ModelProto, file: string): OnnxModel {
  const opsets = Object.create(null) as Record<string, number>;
  for (const o of m.opsetImport ?? []) {
    const domain = o.domain === "ai.onnx" ? "" : (o.domain ?? "");
    opsets[domain] = int(o.version as Int64, file, "an opset version");
  }
  const irVersion = int(m.irVersion as Int64, file, "ir_version");
  if (!m.graph) throw invalid(file, "no graph");
  if (!("" in opsets)) {
    // IR version 1 and 2 files predate opset_import and mean opset 1; no exporter of interest writes those.
    throw invalid(file, "no opset_import for the default ONNX domain");
  }
  const g = m.graph;
  if (g.sparseInitializer?.length) {
    throw new UserError(`${file}: sparse initializers are not supported`);
  }

  const initializers = new Map<string, OnnxTensor>();
  for (const t of g.initializer ?? []) {
    const name = t.name ?? "";
    if (name === "") throw invalid(file, "an initializer has no name");
    if (initializers.has(name)) throw invalid(file, `initializer ${quote(name)} is defined twice`);
    initializers.set(name, convertTensor(t, file, `initializer ${quote(name)}`));
  }

  const defined = new Set<string>(initializers.keys());
  const inputs: OnnxValueInfo[] = [];
  const seenInputs = new Set<string>();
  for (const vi of g.input ?? []) {
    const info = convertValueInfo(vi, file, "graph input");
    if (seenInputs.has(info.name)) throw invalid(file, `graph input ${quote(info.name)} is listed twice`);
    seenInputs.add(info.name);
    // Older exports (keep_initializers_as_inputs) list every weight as a graph input too: those are not inputs.
    if (initializers.has(info.name)) continue;
    inputs.push(info);
    defined.add(info.name);
  }

  const nodes: OnnxNode[] = [];
  (g.node ?? []).forEach((n, index) => {
    const opType = n.opType ?? "";
    if (opType === "") throw invalid(file, `node #${index} has no op_type`);
    const name = n.name ? n.name : `${opType}#${index}`;
    const op = quote(opType.length > 60 ? opType.slice(0, 60) + "…" : opType).slice(1, -1);
    const domain = n.domain === "ai.onnx" ? "" : (n.domain ?? "");
    const nodeInputs = [...(n.input ?? [])];
    for (const i of nodeInputs) {
      if (i !== "" && !defined.has(i)) {
        throw invalid(
          file,
          `node ${quote(name)} (${op}) reads ${quote(i)}, which no earlier node, initializer or input defines`,
        );
      }
    }
    const nodeOutputs = [...(n.output ?? [])];
    for (const o of nodeOutputs) {
      if (o === "") continue;
      if (defined.has(o)) throw invalid(file, `node ${quote(name)} (${op}) redefines ${quote(o)}`);
      defined.add(o);
    }
    const attributes = Object.create(null) as Record<string, OnnxAttribute>;
    for (const a of n.attribute ?? []) {
      const aname = a.name ?? "";
      if (aname === "") throw invalid(file, `node ${quote(name)} (${op}) has an attribute without a name`);
      if (aname in attributes) throw invalid(file, `node ${quote(name)} (${op}) has attribute ${quote(aname)} twice`);
      const v = convertAttribute(a, file, `attribute ${quote(aname)} of node ${quote(name)}`);
      if (v !== undefined) attributes[aname] = v;
    }
    nodes.push({ name, opType, domain, inputs: nodeInputs, outputs: nodeOutputs, attributes });
  });

  const outputs: OnnxValueInfo[] = [];
  for (const vi of g.output ?? []) {
    const info = convertValueInfo(vi, file, "graph output");
    if (!defined.has(info.name)) throw invalid(file, `graph output ${quote(info.name)} is not computed by the graph`);
    outputs.push(info);
  }
  if (outputs.length === 0) throw invalid(file, "the graph has no outputs");

  const producer = [m.producerName, m.producerVersion].filter((s) => s).join(" ");
  return {
    file,
    irVersion,
    opsetVersion: opsets[""],
    opsets: { ...opsets },
    producer,
    graph: { inputs, outputs, initializers, nodes },
  };
}

function convertValueInfo(vi: P.IValueInfoProto, file: string, what: string): OnnxValueInfo {
  const name = vi.name ?? "";
  if (name === "") throw invalid(file, `a ${what} has no name`);
  const tt = vi.type?.tensorType;
  if (!tt) {
    const kind = vi.type?.sequenceType
      ? "sequence"
      : vi.type?.mapType
        ? "map"
        : vi.type?.optionalType
          ? "optional"
          : "unknown";
    return { name, shape: null, elemType: kind };
  }
  let shape: OnnxDim[] | null = null;
  if (tt.shape) {
    shape = (tt.shape.dim ?? []).map((d) => {
      if (d.dimParam) return d.dimParam;
      // `value` is protobufjs's oneof discriminator: which of dimValue/dimParam the file set.
      if ((d as { value?: string }).value === "dimValue") {
        const n = int(d.dimValue as Int64, file, `a dimension of ${what} ${quote(name)}`);
        if (!Number.isSafeInteger(n) || n < 0) throw invalid(file, `${what} ${quote(name)} has dimension ${n}`);
        return n;
      }
      return null;
    });
  }
  return { name, shape, elemType: elemTypeName(tt.elemType ?? 0) };
}

function convertAttribute(a: P.IAttributeProto, file: string, what: string): OnnxAttribute | undefined {
  const T = onnx.AttributeProto.AttributeType;
  let type = a.type ?? T.UNDEFINED;
  if (type === T.UNDEFINED) {
    // Very old files leave `type` unset: infer it from the field that is filled in.
    if (a.ints?.length) type = T.INTS;
    else if (a.floats?.length) type = T.FLOATS;
    else if (a.strings?.length) type = T.STRINGS;
    else if (a.t) type = T.TENSOR;
    else if (a.g || a.graphs?.length) type = T.GRAPH;
    else if (a.s?.length) type = T.STRING;
    else if (a.f) type = T.FLOAT;
    else type = T.INT;
  }
  switch (type) {
    case T.FLOAT:
      return a.f ?? 0;
    case T.INT:
      return int(a.i as Int64, file, what);
    case T.STRING:
      return utf8.decode(a.s ?? new Uint8Array());
    case T.TENSOR:
      if (!a.t) throw invalid(file, `${what} is a tensor attribute without a tensor`);
      return convertTensor(a.t, file, what);
    case T.FLOATS:
      return [...(a.floats ?? [])];
    case T.INTS:
      return (a.ints ?? []).map((v) => int(v as Int64, file, what));
    case T.STRINGS:
      return (a.strings ?? []).map((s) => utf8.decode(s));
    default:
      // Graphs (If/Loop/Scan bodies), sparse tensors, type protos, tensor lists: no op we convert takes them.
      return undefined;
  }
}

function convertTensor(t: P.ITensorProto, file: string, what: string): OnnxTensor {
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL || (t.externalData?.length ?? 0) > 0) {
    throw new UserError(
      `${file}: ${what} stores its data outside the file (ONNX external data), which is not supported`,
    );
  }
  if (t.segment) throw new UserError(`${file}: ${what} is a segmented tensor, which is not supported`);
  const dims = (t.dims ?? []).map((d) => int(d as Int64, file, `a dimension of ${what}`));
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw invalid(file, `${what} has dimension ${d}`);
  }
  const count = numel(dims);
  if (count > MAX_ELEMENTS) throw invalid(file, `${what} has ${count} elements`);
  const code = t.dataType ?? 0;
  const entry = DTYPES.get(code);
  if (!entry) throw new UserError(`${file}: ${what} has element type ${elemTypeName(code)}, which is not supported`);
  const [dtype, width] = entry;
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : null;

  if (raw) {
    if (raw.length !== count * width) {
      throw invalid(
        file,
        `${what} has shape [${dims}] (${count} × ${width} bytes) but ${raw.length} bytes of raw_data`,
      );
    }
    return { dims, dtype, data: fromRaw(raw, dtype, count) };
  }

  // The typed fields: which one holds the data depends on the element type (onnx.proto's TensorProto comments).
  const field: { length: number } | null | undefined =
    dtype === "float32"
      ? t.floatData
      : dtype === "float64"
        ? t.doubleData
        : dtype === "int64"
          ? t.int64Data
          : t.int32Data;
  const n = field?.length ?? 0;
  if (n !== count) throw invalid(file, `${what} has shape [${dims}] (${count} elements) but ${n} values`);
  switch (dtype) {
    case "float32":
      return { dims, dtype, data: Float32Array.from(t.floatData ?? []) };
    case "float64":
      return { dims, dtype, data: Float64Array.from(t.doubleData ?? []) };
    case "int64": {
      const out = new BigInt64Array(count);
      (t.int64Data ?? []).forEach((v, i) => (out[i] = bigint(v as Int64)));
      return { dims, dtype, data: out };
    }
    case "float16": {
      // int32_data holds the 16-bit patterns.
      const out = new Float32Array(count);
      (t.int32Data ?? []).forEach((v, i) => (out[i] = halfToFloat(v & 0xffff)));
      return { dims, dtype, data: out };
    }
    default: {
      const out = Int32Array.from(t.int32Data ?? []);
      return { dims, dtype, data: narrow(out, dtype) };
    }
  }
}

/** Wraps int32_data values to the element type's range (the field is wider than the type). */
function narrow(a: Int32Array, dtype: OnnxDType): Int32Array {
  const f =
    dtype === "int8"
      ? (v: number) => (v << 24) >> 24
      : dtype === "uint8"
        ? (v: number) => v & 0xff
        : dtype === "int16"
          ? (v: number) => (v << 16) >> 16
          : dtype === "uint16"
            ? (v: number) => v & 0xffff
            : dtype === "bool"
              ? (v: number) => (v !== 0 ? 1 : 0)
              : null;
  if (f) for (let i = 0; i < a.length; i++) a[i] = f(a[i]);
  return a;
}

function fromRaw(raw: Uint8Array, dtype: OnnxDType, count: number): OnnxTensor["data"] {
  // Copy into fresh, aligned storage (raw_data is a view into the file at any offset).
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  switch (dtype) {
    case "float32": {
      const out = new Float32Array(count);
      if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(raw);
      else for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
      return out;
    }
    case "float64": {
      const out = new Float64Array(count);
      if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(raw);
      else for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, true);
      return out;
    }
    case "int64": {
      const out = new BigInt64Array(count);
      if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(raw);
      else for (let i = 0; i < count; i++) out[i] = view.getBigInt64(8 * i, true);
      return out;
    }
    case "int32": {
      const out = new Int32Array(count);
      if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(raw);
      else for (let i = 0; i < count; i++) out[i] = view.getInt32(4 * i, true);
      return out;
    }
    case "float16": {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
      return out;
    }
    case "int16":
    case "uint16": {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++)
        out[i] = dtype === "int16" ? view.getInt16(2 * i, true) : view.getUint16(2 * i, true);
      return out;
    }
    case "int8":
    case "uint8":
    case "bool": {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        const b = raw[i];
        out[i] = dtype === "int8" ? (b << 24) >> 24 : dtype === "bool" ? (b !== 0 ? 1 : 0) : b;
      }
      return out;
    }
  }
}

export { halfToFloat };
