/**
 * Property (fuzz) tests of everything that reads user files: the safetensors reader, model.json and training configs.
 * The property is always the same: a malformed input ends in a UserError whose message is one line (what the CLI
 * prints after "gcx: error:"), never in another exception or a hang; and a successful parse is self-consistent,
 * checked against an independent model of the format's rules (so a check removed from the reader makes these fail).
 *
 * Runs are deterministic (fixed seeds); set FUZZ_SEED to explore other seeds and FUZZ_SCALE (e.g. 10) for more runs.
 * A failure reports the seed, the shrunk counterexample and the error.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { decodeSafetensors, encodeSafetensors, type StoredTensor } from "../src/models/safetensors.js";
import { parseModelSpec, type ModelSpec } from "../src/models/spec.js";
import { loadModel, MODEL_FILE, saveModel, WEIGHTS_FILE } from "../src/models/io.js";
import { compileNetwork } from "../src/models/network.js";
import { initParams } from "../src/models/init.js";
import { parseTrainConfig, trainConfigSchema } from "../src/training/config.js";
import { UserError } from "../src/util/errors.js";

const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : 20260601;
const SCALE = process.env.FUZZ_SCALE ? Number(process.env.FUZZ_SCALE) : 1;
/** Wall-clock budget of one property; the whole file stays well under 15 s on a 2-core machine. */
const TIME_LIMIT_MS = 2500 * SCALE;
/** A single input taking this long means super-linear work on a small input: treated as a hang. */
const SLOW_MS = 1500;

/** Runs a property with a fixed seed and a time limit; on failure, fails with the seed and counterexample. */
function check<T>(
  t: TestContext,
  name: string,
  arb: fc.Arbitrary<T>,
  predicate: (v: T) => void,
  numRuns: number,
): void {
  const details = fc.check(
    fc.property(arb, (v) => {
      const start = performance.now();
      predicate(v);
      const ms = performance.now() - start;
      if (ms > SLOW_MS) throw new Error(`one input took ${ms.toFixed(0)} ms (a hang?)`);
    }),
    { seed: SEED, numRuns: numRuns * SCALE, plugins: [fc.interruptAfterTimeLimit(TIME_LIMIT_MS)] },
  );
  t.diagnostic(
    `${name}: ${details.numRuns} runs, seed ${SEED}${details.interrupted ? " (interrupted by the time limit)" : ""}`,
  );
  if (details.failed) {
    assert.fail(
      `${name}: property failed with seed ${details.seed} (rerun with FUZZ_SEED=${details.seed}), path ${details.counterexamplePath}\n` +
        `counterexample: ${fc.stringify(details.counterexample)}\n${details.errorInstance instanceof Error ? details.errorInstance.stack : String(details.errorInstance)}`,
    );
  }
  // A property that runs almost nothing proves nothing.
  assert.ok(details.numRuns >= Math.min(50, numRuns), `${name}: only ${details.numRuns} runs in ${TIME_LIMIT_MS} ms`);
}

