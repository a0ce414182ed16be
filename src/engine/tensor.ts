/**
 * Tensor: an immutable n-d array of float32 or float64 values plus, when it takes part in differentiation,
 * a link to the op that produced it. Storage comes from the active backend (backend.ts): JS-heap typed arrays owned
 * by the garbage collector, inside a `scope` memory of the wasm kernels that the scope reclaims when it ends, or
 * (device backends) storage that is not host memory and is read back only with `await tensor.read()`.
 */
import { isHost, type Data, type DeviceArray, type DType, type Storage } from "./storage.js";

export type { Data, DType } from "./storage.js";

/** What an op recorded for reverse mode: its inputs and how to map the output cotangent to input cotangents. */
export interface GradNode {
  readonly inputs: readonly Tensor[];
  /** Returns one cotangent per input (null where the input does not need one). Built from differentiable ops. */
  readonly backward: (g: Tensor) => readonly (Tensor | null)[];
}

/**
 * An n-dimensional array of float32 or float64 values, row-major, that records how it was computed (its
 * `node`) when gradients are being taken. Create with {@link tensor}, {@link zeros}, {@link full}; combine with `ops`.
 */
export class Tensor {
  /** Dimensions, outermost first (e.g. `[batch, features]`); `[]` for a scalar. */
  readonly shape: readonly number[];
  /** Where the values live (host array or device array), row-major; shared, not copied, by views such as `ops.reshape`. */
  readonly storage: Storage;
  /** True for leaves being differentiated (parameters, inputs) and for results of ops on them. */
  readonly requiresGrad: boolean;
  /** The op that produced this tensor and its backward rule, or null for a leaf or under `noGrad`. */
  readonly node: GradNode | null;

  constructor(storage: Storage, shape: readonly number[], requiresGrad = false, node: GradNode | null = null) {
    const size = sizeOf(shape);
    if (storage.length !== size) {
      throw new RangeError(`tensor data has ${storage.length} values but shape [${shape.join(",")}] needs ${size}`);
    }
    this.storage = storage;
    this.shape = Object.freeze([...shape]);
    this.requiresGrad = requiresGrad;
    this.node = node;
  }

  /**
   * The values as a host typed array (a view, not a copy), synchronously. On a device backend the values are not
   * host memory: throws a RangeError naming `await tensor.read()`.
   */
  get data(): Data {
    const s = this.storage;
    if (isHost(s)) return s;
    throw deviceReadError(s);
  }

  /** `float32` or `float64`, from the storage. */
  get dtype(): DType {
    const s = this.storage;
    return isHost(s) ? (s instanceof Float64Array ? "float64" : "float32") : s.dtype;
  }

  /** Number of values (the product of the shape). */
  get size(): number {
    return this.storage.length;
  }

  /** True when the values are host memory (readable with `data` and `item()`); false on a device backend. */
  get onHost(): boolean {
    return isHost(this.storage);
  }

  /** The single value of a one-element tensor (host storage only: on a device use {@link Tensor.readItem}). */
  item(): number {
    if (this.size !== 1) throw new RangeError(`item() needs one element, tensor has ${this.size}`);
    return this.data[0];
  }

  /**
   * The values on the host: the storage itself for host tensors, else a copy read back from the device (after
   * the device has finished the work queued before it). The one way numbers leave a device backend.
   */
  read(): Promise<Data> {
    const s = this.storage;
    return isHost(s) ? Promise.resolve(s) : reader(s);
  }

  /** The single value of a one-element tensor, read back from wherever it lives. */
  async readItem(): Promise<number> {
    if (this.size !== 1) throw new RangeError(`readItem() needs one element, tensor has ${this.size}`);
    return (await this.read())[0];
  }

  /** A leaf that shares this tensor's values and is differentiated with respect to. */
  variable(): Tensor {
    return new Tensor(this.storage, this.shape, true, null);
  }

  /** Same values, cut from any graph. */
  detach(): Tensor {
    return this.requiresGrad ? new Tensor(this.storage, this.shape) : this;
  }
}

/** The error a synchronous read of device storage throws (one line, naming the asynchronous read). */
export function deviceReadError(s: DeviceArray): RangeError {
  return new RangeError(`tensor lives on the ${s.device} backend: read it with await tensor.read()`);
}

let reader = (s: DeviceArray): Promise<Data> => Promise.reject(deviceReadError(s));

/** Installs how device storage is read back (backend.ts: the owning backend's `read`). */
export function setStorageReader(f: (s: DeviceArray) => Promise<Data>): void {
  reader = f;
}

/** Number of values of a shape (1 for the scalar shape `[]`); throws on a negative or fractional dimension. */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) {
    if (!Number.isInteger(s) || s < 0) throw new RangeError(`bad dimension ${s} in shape [${shape.join(",")}]`);
    n *= s;
  }
  return n;
}

