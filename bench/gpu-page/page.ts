/**
 * Browser side of `npm run bench:gpu -- --smoke` in Chromium (bench/gpuBrowser.ts): finds a WebGPU adapter
 * (software ones accepted: the smoke checks correctness only) and runs bench/gpuTasks.ts's smoke comparison.
 * Exposes `globalThis.gcxBenchSmoke.run()`.
 */
import { requestWebGPU } from "../../src/engine/backends/webgpu/index.js";
import { smokeCompare, type SmokeResult } from "../gpuTasks.js";

/** The adapter's description (or why there is none) and each smoke comparison. */
async function run(): Promise<{ adapter: unknown; results: SmokeResult[]; errors: string[] }> {
  const r = await requestWebGPU({ allowSoftware: true });
  if (!r.backend) return { adapter: r.reason, results: [], errors: [] };
  const results = await smokeCompare();
  return { adapter: r.backend.adapter, results, errors: [...r.backend.ctx.errors] };
}

(globalThis as unknown as { gcxBenchSmoke: { run: typeof run } }).gcxBenchSmoke = { run };