/** Calls fn; a UserError must be one line (starting with `prefix`), anything else thrown is a bug. */
function userErrorOrResult<R>(fn: () => R, prefix: string): { ok: true; value: R } | { ok: false; message: string } {
  try {
    return { ok: true, value: fn() };
  } catch (e) {
    if (!(e instanceof UserError))
      throw new Error(`not a UserError: ${e instanceof Error ? e.stack : String(e)}`, { cause: e });
    if (e.message.includes("\n") || e.message.includes("\r"))
      throw new Error(`UserError on several lines: ${JSON.stringify(e.message)}`, { cause: e });
    if (!e.message.startsWith(prefix))
      throw new Error(`UserError not naming ${prefix}: ${JSON.stringify(e.message)}`, { cause: e });
    return { ok: false, message: e.message };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// safetensors

const WIDTH: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4 };
const FILE = "/fuzz/w.safetensors";

/**
 * The format's rules, written independently of the reader: what a successfully decoded file must satisfy.
 * Returns the problem, or null.
 */
function violation(bytes: Uint8Array, out: Record<string, StoredTensor>): string | null {
  if (bytes.length < 8) return "file under 8 bytes";
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  if (n > 100_000_000 || 8 + n > bytes.length) return "header length";
  const text = Buffer.from(bytes.subarray(8, 8 + n)).toString("utf8");
  if (Buffer.compare(Buffer.from(text, "utf8"), Buffer.from(bytes.subarray(8, 8 + n))) !== 0) return "header not UTF-8";
  if (!text.startsWith("{")) return "header start";
  const header = JSON.parse(text) as Record<string, unknown>;
  if (typeof header !== "object" || header === null || Array.isArray(header)) return "header not an object";
  const meta = header.__metadata__;
  if (
    meta !== undefined &&
    meta !== null &&
    (typeof meta !== "object" || Array.isArray(meta) || Object.values(meta).some((v) => typeof v !== "string"))
  )
    return "metadata";
  const spans: [number, number][] = [];
  const names = Object.keys(header).filter((k) => k !== "__metadata__");
  if (Object.keys(out).sort().join("\0") !== names.sort().join("\0")) return "decoded names differ from the header's";
  const dataStart = 8 + n;
  for (const name of names) {
    const e = header[name] as { dtype: string; shape: number[]; data_offsets: number[] };
    if (typeof e !== "object" || e === null || !Object.hasOwn(WIDTH, e.dtype)) return `${name}: entry/dtype`;
    if (!Array.isArray(e.shape) || e.shape.some((d) => !Number.isInteger(d) || d < 0)) return `${name}: shape`;
    const o = e.data_offsets;
    if (!Array.isArray(o) || o.length !== 2 || o.some((d) => !Number.isInteger(d) || d < 0) || o[0] > o[1])
      return `${name}: offsets`;
    const count = e.shape.reduce((a, b) => a * b, 1);
    if (o[1] - o[0] !== count * WIDTH[e.dtype]) return `${name}: length`;
    const t = out[name];
    if (t.shape.join() !== e.shape.join() || t.data.length !== count) return `${name}: decoded shape/length`;
    if (
      !(t.data instanceof (e.dtype === "F64" || e.dtype === "I64" || e.dtype === "I32" ? Float64Array : Float32Array))
    )
      return `${name}: decoded type`;
    // The decoded values are the bytes at the offsets (F32/F64 checked exactly; NaN payloads aside).
    if (e.dtype === "F32" || e.dtype === "F64") {
      const dv = new DataView(bytes.buffer, bytes.byteOffset + dataStart + o[0], o[1] - o[0]);
      for (let i = 0; i < count; i++) {
        const v = e.dtype === "F32" ? dv.getFloat32(4 * i, true) : dv.getFloat64(8 * i, true);
        if (!Object.is(v, t.data[i]) && !(Number.isNaN(v) && Number.isNaN(t.data[i]))) return `${name}: value ${i}`;
      }
    }
    spans.push([o[0], o[1]]);
  }
  spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let at = 0;
  for (const [b, e] of spans) {
    if (b !== at) return `offsets not contiguous at ${at}`;
    at = e;
  }
  if (at !== bytes.length - dataStart) return "tensors do not cover the data exactly";
  return null;
}

function decodeChecked(bytes: Uint8Array): boolean {
  const r = userErrorOrResult(() => decodeSafetensors(bytes, FILE), `${FILE}: `);
  if (!r.ok) return false;
  const problem = violation(bytes, r.value);
  if (problem) throw new Error(`decoded a file that breaks the format's rules: ${problem}`);
  return true;
}

interface TensorDesc {
  name: string;
  dtype: "F32" | "F64" | "F16" | "BF16";
  shape: number[];
}

const tensorName = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom("layers.0.weight", "layers.0.bias", "layers.1.weight", "a", "__proto__", "constructor"),
  },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 6 }).filter((s) => s !== "__metadata__") },
);
const tensorDescs = fc.uniqueArray(
  fc.record({
    name: tensorName,
    dtype: fc.constantFrom<TensorDesc["dtype"]>("F32", "F64", "F16", "BF16"),
    shape: fc.array(fc.nat(4), { maxLength: 3 }),
  }),
  { selector: (t) => t.name, maxLength: 5 },
);