/**
 * Where storage comes from: the active backend (backend.ts installs it when it loads). `device` is true when that
 * storage is not host memory, so host arrays must be uploaded and never written in place.
 */
export interface StorageProvider {
  readonly device: boolean;
  /** The active backend's name (for error messages). */
  readonly name: string;
  /** Zeroed storage for n values. */
  alloc(dtype: DType, n: number): Storage;
  /** New storage holding a copy of host values (device backends upload; host backends copy). */
  upload(values: Data): Storage;
  /** New storage with every value equal to v. */
  filled(dtype: DType, n: number, v: number): Storage;
  /** New storage holding s's values in another precision (device backends: the `copy` kernel). */
  convert(s: Storage, dtype: DType): Storage;
}

const heap = (dtype: DType, n: number): Data => (dtype === "float64" ? new Float64Array(n) : new Float32Array(n));

let provider: StorageProvider = {
  device: false,
  name: "js",
  alloc: heap,
  upload: (v) => v.slice(),
  filled: (dtype, n, v) => heap(dtype, n).fill(v),
  convert: (s, dtype) => {
    const d = heap(dtype, s.length);
    d.set(s as Data);
    return d;
  },
};

/** Installs where new storage comes from (backend.ts installs the active backend's storage when it loads). */
export function setStorageProvider(p: StorageProvider): void {
  provider = p;
}

/** The dtype of storage. */
export function dtypeOf(s: Storage): DType {
  return isHost(s) ? (s instanceof Float64Array ? "float64" : "float32") : s.dtype;
}

/** Zeroed storage for n values on the active backend (host or device; resident inside a scope). */
export function newStorage(dtype: DType, n: number): Storage {
  return provider.alloc(dtype, n);
}

/** Zeroed storage for n values of s's precision on the active backend. */
export function newStorageLike(s: Storage, n: number): Storage {
  return provider.alloc(dtypeOf(s), n);
}

function hostOnly(what: string): void {
  if (provider.device)
    throw new RangeError(
      `${what}: host storage is not available on the ${provider.name} backend (make tensors with tensor(values, shape))`,
    );
}

/**
 * Zeroed HOST storage for n values of data's precision (resident inside a scope on the wasm backend), for code that
 * writes values itself. A device backend has no writable host storage: throws (use {@link tensor}, which uploads).
 */
export function allocLike(data: Storage, n: number): Data {
  hostOnly("allocLike");
  return provider.alloc(dtypeOf(data), n) as Data;
}

/** Zeroed HOST storage for n values (see {@link allocLike}; throws on a device backend). */
export function alloc(dtype: DType, n: number): Data {
  hostOnly("alloc");
  return provider.alloc(dtype, n) as Data;
}

/**
 * Zeroed host values to fill and then pass to {@link toStorage} (parameters, host-made noise and masks): the active
 * backend's storage on host backends (resident inside a scope), a JS-heap array on device backends.
 */
export function hostValues(dtype: DType, n: number): Data {
  return provider.device ? heap(dtype, n) : (provider.alloc(dtype, n) as Data);
}

/** Host values as storage of the active backend: the array itself on host backends, an uploaded copy on devices. */
export function toStorage(values: Data): Storage {
  return provider.device ? provider.upload(values) : values;
}

/** A tensor holding a copy of `values` (length must match the shape); uploaded on a device backend. */
export function tensor(values: ArrayLike<number>, shape: readonly number[], dtype: DType = "float32"): Tensor {
  if (provider.device) {
    const host = heap(dtype, values.length);
    host.set(values);
    return new Tensor(provider.upload(host), shape);
  }
  const data = provider.alloc(dtype, values.length) as Data;
  data.set(values);
  return new Tensor(data, shape);
}

/** A tensor of zeros. */
export function zeros(shape: readonly number[], dtype: DType = "float32"): Tensor {
  return new Tensor(provider.alloc(dtype, sizeOf(shape)), shape);
}

/** A tensor with every value equal to `value`. */
export function full(shape: readonly number[], value: number, dtype: DType = "float32"): Tensor {
  return new Tensor(provider.filled(dtype, sizeOf(shape), value), shape);
}

/** A tensor of shape `[]` holding one value. */
export function scalar(value: number, dtype: DType = "float32"): Tensor {
  return full([], value, dtype);
}

/** Same values in another precision (a copy; not differentiable). */
export function cast(t: Tensor, dtype: DType): Tensor {
  if (t.dtype === dtype) return t.detach();
  const s = t.storage;
  if (isHost(s) && !provider.device) {
    const d = provider.alloc(dtype, t.size) as Data;
    d.set(s);
    return new Tensor(d, t.shape);
  }
  return new Tensor(provider.convert(s, dtype), t.shape);
}
