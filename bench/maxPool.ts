/**
 * Before/after of max pooling on the benchmark CNN's shapes (`node dist/bench/maxPool.js [reps]`): forward and
 * backward of the old path (argmax kernel, then a JS gather; JS scatter-add backward) against the kernel's own
 * values and its wasm scatter (ops.maxPool2d through the maxPool / maxPoolBackward kernels), interleaved in one process inside storage scopes as a
 * training step runs them. Prints medians of wall and CPU time (this process) per forward + backward.
 */
import { useCliKernels } from "./cliKernels.js";
import { Tensor } from "../src/engine/tensor.js";
import { scope } from "../src/engine/backend.js";
import * as op from "../src/engine/ops.js";
import * as K from "../src/engine/kernels.js";
import { grad } from "../src/engine/autograd.js";
import { Rng } from "../src/util/rng.js";

useCliKernels();
const reps = Number(process.argv[2] ?? 15);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];

for (const shape of [
  [128, 28, 28, 32],
  [128, 14, 14, 64],
]) {
  const rng = new Rng(0);
  const x0 = new Tensor(
    Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()),
    shape,
  );
  const geom = K.windowGeometry(shape, 2, 2, 2, "valid");
  const out = [geom.n, geom.outH, geom.outW, geom.c];
  const paths: [string, (x: Tensor) => Tensor][] = [
    ["argmax + JS gather / scatter-add", (x) => op.gather(x, K.maxPoolArgmax(x.data, geom), out)],
    ["kernel values + wasm scatter", (x) => op.maxPool2d(x, 2, 2)],
  ];
  const wall = paths.map(() => [] as number[]),
    cpu = paths.map(() => [] as number[]);
  for (let r = -2; r < reps; r++) {
    paths.forEach(([, pool], i) => {
      const c0 = process.cpuUsage(),
        t0 = performance.now();
      scope(() => {
        const x = x0.variable();
        const y = pool(x);
        grad(op.sum(y), [x]);
      });
      const dt = performance.now() - t0,
        c = process.cpuUsage(c0);
      if (r >= 0) {
        wall[i].push(dt);
        cpu[i].push((c.user + c.system) / 1000);
      }
    });
  }
  for (const [i, [name]] of paths.entries())
    console.log(
      `max pool 2x2 [${shape.join("x")}] forward + backward, ${name}: ${median(wall[i]).toFixed(2)} ms wall, ` +
        `${median(cpu[i]).toFixed(2)} ms CPU (median of ${reps})`,
    );
}
process.exit(0);
