/// <reference types="@webgpu/types" />
/**
 * The WebGPU backend's device context: GPU-buffer storage (`GpuArray`), a buffer pool keyed by size class with
 * per-scope reclamation, a pipeline cache, and ONE command encoder that records every dispatch until something is
 * read back (or a batch of uniforms fills up), then submits them all at once.
 *
 * Ordering argument (why reclaimed buffers may be reused at once): every use of a buffer is recorded, in program
 * order, on the same queue, so a dispatch that reuses a reclaimed buffer runs after every earlier reader of it. The
 * one exception is `queue.writeBuffer`, which runs before the not-yet-submitted encoder: uploads into a buffer the
 * open encoder already references go through a staging buffer copied inside the encoder instead.
 */
import type { Data } from "../../tensor.js";
import type { DeviceArray } from "./contract.js";

/** GPUBufferUsage / GPUMapMode values (numeric: Node's `webgpu` package does not define the globals). */
export const USAGE = { MAP_READ: 1, COPY_SRC: 4, COPY_DST: 8, UNIFORM: 64, STORAGE: 128 } as const;
const MAP_READ_MODE = 1;

/** Float32 storage in a GPU buffer: `length` values from byte `byteOffset` of `buffer`. */
export class GpuArray implements DeviceArray {
  readonly device = "webgpu";
  readonly dtype = "float32";
  /**
   * True while the values are zeros not yet written to a recycled buffer: the zeros are written only when the array
   * is read before a kernel has overwritten it (kernels write their outputs completely), saving a dispatch per op.
   */
  pendingZero = false;
  constructor(
    readonly buffer: GPUBuffer,
    readonly byteOffset: number,
    readonly length: number,
  ) {}
}

/** Int32 indices in a GPU buffer (max-pooling argmax; uploaded host indices). */
export class GpuIndexArray {
  readonly device = "webgpu";
  readonly dtype = "int32";
  /** Set by max pooling: the window geometry its argmax came from (lets scatterAdd run as a gather). */
  pool: unknown = null;
  constructor(
    readonly buffer: GPUBuffer,
    readonly byteOffset: number,
    readonly length: number,
  ) {}
}

/** A bindable range of 4-byte elements. */
export type Bindable = GpuArray | GpuIndexArray;

/** A float to pass as a kernel parameter (its bits go into the uniform slot). */
export interface F32 {
  f: number;
}
/** A float kernel parameter. */
export const f = (v: number): F32 => ({ f: v });
/** A kernel parameter: an unsigned/signed 32-bit integer, or a float. */
export type Param = number | F32;

/** One dispatch: the pipeline key and source, storage bindings (1…k; read-only first, then read-write). */
export interface Dispatch {
  key: string;
  code: () => string;
  reads: readonly GpuArray[];
  writes: readonly Bindable[];
  /** Read-only bindings after the outputs (index arrays). */
  extra?: readonly Bindable[];
  params: readonly Param[];
  /** Workgroups in x, y (see `grid`). */
  groups: readonly [number, number];
}

/** Words of one dispatch's uniform slot (256 bytes: the minimum uniform-buffer offset alignment). */
export const SLOT_WORDS = 64;
const SLOTS = 4096;
const MAX_GROUPS = 65535;

/** A 1-D grid of `count` workgroups laid out as x·y (x ≤ 65535), for shaders that use `wgIndex`. */
export function grid(count: number): [number, number] {
  if (count <= MAX_GROUPS) return [Math.max(1, count), 1];
  return [MAX_GROUPS, Math.ceil(count / MAX_GROUPS)];
}

/** Byte size of the pool class holding `bytes`: 2^k or 1.5·2^k, at least 256. */
export function sizeClass(bytes: number): number {
  if (bytes <= 256) return 256;
  const p = 2 ** Math.ceil(Math.log2(bytes));
  return bytes <= p * 0.75 ? p * 0.75 : p;
}

/** Counters for tests and benchmarks. */
export interface GpuStats {
  dispatches: number;
  submits: number;
  reads: number;
  buffersCreated: number;
  pipelines: number;
}

export class GpuContext {
  private readonly free = new Map<number, GPUBuffer[]>();
  private readonly frames: Set<GPUBuffer>[] = [];
  private unscopedDepth = 0;
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private enc: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  /** Buffers the open encoder references (an upload into one of them must be ordered inside the encoder). */
  private readonly touched = new Set<GPUBuffer>();
  private readonly uniforms: GPUBuffer;
  private readonly uniformData = new Uint32Array(SLOTS * SLOT_WORDS);
  private readonly uniformFloats = new Float32Array(this.uniformData.buffer);
  private slot = 0;
  private staging: GPUBuffer[] = [];
  /** Records a dispatch that writes zeros into a (set by the kernels module). */
  zeroFill: ((a: GpuArray) => void) | null = null;
  readonly stats: GpuStats = { dispatches: 0, submits: 0, reads: 0, buffersCreated: 0, pipelines: 0 };
  /** Errors the device reported (validation, out of memory), newest last. */
  readonly errors: string[] = [];

