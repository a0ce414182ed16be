/**
 * Before/after of BatchNorm with fixed statistics on ResNet-8's shapes (`node dist/bench/batchNorm.js [reps]`): the
 * broadcast-op chain (sub, mul, add) against elementwise.ts batchNorm (one bnApply kernel), interleaved in one
 * process inside storage scopes; forward (+ input gradient, as the exact GC runs it). Medians of wall and CPU time.
 */
import { useCliKernels } from "./cliKernels.js";
import { Tensor } from "../src/engine/tensor.js";
import { scope } from "../src/engine/backend.js";
import * as op from "../src/engine/ops.js";
import * as E from "../src/engine/elementwise.js";
import { grad } from "../src/engine/autograd.js";
import { Rng } from "../src/util/rng.js";

useCliKernels();
/** γ/√(var + eps) as batchNorm forms it. */
const bnScale = (variance: Tensor, gamma: Tensor): Tensor =>
  E.mulB(gamma, E.powScalar(op.affine(variance, 1, 1e-5), -0.5));
const reps = Number(process.argv[2] ?? 15);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const rng = new Rng(0);
const rand = (n: number, f: (v: number) => number = (v) => v) =>
  Float32Array.from({ length: n }, () => f(rng.normal()));

for (const shape of [
  [128, 28, 28, 16],
  [128, 14, 14, 32],
  [128, 7, 7, 64],
]) {
  const C = shape[3],
    n = shape.reduce((a, b) => a * b, 1);
  const x0 = new Tensor(rand(n), shape);
  const [mean, gamma, beta] = [0, 1, 2].map(() => new Tensor(rand(C), [C]));
  const variance = new Tensor(
    rand(C, (v) => v * v + 0.1),
    [C],
  );
  const paths: [string, (x: Tensor) => Tensor][] = [
    ["broadcast ops", (x) => E.addB(E.mulB(E.subB(x, mean), bnScale(variance, gamma)), beta)],
    ["one kernel", (x) => E.batchNorm(x, mean, variance, gamma, beta, 1e-5)],
  ];
  for (const backward of [false, true]) {
    const wall = paths.map(() => [] as number[]),
      cpu = paths.map(() => [] as number[]);
    for (let r = -2; r < reps; r++)
      paths.forEach(([, bn], i) => {
        const c0 = process.cpuUsage(),
          t0 = performance.now();
        scope(() => {
          const x = backward ? x0.variable() : x0;
          const y = bn(x);
          if (backward) grad(op.sum(y), [x]);
        });
        const dt = performance.now() - t0,
          c = process.cpuUsage(c0);
        if (r >= 0) {
          wall[i].push(dt);
          cpu[i].push((c.user + c.system) / 1000);
        }
      });
    console.log(
      `BatchNorm [${shape.join("x")}] ${backward ? "forward + input gradient" : "forward"}: ` +
        paths
          .map(([name], i) => `${name} ${median(wall[i]).toFixed(2)} ms wall, ${median(cpu[i]).toFixed(2)} ms CPU`)
          .join("; ") +
        ` (median of ${reps})`,
    );
  }
}
process.exit(0);