/** A valid file, laid out like the reference writes it (any order of entries, padding, metadata), as header + data. */
const validFile = fc
  .record({
    tensors: tensorDescs,
    order: fc.array(fc.nat(), { minLength: 5, maxLength: 5 }),
    metadata: fc.option(fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 }), { maxKeys: 2 }), {
      nil: undefined,
    }),
    pad: fc.nat(9),
    seedByte: fc.nat(255),
  })
  .map(({ tensors, order, metadata, pad, seedByte }) => {
    // Data laid out in a random order of tensors, the header written in another.
    const laid = tensors
      .map((t, i) => ({ t, k: order[i] }))
      .sort((a, b) => a.k - b.k)
      .map((x) => x.t);
    const header: Record<string, unknown> = {};
    if (metadata) header.__metadata__ = metadata;
    let offset = 0;
    const offsets = new Map<string, [number, number]>();
    for (const t of laid) {
      const bytes = t.shape.reduce((a, b) => a * b, 1) * WIDTH[t.dtype];
      offsets.set(t.name, [offset, offset + bytes]);
      offset += bytes;
    }
    for (const t of tensors)
      setKey(header, t.name, { dtype: t.dtype, shape: t.shape, data_offsets: offsets.get(t.name) });
    const data = Uint8Array.from({ length: offset }, (_, i) => (seedByte + i * 37) & 0xff);
    return { header, data, pad, tensors };
  });