  constructor(readonly device: GPUDevice) {
    this.uniforms = device.createBuffer({ size: SLOTS * SLOT_WORDS * 4, usage: USAGE.UNIFORM | USAGE.COPY_DST });
    device.addEventListener?.("uncapturederror", (e) => {
      this.errors.push(e.error.message);
    });
  }

  // ---- storage ----

  private take(bytes: number): { buffer: GPUBuffer; recycled: boolean } {
    const cls = sizeClass(bytes);
    const list = this.free.get(cls);
    const got = list?.pop();
    const buffer =
      got ?? this.device.createBuffer({ size: cls, usage: USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST });
    if (!got) this.stats.buffersCreated++;
    if (this.unscopedDepth === 0) this.frames[this.frames.length - 1]?.add(buffer);
    return { buffer, recycled: got !== undefined };
  }

  /** n float32 values, zeroed. */
  alloc(n: number): GpuArray {
    const { buffer, recycled } = this.take(Math.max(4 * n, 4));
    const a = new GpuArray(buffer, 0, n);
    a.pendingZero = recycled && n > 0;
    return a;
  }

  /** n float32 values whose contents the caller overwrites completely (temporaries, upload targets). */
  allocUninitialized(n: number): GpuArray {
    return new GpuArray(this.take(Math.max(4 * n, 4)).buffer, 0, n);
  }

  /** Returns a temporary's buffer to the pool now (later dispatches that reuse it run after its readers). */
  recycle(a: Bindable): void {
    for (const fr of this.frames) fr.delete(a.buffer);
    this.pushFree(a.buffer);
  }

  private pushFree(b: GPUBuffer): void {
    const list = this.free.get(b.size);
    if (list) list.push(b);
    else this.free.set(b.size, [b]);
  }

  /** n int32 indices, contents to be written by a kernel or an upload. */
  allocIndices(n: number): GpuIndexArray {
    return new GpuIndexArray(this.take(Math.max(4 * n, 4)).buffer, 0, n);
  }

  /** Host indices → new index storage. */
  uploadIndices(values: Int32Array): GpuIndexArray {
    const a = this.allocIndices(values.length);
    const v = values.buffer instanceof ArrayBuffer ? values : values.slice();
    this.write(a, v);
    return a;
  }

  /** Host values → new storage. */
  upload(values: Data): GpuArray {
    const a = this.allocUninitialized(values.length);
    const f32 =
      values instanceof Float32Array && values.buffer instanceof ArrayBuffer ? values : Float32Array.from(values);
    this.write(a, f32);
    return a;
  }

