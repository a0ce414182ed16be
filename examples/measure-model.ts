/**
 * Exact and estimated GC of a saved model: a model directory (model.json + weights.safetensors) or an ONNX file.
 *
 *   node dist/examples/measure-model.js --model test/fixtures/torch/mlp_gelu --data mnist --limit 64
 *   node dist/examples/measure-model.js --model test/fixtures/torch/mlp_gelu/model.onnx --data mnist --limit 64
 *   node dist/examples/measure-model.js          # saves a fresh MLP for `moons` to a temporary directory first
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  compileNetwork,
  DEFAULT_INIT,
  estimateGC,
  exactGC,
  initParams,
  isOnnxPath,
  loadDataset,
  loadModel,
  loadOnnx,
  saveModel,
  type ModelSpec,
} from "geometric-complexity";

const { values } = parseArgs({
  options: {
    model: { type: "string" },
    data: { type: "string", default: "moons" },
    limit: { type: "string", default: "500" },
    probes: { type: "string", default: "8" },
  },
});
const data = loadDataset(values.data, { split: "test", seed: 0, limit: Number(values.limit) });

let path = values.model;
let scratch: string | undefined;
if (path === undefined) {
  // A He-initialized MLP sized to the data, written in the saved-model format (what `gcx train` leaves in model/).
  const spec: ModelSpec = { kind: "mlp", sizes: [2, 64, 64, data.numOutputs], activation: "relu" };
  const net = compileNetwork(spec);
  scratch = mkdtempSync(join(tmpdir(), "gcx-example-"));
  path = join(scratch, "model");
  saveModel(path, spec, initParams(net, DEFAULT_INIT));
}

// The same call works for PyTorch exports: loadOnnx reads a torch.onnx.export file, loadModel a model directory.
const { net, params } = isOnnxPath(path) ? loadOnnx(path) : loadModel(path);
const exact = exactGC(net, params, data);
const estimate = estimateGC(net, params, data, { probes: Number(values.probes), seed: 0 });

console.log(`model: ${path}`);
console.log(`exact GC over ${exact.n} ${values.data} examples: ${exact.gc.toPrecision(8)} (${exact.mode} mode)`);
console.log(
  `estimated GC with ${estimate.probes} probes per example: ${estimate.gc.toPrecision(8)} ± ${estimate.stderr?.toPrecision(3)}`,
);
if (scratch) rmSync(scratch, { recursive: true, force: true });
