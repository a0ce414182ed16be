/**
 * The safetensors file format (as written by PyTorch's `safetensors` package): an 8-byte little-endian header
 * length N, N bytes of UTF-8 JSON header {name: {dtype, shape, data_offsets}, "__metadata__"?: {string: string}},
 * then the raw little-endian tensor bytes. Small enough to read and write here; no library needed.
 *
 * The decoder is as strict as the reference implementation (the Rust crate's `SafeTensors::deserialize`): the
 * header starts with "{" and is a JSON object of at most 100 MB; every entry has a known dtype, a shape of
 * non-negative integers and two integer offsets [begin, end] whose length is product(shape) × dtype width; and the
 * tensors, sorted by offset, tile the data buffer exactly (no holes, no overlap, no trailing bytes). Any violation is a
 * one-line UserError naming the file (and the tensor): a corrupt or hostile file never reads header bytes as weights.
 */
import { UserError } from "../util/errors.js";
import { halfToFloat } from "../util/float16.js";

export interface StoredTensor {
  shape: number[];
  data: Float32Array | Float64Array;
}

/**
 * Dtypes decoded here, with their widths in bytes (F16 and BF16 are widened to float32; I64 and I32, which PyTorch
 * uses for BatchNorm's num_batches_tracked, are read as float64, exact below 2^53).
 */
const SUPPORTED: ReadonlyMap<string, number> = new Map([
  ["F64", 8],
  ["F32", 4],
  ["F16", 2],
  ["BF16", 2],
  ["I64", 8],
  ["I32", 4],
]);

/** The other dtypes of the format: valid files, but not weights this tool can use. */
const OTHER_DTYPES: ReadonlySet<string> = new Set([
  "BOOL",
  "U8",
  "I8",
  "F8_E5M2",
  "F8_E4M3",
  "F8_E8M0",
  "F4",
  "F6_E2M3",
  "F6_E3M2",
  "I16",
  "U16",
  "U32",
  "U64",
  "C64",
]);

/** The reference implementation refuses headers over 100 MB (MAX_HEADER_SIZE): nothing real comes near it. */
export const MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = "__metadata__";

export function encodeSafetensors(
  tensors: Record<string, StoredTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  // No prototype: a tensor named "__proto__" is then an ordinary key, not the object's prototype.
  const header = Object.create(null) as Record<string, unknown>;
  if (metadata) header[METADATA_KEY] = metadata;
  let offset = 0;
  const names = Object.keys(tensors).sort();
  for (const name of names) {
    const t = tensors[name];
    // These are programming errors (the caller built an inconsistent tensor), not user errors.
    if (name === METADATA_KEY) throw new Error(`safetensors: a tensor cannot be named ${METADATA_KEY}`);
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (t.shape.some((d) => !Number.isSafeInteger(d) || d < 0) || count !== t.data.length) {
      throw new Error(`safetensors: tensor "${name}" has shape [${t.shape}] but ${t.data.length} values`);
    }
    const bytes = t.data.byteLength;
    header[name] = {
      dtype: t.data instanceof Float64Array ? "F64" : "F32",
      shape: t.shape,
      data_offsets: [offset, offset + bytes],
    };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data starts 8-byte aligned (as the reference implementation does).
  json += " ".repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = Buffer.from(json, "utf8");
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const name of names) {
    const d = tensors[name].data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), at);
    at += d.byteLength;
  }
  return out;
}

/** A short, one-line rendering of a JSON value for error messages. */
function show(v: unknown): string {
  let s: string;
  try {
    s = v === undefined ? "nothing" : JSON.stringify(v);
  } catch {
    s = String(v);
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * The keys of the top-level object of `text` (already known to be a valid JSON object), in order, duplicates included:
 * JSON.parse keeps only the last of duplicate keys, which would silently hide a tensor.
 */
function topLevelKeys(text: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c /* \ */) i++;
      if (depth !== 1) continue;
      let j = i + 1;
      while (j < text.length && (text[j] === " " || text[j] === "\t" || text[j] === "\n" || text[j] === "\r")) j++;
      if (text[j] === ":") keys.push(JSON.parse(text.slice(start, i + 1)) as string);
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) depth++;
    else if (c === 0x7d /* } */ || c === 0x5d /* ] */) depth--;
  }
  return keys;
}

interface Entry {
  name: string;
  dtype: string;
  width: number;
  shape: number[];
  count: number;
  begin: number;
  end: number;
}

