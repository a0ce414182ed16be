/** Parser for IDX files (the MNIST container format), limited to the uint8 variants MNIST-style data sets use. */
import { UserError } from "../util/errors.js";

/** A decoded IDX file (the MNIST file format): its dimensions and raw unsigned bytes. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

// Magic = 0x00 0x00 <type> <ndims>; type 0x08 is unsigned byte.
const KNOWN_MAGICS: Record<number, string> = { 0x00000801: "uint8 labels", 0x00000803: "uint8 images" };

/** Parse an IDX buffer; `fileName` only names the file in error messages. `data` is a view into `buf`. */
export function parseIdx(buf: Uint8Array, fileName: string): IdxArray {
  if (buf.length < 4) throw new UserError(`${fileName}: not an IDX file (only ${buf.length} bytes)`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const magic = view.getUint32(0, false);
  if (!(magic in KNOWN_MAGICS)) {
    throw new UserError(
      `${fileName}: bad IDX magic 0x${magic.toString(16).padStart(8, "0")} (expected 0x00000801 or 0x00000803)`,
    );
  }
  const ndims = magic & 0xff;
  const headerLength = 4 + 4 * ndims;
  if (buf.length < headerLength) throw new UserError(`${fileName}: IDX header truncated (${buf.length} bytes)`);
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) {
    const d = view.getInt32(4 + 4 * i, false);
    if (d < 0) throw new UserError(`${fileName}: negative IDX dimension ${d}`);
    dims.push(d);
  }
  const expected = headerLength + dims.reduce((a, b) => a * b, 1);
  if (buf.length !== expected) {
    throw new UserError(
      `${fileName}: IDX size mismatch: dims [${dims.join(", ")}] need ${expected} bytes, file has ${buf.length}`,
    );
  }
  return { dims, data: buf.subarray(headerLength) };
}
