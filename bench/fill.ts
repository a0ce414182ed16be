/**
 * The arena's zeroing (`ew_fill(ptr, n, 0)`, run on every fresh tensor in a scope): the bulk-memory fill it takes
 * for +0 against the SIMD store loop that −0 (and any other value) still takes, interleaved in one process, CPU
 * time, at the sizes of the benchmark CNN's activations. `node dist/bench/fill.js [reps]`.
 */
import { setFlagsFromString } from "node:v8";
// A benchmark is a host program: it may enable relaxed SIMD on Node 20 (the library never does).
setFlagsFromString("--experimental-wasm-relaxed-simd");

import { readFileSync } from "node:fs";

type Fn = (...a: number[]) => number;
const bytes = readFileSync(new URL("../wasm/kernels-relaxed.wasm", import.meta.url));
const abort = () => {
  throw new Error("abort");
};
const e = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { abort } }).exports as Record<string, Fn> & {
  memory: WebAssembly.Memory;
};
const reps = Number(process.argv[2] ?? 9);
const base = (e.heapBase() + 1024 * 1024 + 63) & ~63;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];

for (const n of [3_211_264, 802_816, 65_536]) {
  const need = base + n * 4;
  const have = e.memory.buffer.byteLength;
  if (need > have) e.memory.grow(Math.ceil((need - have) / 65536));
  const calls = Math.max(20, Math.round(2e8 / (n * 4)));
  const variants: [string, () => number][] = [
    ["+0 (memory.fill)", () => e.ew_fill(base, n, 0)],
    ["−0 (store loop)", () => e.ew_fill(base, n, -0)],
  ];
  const cpu = variants.map(() => [] as number[]);
  for (let r = 0; r < reps; r++)
    variants.forEach(([, f], v) => {
      const c0 = process.cpuUsage();
      for (let i = 0; i < calls; i++) f();
      const c = process.cpuUsage(c0);
      cpu[v].push((c.user + c.system) / 1000 / calls);
    });
  const line = variants.map(([name], v) => {
    const ms = median(cpu[v]);
    return `${name} ${ms.toFixed(3)} ms (${((n * 4) / ms / 1e6).toFixed(1)} GB/s)`;
  });
  console.log(`fill ${((n * 4) / 2 ** 20).toFixed(2)} MiB, CPU time, median of ${reps}: ${line.join(", ")}`);
}