/** Decodes a safetensors buffer; F16 and BF16 tensors are widened to float32. `file` names the source in errors. */
export function decodeSafetensors(buf: Uint8Array, file: string): Record<string, StoredTensor> {
  const bad = (why: string) => new UserError(`${file}: not a valid safetensors file (${why})`);
  if (buf.length < 8) throw bad(`${buf.length} bytes, shorter than the 8-byte header length`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen64 = view.getBigUint64(0, true);
  if (headerLen64 > BigInt(MAX_HEADER_BYTES))
    throw bad(`header length ${headerLen64} is over the ${MAX_HEADER_BYTES}-byte limit`);
  const headerLen = Number(headerLen64);
  if (headerLen > buf.length - 8) throw bad(`header length ${headerLen} exceeds the ${buf.length - 8} bytes after it`);
  let text: string;
  try {
    // ignoreBOM keeps a byte-order mark, which then fails the "{" check like in the reference.
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(buf.subarray(8, 8 + headerLen));
  } catch {
    throw bad("header is not valid UTF-8");
  }
  if (!text.startsWith("{")) throw bad(`header does not start with "{"`);
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch {
    throw bad("header is not valid JSON");
  }
  if (!isPlainObject(header)) throw bad("header is not a JSON object");
  const names = Object.keys(header);
  const keys = topLevelKeys(text);
  if (keys.length !== names.length) {
    const seen = new Set<string>();
    const dup = keys.find((k) => (seen.has(k) ? true : (seen.add(k), false)));
    throw bad(`header has the key ${show(dup)} more than once`);
  }

  const entries: Entry[] = [];
  for (const name of names) {
    const value = header[name];
    if (name === METADATA_KEY) {
      if (value === null) continue; // the reference reads null as "no metadata"
      if (!isPlainObject(value)) throw bad(`${METADATA_KEY} is ${show(value)}, not an object of strings`);
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== "string") throw bad(`${METADATA_KEY} entry ${show(k)} is ${show(v)}, not a string`);
      }
      continue;
    }
    const where = `tensor ${show(name)}`;
    if (!isPlainObject(value))
      throw bad(`${where} is ${show(value)}, not an object with dtype, shape and data_offsets`);
    const { dtype, shape, data_offsets: offsets } = value;
    for (const [key, v] of [
      ["dtype", dtype],
      ["shape", shape],
      ["data_offsets", offsets],
    ] as const) {
      if (v === undefined) throw bad(`${where} has no ${key}`);
    }
    if (typeof dtype !== "string") throw bad(`${where} has dtype ${show(dtype)}, not a string`);
    const width = SUPPORTED.get(dtype);
    if (width === undefined) {
      if (OTHER_DTYPES.has(dtype))
        throw new UserError(
          `${file}: tensor ${show(name)} has unsupported dtype ${dtype}; supported: F32, F64, F16, BF16, I64, I32`,
        );
      throw bad(`${where} has unknown dtype ${show(dtype)}`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw bad(`${where} has shape ${show(shape)}, not a list of non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw bad(`${where} has data_offsets ${show(offsets)}, not two non-negative integers [begin, end]`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) throw bad(`${where} has data_offsets [${begin}, ${end}] with begin after end`);
    let count = 1;
    for (const d of shape as number[]) count *= d;
    // Exact while under 2^53; past that the product is not an integer count of bytes any array could hold.
    if (!Number.isSafeInteger(count * width)) throw bad(`${where} shape ${show(shape)} has too many elements`);
    if (end - begin !== count * width) {
      throw bad(
        `${where} data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but ${dtype} shape [${shape}] needs ${count * width}`,
      );
    }
    entries.push({ name, dtype, width, shape: [...(shape as number[])], count, begin, end });
  }

  // Sorted by offset, the tensors must tile the data buffer exactly.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  const dataLen = buf.length - 8 - headerLen;
  let at = 0;
  for (const e of entries) {
    if (e.begin !== at) {
      throw bad(
        `tensor ${show(e.name)} data_offsets [${e.begin}, ${e.end}] ${e.begin > at ? `leave a gap after byte ${at}` : `overlap the previous tensor, which ends at byte ${at}`}`,
      );
    }
    if (e.end > dataLen)
      throw bad(
        `tensor ${show(e.name)} data_offsets [${e.begin}, ${e.end}] run past the ${dataLen}-byte data buffer (truncated file?)`,
      );
    at = e.end;
  }
  if (at !== dataLen) throw bad(`the tensors cover ${at} bytes of data but the file holds ${dataLen}`);

  const base = buf.byteOffset + 8 + headerLen;
  const out = Object.create(null) as Record<string, StoredTensor>;
  for (const e of entries) out[e.name] = { shape: e.shape, data: readData(buf, base + e.begin, e) };
  return out;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function readData(buf: Uint8Array, offset: number, e: Entry): Float32Array | Float64Array {
  const { dtype, count } = e;
  if (dtype === "I64" || dtype === "I32") {
    const dv = new DataView(buf.buffer, offset, count * e.width);
    const data = new Float64Array(count);
    for (let i = 0; i < count; i++)
      data[i] = dtype === "I64" ? Number(dv.getBigInt64(i * 8, true)) : dv.getInt32(i * 4, true);
    return data;
  }
  if (dtype === "F64") {
    if (LITTLE_ENDIAN && offset % 8 === 0) return new Float64Array(buf.buffer.slice(offset, offset + count * 8));
    const dv = new DataView(buf.buffer, offset, count * 8);
    const data = new Float64Array(count);
    for (let i = 0; i < count; i++) data[i] = dv.getFloat64(i * 8, true);
    return data;
  }
  if (dtype === "F32" && LITTLE_ENDIAN && offset % 4 === 0)
    return new Float32Array(buf.buffer.slice(offset, offset + count * 4));
  const dv = new DataView(buf.buffer, offset, count * e.width);
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    if (dtype === "F32") data[i] = dv.getFloat32(i * 4, true);
    else if (dtype === "BF16") data[i] = bf16ToFloat(dv.getUint16(i * 2, true));
    else data[i] = halfToFloat(dv.getUint16(i * 2, true));
  }
  return data;
}

function bf16ToFloat(h: number): number {
  const f = new DataView(new ArrayBuffer(4));
  f.setUint32(0, h << 16);
  return f.getFloat32(0);
}