/** obj[key] = value, also for "__proto__" (which plain assignment would take as the prototype). */
function setKey(obj: object, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function assemble(headerText: string, data: Uint8Array, headerLen?: number | bigint): Uint8Array {
  const h = Buffer.from(headerText, "utf8");
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen ?? h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

/** JSON values meant to break a header field: negative, fractional, huge, wrong-typed... */
const nastyNumber = fc.oneof(
  fc.integer({ min: -16, max: 64 }),
  fc.constantFrom(-8, -1, 0.5, 1.5, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 2 ** 64, 1e308, -0),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);
const nastyValue: fc.Arbitrary<unknown> = fc.oneof(
  nastyNumber,
  fc.array(nastyNumber, { maxLength: 4 }),
  fc.constantFrom(null, "F32", "I64", "BOOL", "toString", "", [], {}, true, [null], ["1", "2"], [[0, 4]]),
  fc.jsonValue({ maxDepth: 2 }),
);

test("fuzz: random bytes into the safetensors reader", (t) => {
  const prefixed = fc.tuple(fc.nat(64), fc.uint8Array({ maxLength: 96 })).map(([n, rest]) => {
    const out = new Uint8Array(8 + rest.length);
    new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
    out.set(rest, 8);
    return out;
  });
  const jsonish = fc
    .tuple(fc.json({ maxDepth: 3 }), fc.uint8Array({ maxLength: 24 }))
    .map(([text, data]) => assemble(text, data));
  check(
    t,
    "random bytes",
    fc.oneof(fc.uint8Array({ maxLength: 128 }), prefixed, jsonish),
    (bytes) => void decodeChecked(bytes),
    1500,
  );
});

test("fuzz: valid safetensors files decode, and encodeSafetensors output passes the strict reader", (t) => {
  check(
    t,
    "valid files",
    validFile,
    ({ header, data, pad }) => {
      const bytes = assemble(JSON.stringify(header) + " ".repeat(pad), data);
      if (!decodeChecked(bytes)) throw new Error(`a valid file was rejected: ${decodeSafetensorsMessage(bytes)}`);
    },
    300,
  );
  const stored = fc
    .dictionary(
      tensorName,
      fc.tuple(fc.array(fc.nat(3), { maxLength: 3 }), fc.boolean()).map(([shape, f64]): StoredTensor => {
        const n = shape.reduce((a, b) => a * b, 1);
        const data = f64
          ? Float64Array.from({ length: n }, (_, i) => i / 3 - 1)
          : Float32Array.from({ length: n }, (_, i) => i * 1.5);
        return { shape, data };
      }),
      { maxKeys: 5 },
    )
    .map((d) => Object.fromEntries(Object.entries(d).filter(([k]) => k !== "__metadata__")));
  check(
    t,
    "encoder round trip",
    fc.tuple(stored, fc.option(fc.dictionary(fc.string(), fc.string(), { maxKeys: 3 }), { nil: undefined })),
    ([tensors, meta]) => {
      const bytes = encodeSafetensors(tensors, meta);
      const dec = decodeSafetensors(bytes, FILE);
      const problem = violation(bytes, dec);
      if (problem) throw new Error(problem);
      for (const [name, s] of Object.entries(tensors)) assert.deepEqual(Array.from(dec[name].data), Array.from(s.data));
    },
    200,
  );
});

function decodeSafetensorsMessage(bytes: Uint8Array): string {
  try {
    decodeSafetensors(bytes, FILE);
    return "accepted";
  } catch (e) {
    return (e as Error).message;
  }
}

/** One way to damage a valid file. */
type Mutation =
  | { kind: "flip"; at: number[]; to: number[] }
  | { kind: "truncate"; keep: number }
  | { kind: "append"; bytes: Uint8Array }
  | { kind: "field"; tensor: number; field: "dtype" | "shape" | "data_offsets" | "entry" | "extra"; value: unknown }
  | { kind: "overlap"; tensor: number; other: number; shift: number }
  | { kind: "metadata"; value: unknown }
  | { kind: "duplicate"; tensor: number }
  | { kind: "headerLen"; delta: number }
  | { kind: "lead"; space: string }
  | {
      kind: "tweak";
      tensor: number;
      how: "shapeHalf" | "shapeNeg" | "shapeString" | "shapeNest" | "shapeBool" | "shapeWrong" | "offsetsExtra";
      extra: number;
    };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    kind: fc.constant("flip" as const),
    at: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }),
    to: fc.array(fc.nat(255), { minLength: 4, maxLength: 4 }),
  }),
  fc.record({ kind: fc.constant("truncate" as const), keep: fc.nat() }),
  fc.record({ kind: fc.constant("append" as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({
    kind: fc.constant("field" as const),
    tensor: fc.nat(),
    field: fc.constantFrom("dtype", "shape", "data_offsets", "data_offsets", "entry", "extra") as fc.Arbitrary<"dtype">,
    value: nastyValue,
  }),
  fc.record({
    kind: fc.constant("overlap" as const),
    tensor: fc.nat(),
    other: fc.nat(),
    shift: fc.integer({ min: -8, max: 8 }),
  }),
  fc.record({ kind: fc.constant("metadata" as const), value: nastyValue }),
  fc.record({ kind: fc.constant("duplicate" as const), tensor: fc.nat() }),
  fc.record({ kind: fc.constant("headerLen" as const), delta: fc.integer({ min: -9, max: 9 }) }),
  fc.record({ kind: fc.constant("lead" as const), space: fc.constantFrom(" ", "\n", "\t", "\r\n ", "\ufeff") }),
  // Subtle damage that keeps product(shape) × width equal to the data length, so only the type checks can catch it.
  fc.record({
    kind: fc.constant("tweak" as const),
    tensor: fc.nat(),
    how: fc.constantFrom(
      "shapeHalf",
      "shapeNeg",
      "shapeString",
      "shapeNest",
      "shapeBool",
      "shapeWrong",
      "offsetsExtra",
    ) as fc.Arbitrary<"shapeHalf">,
    extra: fc.nat(64),
  }),
);

/** A shape with the same element count as `shape` but not a list of non-negative integers, or one a little off. */
function tweakShape(shape: number[], how: string, extra: number): unknown[] {
  const n = shape.reduce((a, b) => a * b, 1);
  if (how === "shapeWrong") return [n + 1 + (extra % 3)];
  if (how === "shapeHalf") return [2 * n, 0.5];
  if (how === "shapeNeg") return [-n, -1];
  if (how === "shapeString") return [String(n)];
  if (how === "shapeNest") return [[n]];
  return [n, true];
}

/** The damaged file, and whether it must be rejected whatever else happened to it. */
function mutate(
  file: { header: Record<string, unknown>; data: Uint8Array; pad: number },
  muts: Mutation[],
): { bytes: Uint8Array; mustReject: boolean } {
  const header = structuredClone(file.header) as Record<string, Record<string, unknown>>;
  const names = Object.keys(header).filter((k) => k !== "__metadata__");
  const data = file.data;
  let headerLenDelta = 0;
  let dup: string | null = null;
  let lead = "";
  const byteMuts: Mutation[] = [];
  for (const m of muts) {
    const name = names.length ? names[(m as { tensor?: number }).tensor! % names.length] : undefined;
    switch (m.kind) {
      case "field":
        if (!name) break;
        if (m.field === "entry") setKey(header, name, m.value);
        else if (typeof header[name] === "object" && header[name] !== null)
          header[name][m.field === "extra" ? "offsets" : m.field] = m.value;
        break;
      case "overlap": {
        if (!name || typeof header[name] !== "object" || header[name] === null) break;
        const other = header[names[m.other % names.length]];
        const o = (other?.data_offsets ?? [0, 0]) as number[];
        const mine = header[name].data_offsets as number[];
        if (!Array.isArray(o) || !Array.isArray(mine)) break;
        const len = mine[1] - mine[0];
        header[name].data_offsets = [o[0] + m.shift, o[0] + m.shift + len];
        break;
      }
      case "metadata":
        setKey(header, "__metadata__", m.value);
        break;
      case "duplicate":
        if (name) dup = name;
        break;
      case "headerLen":
        headerLenDelta += m.delta;
        break;
      case "lead":
        lead += m.space;
        break;
      case "tweak": {
        const entry = name === undefined ? undefined : header[name];
        if (!entry || typeof entry !== "object" || !Array.isArray(entry.shape) || !Array.isArray(entry.data_offsets))
          break;
        if (m.how === "offsetsExtra") entry.data_offsets = [...entry.data_offsets, m.extra];
        else entry.shape = tweakShape(entry.shape as number[], m.how, m.extra);
        break;
      }
      default:
        byteMuts.push(m);
    }
  }
  let text = JSON.stringify(header);
  if (dup !== null) text = `{${JSON.stringify(dup)}:${JSON.stringify(header[dup] ?? null)},${text.slice(1)}`;
  text = lead + text + " ".repeat(file.pad);
  let bytes = assemble(text, data, Math.max(0, Buffer.byteLength(text) + headerLenDelta));
  for (const m of byteMuts) {
    if (m.kind === "flip") for (let i = 0; i < m.at.length; i++) bytes[m.at[i] % bytes.length] = m.to[i];
    else if (m.kind === "truncate") bytes = bytes.subarray(0, m.keep % (bytes.length + 1));
    else if (m.kind === "append") {
      const longer = new Uint8Array(bytes.length + m.bytes.length);
      longer.set(bytes);
      longer.set(m.bytes, bytes.length);
      bytes = longer;
    }
  }
  // A duplicated key or a header not starting with "{" is invalid even where JSON.parse would not notice.
  return { bytes, mustReject: byteMuts.length === 0 && (dup !== null || lead !== "") };
}

test("fuzz: mutated safetensors files (flipped bytes, truncation, rewritten header fields, overlaps, duplicates)", (t) => {
  let accepted = 0;
  let rejected = 0;
  check(
    t,
    "mutated files",
    fc.tuple(validFile, fc.array(mutation, { minLength: 1, maxLength: 3 })),
    ([file, muts]) => {
      const { bytes, mustReject } = mutate(file, muts);
      if (decodeChecked(bytes)) {
        if (mustReject) throw new Error("accepted a header with a duplicate key or not starting with {");
        accepted++;
      } else rejected++;
    },
    3000,
  );
  t.diagnostic(`mutated files: ${accepted} still valid, ${rejected} rejected`);
  // Both outcomes must actually occur, or the generator is not testing what it claims.
  assert.ok(accepted > 10 && rejected > 100, `accepted ${accepted}, rejected ${rejected}`);
});

// ---------------------------------------------------------------------------------------------------------------
// model.json

const posInt = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: 1, max: 12 }) },
  { weight: 1, arbitrary: nastyNumber },
);
const cnnLayer = fc.oneof(
  fc.record(
    {
      type: fc.constant("conv"),
      filters: posInt,
      kernel: posInt,
      stride: posInt,
      padding: fc.constantFrom("same", "valid"),
    },
    { requiredKeys: ["type", "filters", "kernel"] },
  ),
  fc.record({ type: fc.constant("dense"), units: posInt }),
  fc.record({ type: fc.constantFrom("relu", "tanh", "identity", "flatten") }),
  fc.record(
    { type: fc.constantFrom("maxpool", "avgpool"), size: posInt, stride: posInt },
    { requiredKeys: ["type", "size"] },
  ),
);
const specLike: fc.Arbitrary<unknown> = fc.oneof(
  fc.record(
    {
      kind: fc.constant("mlp"),
      sizes: fc.array(posInt, { minLength: 1, maxLength: 4 }),
      activation: fc.constantFrom("relu", "tanh", "identity", "gelu"),
    },
    { requiredKeys: ["kind", "sizes"] },
  ),
  fc.record({
    kind: fc.constant("cnn"),
    input: fc.array(posInt, { minLength: 2, maxLength: 4 }),
    layers: fc.array(cnnLayer, { maxLength: 5 }),
  }),
);

