/** The CLI on malformed model files: one "gcx: error:" line naming the file, exit status 2, never a stack trace. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { compileNetwork } from "../src/models/network.js";
import { initParams } from "../src/models/init.js";
import { saveModel, MODEL_FILE, WEIGHTS_FILE } from "../src/models/io.js";
import type { ModelSpec } from "../src/models/spec.js";

const main = join(dirname(fileURLToPath(import.meta.url)), "..", "src", "cli", "main.js");
const gcx = (...args: string[]) => spawnSync(process.execPath, [main, ...args], { encoding: "utf8" });

function header(h: unknown, dataBytes: number): Uint8Array {
  const text = Buffer.from(JSON.stringify(h));
  const out = new Uint8Array(8 + text.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  return out;
}

test("gcx measure on malformed model directories: one error line naming the file, exit 2", () => {
  const spec: ModelSpec = { kind: "mlp", sizes: [2, 3, 2], activation: "tanh" };
  const params = initParams(compileNetwork(spec), { scheme: "he", distribution: "normal", scale: 1, bias: 0, seed: 1 });
  const fresh = () => {
    const dir = mkdtempSync(join(tmpdir(), "gcx-clifmt-"));
    saveModel(dir, spec, params);
    return dir;
  };
  const cases: [string, (dir: string) => void, (dir: string) => RegExp][] = [
    [
      "weights are a directory",
      (d) => {
        rmSync(join(d, WEIGHTS_FILE));
        mkdirSync(join(d, WEIGHTS_FILE));
      },
      (d) => new RegExp(`cannot read ${esc(join(d, WEIGHTS_FILE))}: it is a directory`),
    ],
    [
      "model.json is a directory",
      (d) => {
        rmSync(join(d, MODEL_FILE));
        mkdirSync(join(d, MODEL_FILE));
      },
      (d) => new RegExp(`cannot read ${esc(join(d, MODEL_FILE))}: it is a directory`),
    ],
    [
      "negative offsets",
      (d) =>
        writeFileSync(
          join(d, WEIGHTS_FILE),
          header({ "layers.0.weight": { dtype: "F32", shape: [2], data_offsets: [-8, 0] } }, 0),
        ),
      (d) =>
        new RegExp(
          `^${esc(join(d, WEIGHTS_FILE))}: not a valid safetensors file \\(tensor "layers.0.weight" has data_offsets \\[-8,0\\]`,
        ),
    ],
    [
      "header is an array",
      (d) => writeFileSync(join(d, WEIGHTS_FILE), header([], 0)),
      (d) =>
        new RegExp(
          `^${esc(join(d, WEIGHTS_FILE))}: not a valid safetensors file \\(header does not start with "\\{"\\)`,
        ),
    ],
    [
      "U64 weights",
      (d) =>
        writeFileSync(
          join(d, WEIGHTS_FILE),
          header({ "layers.0.weight": { dtype: "U64", shape: [1], data_offsets: [0, 8] } }, 8),
        ),
      (d) => new RegExp(`^${esc(join(d, WEIGHTS_FILE))}: tensor "layers.0.weight" has unsupported dtype U64`),
    ],
    [
      "unknown key in model.json",
      (d) => writeFileSync(join(d, MODEL_FILE), JSON.stringify({ ...spec, dropout: 0.5 })),
      (d) =>
        new RegExp(`^${esc(join(d, MODEL_FILE))}: invalid model description: \\(root\\): Unrecognized key: "dropout"`),
    ],
    [
      "model.json JSON error over lines",
      (d) => writeFileSync(join(d, MODEL_FILE), '{"kind":\n"mlp",\n oops}'),
      (d) => new RegExp(`^${esc(join(d, MODEL_FILE))}: malformed JSON`),
    ],
    [
      "a kernel larger than the image",
      (d) =>
        writeFileSync(
          join(d, MODEL_FILE),
          JSON.stringify({
            kind: "cnn",
            input: [2, 2, 1],
            layers: [
              { type: "conv", filters: 1, kernel: 3, padding: "valid" },
              { type: "dense", units: 2 },
            ],
          }),
        ),
      (d) =>
        new RegExp(
          `^${esc(join(d, MODEL_FILE))}: invalid model description: layers.0 \\(conv\\) kernel 3 does not fit`,
        ),
    ],
  ];
  for (const [what, damage, expected] of cases) {
    const dir = fresh();
    damage(dir);
    const r = gcx("measure", "--model", dir, "--data", "moons", "--limit", "20", "--json");
    assert.equal(r.status, 2, `${what}: exit ${r.status}\n${r.stderr}`);
    const lines = r.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1, `${what}: ${r.stderr}`);
    assert.match(lines[0].replace(/^gcx: error: /, ""), expected(dir), what);
    assert.ok(lines[0].startsWith("gcx: error: "), what);
  }
});

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
