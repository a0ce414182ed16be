/**
 * Tensor: an immutable n-d array of float32 or float64 values plus, when it takes part in differentiation,
 * a link to the op that produced it. Storage comes from the active backend (backend.ts): JS-heap typed arrays owned
 * by the garbage collector, or, inside a `scope`, memory of the wasm kernels that the scope reclaims when it ends.
 */

export type DType = "float32" | "float64";
/** Storage of a tensor's values: float32 (the default) or float64. */
export type Data = Float32Array | Float64Array;

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
  /** The values, row-major; shared, not copied, by views such as `ops.reshape`. */
  readonly data: Data;
  /** True for leaves being differentiated (parameters, inputs) and for results of ops on them. */
  readonly requiresGrad: boolean;
  /** The op that produced this tensor and its backward rule, or null for a leaf or under `noGrad`. */
  readonly node: GradNode | null;

  constructor(data: Data, shape: readonly number[], requiresGrad = false, node: GradNode | null = null) {
    const size = sizeOf(shape);
    if (data.length !== size) {
      throw new RangeError(`tensor data has ${data.length} values but shape [${shape.join(",")}] needs ${size}`);
    }
    this.data = data;
    this.shape = Object.freeze([...shape]);
    this.requiresGrad = requiresGrad;
    this.node = node;
  }

  /** `float32` or `float64`, from the storage. */
  get dtype(): DType {
    return this.data instanceof Float64Array ? "float64" : "float32";
  }

  /** Number of values (the product of the shape). */
  get size(): number {
    return this.data.length;
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.data.length !== 1) throw new RangeError(`item() needs one element, tensor has ${this.data.length}`);
    return this.data[0];
  }

  /** A leaf that shares this tensor's values and is differentiated with respect to. */
  variable(): Tensor {
    return new Tensor(this.data, this.shape, true, null);
  }

  /** Same values, cut from any graph. */
  detach(): Tensor {
    return this.requiresGrad ? new Tensor(this.data, this.shape) : this;
  }
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

let allocator = (dtype: DType, n: number): Data => (dtype === "float64" ? new Float64Array(n) : new Float32Array(n));

/** Installs where new storage comes from (backend.ts installs the active backend's allocator when it loads). */
export function setStorageAllocator(f: (dtype: DType, n: number) => Data): void {
  allocator = f;
}

/** Zeroed storage for n values of data's precision, on the active backend (resident inside a scope). */
export function allocLike(data: Data, n: number): Data {
  return allocator(data instanceof Float64Array ? "float64" : "float32", n);
}

/** Zeroed storage for n values on the active backend (resident inside a scope). */
export function alloc(dtype: DType, n: number): Data {
  return allocator(dtype, n);
}

/** A tensor holding a copy of `values` (length must match the shape). */
export function tensor(values: ArrayLike<number>, shape: readonly number[], dtype: DType = "float32"): Tensor {
  const data = alloc(dtype, values.length);
  data.set(values);
  return new Tensor(data, shape);
}

/** A tensor of zeros. */
export function zeros(shape: readonly number[], dtype: DType = "float32"): Tensor {
  return new Tensor(alloc(dtype, sizeOf(shape)), shape);
}

/** A tensor with every value equal to `value`. */
export function full(shape: readonly number[], value: number, dtype: DType = "float32"): Tensor {
  const d = alloc(dtype, sizeOf(shape));
  d.fill(value);
  return new Tensor(d, shape);
}

/** A tensor of shape `[]` holding one value. */
export function scalar(value: number, dtype: DType = "float32"): Tensor {
  return full([], value, dtype);
}

/** Same values in another precision (a copy; not differentiable). */
export function cast(t: Tensor, dtype: DType): Tensor {
  if (t.dtype === dtype) return t.detach();
  const d = alloc(dtype, t.size);
  d.set(t.data);
  return new Tensor(d, t.shape);
}