/** Random damage to a JSON value: a key added, removed or replaced anywhere in it. */
const jsonEdit = fc.record({
  path: fc.array(fc.nat(), { maxLength: 4 }),
  op: fc.constantFrom("add", "delete", "replace"),
  key: fc.oneof(fc.constantFrom("stride", "units", "kind", "extra", "a\nb"), fc.string({ maxLength: 5 })),
  value: nastyValue,
});

function applyEdit(value: unknown, edit: { path: number[]; op: string; key: string; value: unknown }): unknown {
  const root = structuredClone(value);
  let node: unknown = root;
  for (const i of edit.path) {
    const kids = node && typeof node === "object" ? Object.values(node).filter((v) => v && typeof v === "object") : [];
    if (!kids.length) break;
    node = kids[i % kids.length];
  }
  if (!node || typeof node !== "object") return edit.value;
  const obj = node as Record<string, unknown>;
  const keys = Object.keys(obj);
  if (edit.op === "add") obj[edit.key] = edit.value;
  else if (keys.length && edit.op === "delete") delete obj[keys[edit.path.length % keys.length]];
  else if (keys.length) obj[keys[edit.path.length % keys.length]] = edit.value;
  return root;
}

/** Whether every key of `input` (recursively) survives in `parsed`: a strict schema drops nothing silently. */
function keysKept(input: unknown, parsed: unknown): boolean {
  if (Array.isArray(input))
    return Array.isArray(parsed) && input.length === parsed.length && input.every((v, i) => keysKept(v, parsed[i]));
  if (input && typeof input === "object") {
    if (!parsed || typeof parsed !== "object") return false;
    return Object.entries(input).every(
      ([k, v]) => Object.hasOwn(parsed, k) && keysKept(v, (parsed as Record<string, unknown>)[k]),
    );
  }
  return Object.is(input, parsed) || input === parsed;
}

