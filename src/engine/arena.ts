/**
 * Scoped storage in WebAssembly linear memory: a stack (bump) allocator with deterministic release.
 *
 * Inside `run(fn)` float32 storage is carved from the kernels' memory, so kernels read and write tensors in place;
 * when fn returns, everything it allocated is released at once by resetting the stack top (scopes nest). Memory
 * that is shared (a SharedArrayBuffer) grows without detaching existing views, which is what lets tensors live there;
 * with non-shared memory (browsers without cross-origin isolation) nothing is resident and only the operands of one
 * kernel call are staged (copied in and out).
 *
 * Use after release is a bug this design makes possible (a view kept past its scope). `GCX_ARENA_POISON=1` fills
 * released memory with NaN so tests expose any such view; scopes copy their results out (see backend.ts `scope`).
 * It also fills allocations made without zeroing (op outputs their kernels write completely) with NaN, so a value
 * such a kernel leaves unwritten shows up as NaN instead of a stale number.
 */
import type { Data } from "./tensor.js";

/** Arrays a kernel call can take: float32 values or int32 indices (float64 stays with the JS kernels). */
export type Staged = Data | Int32Array;

function viewLike(a: Staged, buffer: ArrayBufferLike, at: number): Float32Array | Int32Array {
  return a instanceof Int32Array ? new Int32Array(buffer, at, a.length) : new Float32Array(buffer, at, a.length);
}

/** dst.set(src) for arrays of the same element type (which the staging guarantees). */
function copyInto(dst: Staged, src: Staged): void {
  (dst as Float32Array).set(src);
}

/** wasm32 addresses stop at 4 GiB; stay below, leaving room for staging. */
const CEILING = 3.75 * 2 ** 30;
const PAGE = 65536;

/** A block of kept results (runKept): freed blocks are reused or given back to the scopes. */
interface KeptBlock {
  at: number;
  bytes: number;
  live: boolean;
}

export class Arena {
  private top: number;
  /** Kept blocks in address order, all below the top whenever no scope is open. */
  private readonly kept: KeptBlock[] = [];
  private depth = 0;
  private readonly buffers = new Set<ArrayBufferLike>();
  private full = false;
  /** High-water mark in bytes above the base (for tests and the memory budget). */
  peak = 0;

  constructor(
    readonly memory: WebAssembly.Memory,
    readonly resident: boolean,
    private readonly base: number,
    private readonly poison = false,
    private readonly onFull: (bytes: number) => void = () => {},
    /** Zeroes n float32 values at a byte offset (a native fill; typed-array fill on shared memory is slow). */
    private readonly zero: ((ptr: number, n: number) => void) | null = null,
    /** Copies n bytes within this memory, regions may overlap (a native copy, for the same reason). */
    private readonly copy: ((dst: number, src: number, n: number) => void) | null = null,
  ) {
    this.top = base;
    this.buffers.add(memory.buffer);
  }

  /** True when a is a view of this memory (possibly taken before a growth). */
  owns(a: Staged): boolean {
    return this.buffers.has(a.buffer);
  }

  get inScope(): boolean {
    return this.depth > 0 && this.resident;
  }

  /** Bytes in use above the base. */
  get used(): number {
    return this.top - this.base;
  }