  /** Writes host bytes into a, ordered after everything recorded so far. */
  private write(a: Bindable, f32: Float32Array | Int32Array): void {
    if (a instanceof GpuArray) a.pendingZero = false;
    if (f32.length === 0) return;
    if (!this.touched.has(a.buffer)) {
      this.device.queue.writeBuffer(a.buffer, a.byteOffset, f32.buffer, f32.byteOffset, f32.byteLength);
      return;
    }
    const st = this.device.createBuffer({ size: f32.byteLength, usage: USAGE.COPY_SRC, mappedAtCreation: true });
    new Uint8Array(st.getMappedRange()).set(new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength));
    st.unmap();
    this.staging.push(st);
    this.copyEncoder().copyBufferToBuffer(st, 0, a.buffer, a.byteOffset, f32.byteLength);
  }

  /** Flushes the queued work and copies a's bytes back. */
  private async readBytes(a: Bindable): Promise<ArrayBuffer> {
    this.stats.reads++;
    if (a.length === 0) return new ArrayBuffer(0);
    this.materialize(a);
    const bytes = a.length * 4;
    const st = this.device.createBuffer({ size: bytes, usage: USAGE.MAP_READ | USAGE.COPY_DST });
    this.copyEncoder().copyBufferToBuffer(a.buffer, a.byteOffset, st, 0, bytes);
    this.flush();
    await st.mapAsync(MAP_READ_MODE);
    const out = st.getMappedRange().slice(0);
    st.unmap();
    st.destroy();
    if (this.errors.length > 0) throw new Error(`webgpu: ${this.errors[this.errors.length - 1]}`);
    return out;
  }

  /** Flushes the queued work and copies a's values back. */
  async read(a: GpuArray): Promise<Float32Array> {
    return new Float32Array(await this.readBytes(a));
  }

  /** Flushes the queued work and copies indices back (tests). */
  async readIndices(a: GpuIndexArray): Promise<Int32Array> {
    return new Int32Array(await this.readBytes(a));
  }

  // ---- scopes ----

  /**
   * Runs fn in a storage scope: every buffer allocated inside goes back to the pool at the end, except those of
   * `keep(result)` (the result's storages), which move to the enclosing scope.
   */
  scope<T>(fn: () => T, keep: (r: T) => Iterable<Bindable>): T {
    const frame = new Set<GPUBuffer>();
    this.frames.push(frame);
    let r: T;
    try {
      r = fn();
    } catch (e) {
      this.frames.pop();
      for (const b of frame) this.pushFree(b);
      throw e;
    }
    this.frames.pop();
    const parent = this.frames[this.frames.length - 1];
    for (const a of keep(r)) {
      if (frame.delete(a.buffer)) parent?.add(a.buffer);
    }
    for (const b of frame) this.pushFree(b);
    return r;
  }

  /** Runs fn with allocations outside any scope (kept until garbage-collected). */
  unscoped<T>(fn: () => T): T {
    this.unscopedDepth++;
    try {
      return fn();
    } finally {
      this.unscopedDepth--;
    }
  }

  /** Buffers in the pool and held by open scopes (tests check that steps do not leak). */
  usage(): { pooled: number; scoped: number } {
    let pooled = 0;
    for (const l of this.free.values()) pooled += l.length;
    return { pooled, scoped: this.frames.reduce((s, f) => s + f.size, 0) };
  }

  // ---- recording ----

  private copyEncoder(): GPUCommandEncoder {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    this.enc ??= this.device.createCommandEncoder();
    return this.enc;
  }

  private pipeline(key: string, code: () => string): GPUComputePipeline {
    let p = this.pipelines.get(key);
    if (!p) {
      const module = this.device.createShaderModule({ code: code(), label: key });
      p = this.device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" }, label: key });
      this.pipelines.set(key, p);
      this.stats.pipelines++;
    }
    return p;
  }

  /** The compiled pipeline for key (tests check shader compilation messages through it). */
  pipelineFor(key: string, code: () => string): GPUComputePipeline {
    return this.pipeline(key, code);
  }

  /** Writes the zeros a recycled array still owes (before anything reads it). */
  private materialize(a: Bindable): void {
    if (a instanceof GpuArray && a.pendingZero) {
      a.pendingZero = false;
      if (!this.zeroFill) throw new Error("webgpu: no zero-fill kernel");
      this.zeroFill(a);
    }
  }

  /** Copies a into a fresh temporary (for an operand that aliases an output of the same dispatch). */
  private copyOf(a: GpuArray): GpuArray {
    this.materialize(a);
    const t = this.allocUninitialized(a.length);
    this.copyEncoder().copyBufferToBuffer(a.buffer, a.byteOffset, t.buffer, 0, a.length * 4);
    this.touched.add(t.buffer);
    return t;
  }

  /** Records one dispatch in the open encoder. */
  dispatch(d: Dispatch): void {
    if (d.params.length > SLOT_WORDS) throw new RangeError(`${d.key}: ${d.params.length} parameters`);
    for (const r of [...d.reads, ...(d.extra ?? [])]) this.materialize(r);
    for (const w of d.writes) if (w instanceof GpuArray) w.pendingZero = false; // kernels write outputs completely
    if (this.slot >= SLOTS) this.flush();
    const writeBufs = new Set(d.writes.map((w) => w.buffer));
    const temps: GpuArray[] = [];
    const reads = d.reads.map((r) => {
      if (!writeBufs.has(r.buffer)) return r;
      const t = this.copyOf(r);
      temps.push(t);
      return t;
    });
    const pipe = this.pipeline(d.key, d.code);
    const base = this.slot * SLOT_WORDS;
    d.params.forEach((p, i) => {
      if (typeof p === "number") this.uniformData[base + i] = p >>> 0;
      else this.uniformFloats[base + i] = p.f;
    });
    const entries: GPUBindGroupEntry[] = [
      { binding: 0, resource: { buffer: this.uniforms, offset: this.slot * SLOT_WORDS * 4, size: SLOT_WORDS * 4 } },
    ];
    const all = [...reads, ...d.writes, ...(d.extra ?? [])];
    all.forEach((a, i) =>
      entries.push({
        binding: i + 1,
        resource: { buffer: a.buffer, offset: a.byteOffset, size: Math.max(4, a.length * 4) },
      }),
    );
    this.slot++;
    const bg = this.device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries });
    this.enc ??= this.device.createCommandEncoder();
    this.pass ??= this.enc.beginComputePass();
    this.pass.setPipeline(pipe);
    this.pass.setBindGroup(0, bg);
    this.pass.dispatchWorkgroups(d.groups[0], d.groups[1]);
    for (const a of all) this.touched.add(a.buffer);
    for (const t of temps) this.recycle(t);
    this.stats.dispatches++;
  }

  /** Submits everything recorded so far. */
  flush(): void {
    if (!this.enc) return;
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    if (this.slot > 0)
      this.device.queue.writeBuffer(this.uniforms, 0, this.uniformData.buffer, 0, this.slot * SLOT_WORDS * 4);
    this.device.queue.submit([this.enc.finish()]);
    this.stats.submits++;
    this.enc = null;
    this.slot = 0;
    this.touched.clear();
    for (const s of this.staging) s.destroy();
    this.staging = [];
  }
}