function checkSpecOutcome(value: unknown): void {
  const r = parseModelSpec(value);
  if (!r.ok) {
    if (!r.problems.length) throw new Error("rejected without a problem");
    for (const p of r.problems)
      if (typeof p !== "string" || /[\r\n]/.test(p)) throw new Error(`problem not one line: ${JSON.stringify(p)}`);
    return;
  }
  if (!keysKept(value, r.spec))
    throw new Error(
      `accepted but dropped or changed part of the input: ${JSON.stringify(value)} -> ${JSON.stringify(r.spec)}`,
    );
  const again = parseModelSpec(JSON.parse(JSON.stringify(r.spec)));
  if (!again.ok) throw new Error(`a parsed spec does not parse again: ${again.problems.join("; ")}`);
  assert.deepEqual(again.spec, r.spec);
  // Sizes are exact integers; compiling is either fine or a UserError.
  userErrorOrResult(() => compileNetwork(r.spec), "model: ");
}

test("fuzz: random and damaged model descriptions into parseModelSpec", (t) => {
  check(t, "random JSON spec", fc.oneof(fc.jsonValue({ maxDepth: 3 }), specLike), checkSpecOutcome, 600);
  check(
    t,
    "edited spec",
    fc.tuple(specLike, fc.array(jsonEdit, { maxLength: 2 })),
    ([spec, edits]) => {
      checkSpecOutcome(edits.reduce(applyEdit, spec));
    },
    600,
  );
});

