/**
 * The read-back boundary of decision 0007, in one place: where numbers leave the engine (log points, final values
 * of a measure) and where host data enters it (batches, labels, noise, probes). Measures, regularizers and training
 * never read `tensor.data` inside a step or a measure batch; they collect result tensors and hand them to
 * {@link resolveNow} (synchronous, CPU backends) or {@link resolve} (asynchronous, any backend, device ones
 * included) once, at the end.
 */
import { onDevice } from "../engine/backend.js";
import { Tensor, tensor, type Data, type DType } from "../engine/tensor.js";
import { isHost, type Storage } from "../engine/storage.js";

export { onDevice };

/**
 * The precision of bookkeeping arithmetic done with ops (power-iteration vectors, running statistics, blends):
 * float64 on host backends, where it reproduces the float64 host loops it replaced bit for bit, and float32 on
 * device backends, whose storage is float32 only.
 */
export function bookkeepingDType(): DType {
  return onDevice() ? "float32" : "float64";
}

/**
 * Host values as a tensor on the active backend (an upload: host data in, never a read-back). On host backends a
 * view of `values` when the precision already matches (no copy, as the callers did before); on a device a float32
 * copy (device storage's only precision).
 */
export function upload(values: Data, shape: readonly number[], dtype?: DType): Tensor {
  const have = values instanceof Float64Array ? "float64" : "float32";
  if (onDevice()) return tensor(values, shape, "float32");
  const want = dtype ?? have;
  return want === have ? new Tensor(values, shape) : tensor(values, shape, want);
}

/**
 * A tensor on the active backend: a tensor in host memory is uploaded (as float32, device storage's only precision)
 * on a device backend; anything else is returned as it is.
 */
export function onBackend(t: Tensor): Tensor {
  if (!onDevice()) return t;
  const s = t.storage;
  return isHost(s) ? tensor(s, t.shape, "float32") : t;
}

/** The storage behind a tensor, to keep as state between steps (regularizer and optimizer state hold storage). */
export function storageOf(t: Tensor): Storage {
  return t.storage;
}

/** Synchronous read of a tensor's values: the single synchronous read point (CPU backends only). */
export function readNow(t: Tensor): Data {
  return t.data;
}

/** Asynchronous read of a tensor's values: works on every backend (device backends copy back after their queue). */
export function read(t: Tensor): Promise<Data> {
  return t.read();
}

/** Σ of one-element read-back values in float64, in order (the order the synchronous code summed `item()`s in). */
export function sumScalars(values: readonly ArrayLike<number>[]): number {
  let s = 0;
  for (const v of values) s += v[0];
  return s;
}

/** Work whose numbers are still on the backend: the tensors to read, and how to make the result from their values. */
export interface Deferred<T> {
  readonly tensors: readonly Tensor[];
  finish(values: readonly Data[]): T;
}

/** Reads a deferred result synchronously (CPU backends): every tensor once, at the end. */
export function resolveNow<T>(d: Deferred<T>): T {
  return d.finish(d.tensors.map(readNow));
}

/** Reads a deferred result asynchronously (every backend, device ones included): every tensor once, at the end. */
export async function resolve<T>(d: Deferred<T>): Promise<T> {
  // All reads are issued at once (a device backend can overlap its copies); values come back in tensor order.
  return d.finish(await Promise.all(d.tensors.map(read)));
}

/** A deferred value that needs no reads (nothing left on the backend). */
export function ready<T>(value: T): Deferred<T> {
  return { tensors: [], finish: () => value };
}

/** Several deferred results read together (one boundary), finished in order. */
export function combine<T extends readonly unknown[]>(parts: { [K in keyof T]: Deferred<T[K]> }): Deferred<T> {
  const list = parts as readonly Deferred<unknown>[];
  return {
    tensors: list.flatMap((p) => p.tensors),
    finish(values) {
      let at = 0;
      return list.map((p) => {
        const mine = values.slice(at, at + p.tensors.length);
        at += p.tensors.length;
        return p.finish(mine);
      }) as unknown as T;
    },
  };
}

/** A deferred result mapped through a host function (no further reads). */
export function mapDeferred<A, B>(d: Deferred<A>, f: (a: A) => B): Deferred<B> {
  return { tensors: d.tensors, finish: (values) => f(d.finish(values)) };
}

/** A computation that pauses at each read point: it yields what it needs read and receives the result. */
export type Reads<T> = Generator<Deferred<unknown>, T, unknown>;

/** Inside a {@link Reads} generator: `const v = yield* readBack(d)` reads d at this point (one read point). */
export function* readBack<T>(d: Deferred<T>): Reads<T> {
  return (yield d) as T;
}

/** Runs a {@link Reads} computation, reading synchronously at each read point (CPU backends). */
export function runReadsNow<T>(gen: Reads<T>): T {
  let r = gen.next();
  while (!r.done) r = gen.next(resolveNow(r.value));
  return r.value;
}

/** Runs a {@link Reads} computation, awaiting each read point (every backend, device ones included). */
export async function runReads<T>(gen: Reads<T>): Promise<T> {
  let r = gen.next();
  while (!r.done) r = gen.next(await resolve(r.value));
  return r.value;
}
