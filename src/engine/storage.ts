/**
 * Where a tensor's values live: host memory (a JS typed array, readable synchronously) or a device (e.g. a GPU
 * buffer, readable only asynchronously through its backend). Types only, plus one type guard: the engine layer's
 * vocabulary for storage, shared by tensors, the kernel table and every backend.
 */

/** Precision of a tensor's values. */
export type DType = "float32" | "float64";

/** Host storage of a tensor's values: float32 (the default) or float64. */
export type Data = Float32Array | Float64Array;

/** Storage that is not host memory (e.g. a GPU buffer). Backends extend it with their own fields. */
export interface DeviceArray {
  /** The backend that owns it (its name, e.g. "webgpu"). */
  readonly device: string;
  readonly dtype: "float32";
  /** Number of values. */
  readonly length: number;
}

/** A tensor's storage: host values or a device array. */
export type Storage = Data | DeviceArray;

/** Int32 indices that live on a device (gather/scatter positions, max-pooling argmax). */
export interface DeviceIndexArray {
  readonly device: string;
  readonly dtype: "int32";
  readonly length: number;
}

/**
 * Indices for gather/scatter kernels: a host Int32Array (computed from shapes alone, e.g. pooling windows — a
 * device backend uploads it, which is not a read-back) or indices a device computed (max-pooling argmax).
 */
export type IndexStorage = Int32Array | DeviceIndexArray;

/** True when s is host memory (a typed array), readable synchronously. */
export function isHost(s: Storage): s is Data {
  return ArrayBuffer.isView(s);
}

/** True when idx is a host Int32Array. */
export function isHostIndex(idx: IndexStorage): idx is Int32Array {
  return ArrayBuffer.isView(idx);
}