test("fuzz: random and damaged model.json files into loadModel", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "gcx-fuzz-"));
  const spec: ModelSpec = { kind: "mlp", sizes: [3, 2], activation: "relu" };
  saveModel(
    dir,
    spec,
    initParams(compileNetwork(spec), { scheme: "he", distribution: "normal", scale: 1, bias: 0, seed: 0 }),
  );
  const file = join(dir, MODEL_FILE);
  const text = fc.oneof(
    {
      weight: 3,
      arbitrary: fc
        .tuple(fc.oneof(fc.constant(spec as unknown), specLike), fc.array(jsonEdit, { maxLength: 2 }))
        .map(([s, edits]) => JSON.stringify(edits.reduce(applyEdit, s)) ?? ""),
    },
    { weight: 1, arbitrary: fc.json({ maxDepth: 3 }) },
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.nat(40), fc.string({ maxLength: 3 }))
        .map(([cut, s]) => `{"kind":"mlp",\n"sizes":[3,\n2]}`.slice(0, cut) + s),
    },
  );
  let loaded = 0;
  check(
    t,
    "model.json",
    text,
    (json) => {
      writeFileSync(file, json);
      const r = userErrorOrResult(() => loadModel(dir), `${dir}/`);
      if (!r.ok) return;
      loaded++;
      const m = r.value;
      for (const info of m.net.params) assert.deepEqual(m.params[info.name].shape, info.shape);
      const again = parseModelSpec(JSON.parse(json));
      assert.ok(again.ok);
      assert.deepEqual(again.spec, m.spec);
    },
    400,
  );
  t.diagnostic(`model.json: ${loaded} loaded`);
  assert.ok(loaded > 0, "no generated model.json ever loaded");
  // And random bytes for the weights beside a valid model.json.
  writeFileSync(file, JSON.stringify(spec));
  check(
    t,
    "weights file",
    fc.uint8Array({ maxLength: 200 }),
    (bytes) => {
      writeFileSync(join(dir, WEIGHTS_FILE), bytes);
      userErrorOrResult(() => loadModel(dir), `${join(dir, WEIGHTS_FILE)}: `);
    },
    200,
  );
});

// ---------------------------------------------------------------------------------------------------------------
// training configs

const CONFIG_KEYS = Object.keys(trainConfigSchema.shape);
const configLike = fc.dictionary(
  fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(...CONFIG_KEYS) },
    { weight: 1, arbitrary: fc.string({ unit: "grapheme-ascii", maxLength: 6 }).filter((k) => !/[\r\n]/.test(k)) },
  ),
  fc.oneof(
    nastyValue,
    fc.constantFrom("mnist", "sgd", "adam", "he", "normal", "norms"),
    fc.constant(["norms", "hessian"]),
  ),
  { maxKeys: 6 },
);

/**
 * parseTrainConfig reports every problem on its own line (the CLI prints each after "gcx: error:"), so here the
 * property is: a UserError whose every line is "<source>: <path>: <message>".
 */
function checkConfig(value: unknown): void {
  try {
    const cfg = parseTrainConfig(value, "cfg.yaml");
    for (const k of Object.keys(cfg)) if (!CONFIG_KEYS.includes(k)) throw new Error(`unknown key ${k} accepted`);
  } catch (e) {
    if (!(e instanceof UserError))
      throw new Error(`not a UserError: ${e instanceof Error ? e.stack : String(e)}`, { cause: e });
    for (const line of e.message.split("\n"))
      if (!/^cfg\.yaml: \S/.test(line))
        throw new Error(`malformed error line ${JSON.stringify(line)} in ${JSON.stringify(e.message)}`, { cause: e });
  }
}

test("fuzz: random values into parseTrainConfig", (t) => {
  check(t, "train config", fc.oneof(fc.jsonValue({ maxDepth: 2 }), configLike), checkConfig, 800);
});

test("a config key with a newline still gives one line per problem", () => {
  checkConfig({ "a\nb": 1 });
});