  /** Reserves bytes (16-byte aligned); null when the memory cannot hold them. */
  reserve(bytes: number): number | null {
    // Plain arithmetic, not `& ~15`: offsets pass 2 GiB, where 32-bit bitwise operators would wrap negative.
    const at = Math.ceil(this.top / 16) * 16;
    const end = at + bytes;
    if (end > CEILING) {
      if (!this.full) this.onFull(end - this.base);
      this.full = true;
      return null;
    }
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      try {
        this.memory.grow(Math.ceil((end - have) / PAGE));
      } catch {
        if (!this.full) this.onFull(end - this.base);
        this.full = true;
        return null;
      }
      this.buffers.add(this.memory.buffer);
    }
    this.top = end;
    if (end - this.base > this.peak) this.peak = end - this.base;
    return at;
  }

  /**
   * A float32 view of n values at a fresh position, or null when full: zeroed unless `zero` is false, when its
   * contents are whatever the memory held (NaN with poisoning on, so tests expose a value never written).
   */
  f32(n: number, zero = true): Float32Array | null {
    const at = this.reserve(n * 4);
    if (at === null) return null;
    const v = new Float32Array(this.memory.buffer, at, n);
    if (zero) {
      if (this.zero && n >= 64) this.zero(at, n);
      else v.fill(0);
    } else if (this.poison) v.fill(NaN);
    return v;
  }

  /**
   * Resident storage for a tensor inside a scope, or null (outside a scope, not resident, or full); zeroed unless
   * `zero` is false (an output its kernel writes completely).
   */
  alloc(n: number, zero = true): Float32Array | null {
    return this.inScope ? this.f32(n, zero) : null;
  }

  /** Current stack top, to release back to. */
  mark(): number {
    return this.top;
  }

  /** Releases everything reserved since `mark`. */
  release(mark: number): void {
    if (this.poison && this.top > mark)
      new Float32Array(this.memory.buffer, mark, Math.floor((this.top - mark) / 4)).fill(NaN);
    this.top = mark;
    this.full = false;
  }

  /** Runs fn with scoped allocation suspended: what it allocates lives on the JS heap (caches that outlive a scope). */
  outside<T>(fn: () => T): T {
    const d = this.depth;
    this.depth = 0;
    try {
      return fn();
    } finally {
      this.depth = d;
    }
  }

  /** Runs fn as a scope; `finish` turns its result into one that does not reference released memory. */
  run<T>(fn: () => T, finish: (r: T) => T): T {
    const mark = this.mark();
    this.depth++;
    try {
      return finish(fn());
    } finally {
      this.depth--;
      this.release(mark);
    }
  }

  /**
   * Runs fn as a scope whose result stays resident: every array of this memory the result holds (`collect` lists
   * them, `rebuild` swaps each for its new view) is copied into one kept block, which outlives the scope until
   * `drop()` frees it; nothing is copied to the JS heap. A freed block is reused by a later kept result that fits
   * (first fit, lowest address), and freed blocks at the top give their memory back to the scopes, so a loop that
   * keeps each step's state and drops the previous one stays at two blocks (decision 0007, addendum). Where
   * nothing can stay resident (non-shared memory, inside another scope, memory full) it is `run(fn, finish)` and
   * `drop` does nothing.
   */
  runKept<T>(
    fn: () => T,
    collect: (r: T) => Staged[],
    rebuild: (r: T, moved: (a: Staged) => Staged) => T,
    finish: (r: T) => T,
  ): { value: T; drop: () => void } {
    const none = () => {};
    if (!this.resident || this.depth > 0) return { value: this.run(fn, finish), drop: none };
    this.trim();
    const mark = this.mark();
    this.depth++;
    let r: T;
    try {
      r = fn();
    } catch (e) {
      this.depth--;
      this.release(mark);
      throw e;
    }
    this.depth--;
    try {
      // Layout of the block: each distinct array of this memory at a 16-byte aligned offset.
      const place = new Map<Staged, number>();
      let bytes = 0;
      for (const a of collect(r)) {
        if (place.has(a) || !this.owns(a)) continue;
        place.set(a, bytes);
        bytes += Math.ceil((a.length * 4) / 16) * 16;
      }
      // Nothing to keep (only JS-heap values) or no room: the plain scope's result.
      const plain = () => {
        const value = finish(r);
        this.release(mark);
        return { value, drop: none };
      };
      if (bytes === 0) return plain();
      const hole = this.kept.find((b) => !b.live && b.bytes >= bytes);
      // Into a freed block directly (it lies below the scope); else through a staging copy above the scope's top,
      // since the block's final place [mark, mark + bytes) overlaps the arrays being moved.
      const staging = hole ? null : this.reserve(bytes);
      if (!hole && staging === null) return plain();
      const at = hole ? hole.at : mark;
      const via = staging ?? at;
      const mem = new Uint8Array(this.memory.buffer);
      const move = this.copy ?? ((dst: number, src: number, n: number) => mem.copyWithin(dst, src, src + n));
      for (const [a, off] of place) move(via + off, a.byteOffset, a.length * 4);
      if (staging !== null) move(at, staging, bytes);
      const value = rebuild(r, (a) => (place.has(a) ? viewLike(a, this.memory.buffer, at + place.get(a)!) : a));
      let block: KeptBlock;
      if (hole) {
        this.release(mark);
        block = { at, bytes, live: true };
        const rest = hole.bytes - bytes;
        this.kept.splice(
          this.kept.indexOf(hole),
          1,
          block,
          ...(rest > 0 ? [{ at: at + bytes, bytes: rest, live: false }] : []),
        );
      } else {
        this.release(at + bytes);
        block = { at, bytes, live: true };
        this.kept.push(block);
      }
      return { value, drop: () => this.dropKept(block) };
    } catch (e) {
      this.release(mark);
      throw e;
    }
  }

  /** Frees a kept block (merging it with free neighbours) and, outside scopes, trims free blocks at the top. */
  private dropKept(block: KeptBlock): void {
    if (!block.live) return;
    block.live = false;
    if (this.poison) new Float32Array(this.memory.buffer, block.at, block.bytes / 4).fill(NaN);
    for (let i = 0; i + 1 < this.kept.length;) {
      const b = this.kept[i],
        next = this.kept[i + 1];
      if (!b.live && !next.live && b.at + b.bytes === next.at) {
        b.bytes += next.bytes;
        this.kept.splice(i + 1, 1);
      } else i++;
    }
    if (this.depth === 0) this.trim();
  }

  /** Gives free kept blocks at the top back to the scopes (only outside scopes, where the top is theirs). */
  private trim(): void {
    while (this.kept.length > 0 && !this.kept[this.kept.length - 1].live && this.top === this.keptEnd()) {
      this.top = this.kept.pop()!.at;
    }
  }

  private keptEnd(): number {
    const b = this.kept[this.kept.length - 1];
    return b ? b.at + b.bytes : this.base;
  }

  /** Bytes held by kept blocks that are still live (tests check that a loop does not leak them). */
  get keptBytes(): number {
    return this.kept.reduce((s, b) => s + (b.live ? b.bytes : 0), 0);
  }

  /**
   * Stages operands for one kernel call: each array already in this memory is used in place, others are copied
   * in (inputs, inouts) and back out (outputs, inouts). Returns their offsets and a function that copies staged outputs back and releases the staging memory;
   * null when the memory cannot hold them.
   */
  stage(
    inputs: readonly Staged[],
    outputs: readonly Staged[],
    inouts: readonly Staged[] = [],
  ): { ptrs: number[]; done: () => void } | null {
    const mark = this.mark();
    const ptrs: number[] = [];
    const copies: [Staged, number][] = [];
    const nIn = inputs.length,
      nOut = outputs.length;
    // Order of ptrs: inputs, outputs, inouts (read and written in place).
    for (const [i, a] of [...inputs, ...outputs, ...inouts].entries()) {
      if (!(a instanceof Float32Array || a instanceof Int32Array)) {
        this.release(mark);
        return null;
      }
      if (this.owns(a)) {
        ptrs.push(a.byteOffset);
        continue;
      }
      const at = this.reserve(a.length * 4);
      if (at === null) {
        this.release(mark);
        return null;
      }
      if (i < nIn || i >= nIn + nOut) copyInto(viewLike(a, this.memory.buffer, at), a);
      if (i >= nIn) copies.push([a, at]);
      ptrs.push(at);
    }
    return {
      ptrs,
      done: () => {
        for (const [a, at] of copies) copyInto(a, viewLike(a, this.memory.buffer, at));
        this.release(mark);
      },
    };
  }
}
