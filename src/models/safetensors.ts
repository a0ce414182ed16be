/**
 * The safetensors file format (as written by PyTorch's `safetensors` package): an 8-byte little-endian header
 * length, a JSON header {name: {dtype, shape, data_offsets}}, then the raw little-endian tensor bytes.
 * Small enough to read and write here; no library needed.
 */
import { UserError } from "../util/errors.js";

export interface StoredTensor {
  shape: number[];
  data: Float32Array | Float64Array;
}

const BYTES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2 };

export function encodeSafetensors(tensors: Record<string, StoredTensor>, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  const names = Object.keys(tensors).sort();
  for (const name of names) {
    const t = tensors[name];
    const bytes = t.data.byteLength;
    header[name] = { dtype: t.data instanceof Float64Array ? "F64" : "F32", shape: t.shape, data_offsets: [offset, offset + bytes] };
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

/** Decodes a safetensors buffer; F16 and BF16 tensors are widened to float32. `file` names the source in errors. */
export function decodeSafetensors(buf: Uint8Array, file: string): Record<string, StoredTensor> {
  const bad = (why: string) => new UserError(`${file}: not a valid safetensors file (${why})`);
  if (buf.length < 8) throw bad("shorter than its 8-byte header length");
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > buf.length - 8) throw bad(`header length ${headerLen} exceeds the file size`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(Buffer.from(buf.subarray(8, 8 + headerLen)).toString("utf8"));
  } catch {
    throw bad("header is not JSON");
  }
  const base = 8 + headerLen;
  const out: Record<string, StoredTensor> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const { dtype, shape, data_offsets } = entry ?? {};
    const width = BYTES[dtype];
    if (!width) throw new UserError(`${file}: tensor "${name}" has dtype ${dtype}; supported: F32, F64, F16, BF16`);
    if (!Array.isArray(shape) || !Array.isArray(data_offsets)) throw bad(`tensor "${name}" lacks shape or data_offsets`);
    const count = shape.reduce((a, b) => a * b, 1);
    const [begin, end] = data_offsets;
    if (end - begin !== count * width || base + end > buf.length) throw bad(`tensor "${name}" data does not fit its shape`);
    const dv = new DataView(buf.buffer, buf.byteOffset + base + begin, end - begin);
    let data: Float32Array | Float64Array;
    if (dtype === "F64") {
      data = new Float64Array(count);
      for (let i = 0; i < count; i++) data[i] = dv.getFloat64(i * 8, true);
    } else {
      data = new Float32Array(count);
      for (let i = 0; i < count; i++) {
        if (dtype === "F32") data[i] = dv.getFloat32(i * 4, true);
        else if (dtype === "BF16") data[i] = bf16ToFloat(dv.getUint16(i * 2, true));
        else data[i] = f16ToFloat(dv.getUint16(i * 2, true));
      }
    }
    out[name] = { shape: [...shape], data };
  }
  return out;
}

function bf16ToFloat(h: number): number {
  const f = new DataView(new ArrayBuffer(4));
  f.setUint32(0, h << 16);
  return f.getFloat32(0);
}

function f16ToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}
