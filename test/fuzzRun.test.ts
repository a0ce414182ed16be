/**
 * Property tests for the run-directory parsers (issue 9): random and mutated checkpoint pointers, checkpoint
 * states, state tensors and metrics files either parse or fail with a one-line UserError — never another exception.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseTrainConfig } from "../src/training/config.js";
import { train, setupRun } from "../src/training/trainer.js";
import { checkCheckpointState, loadCheckpoint } from "../src/training/checkpoint.js";
import { parseMetrics } from "../src/training/metricsFile.js";
import { UserError } from "../src/util/errors.js";

const SEED = 20261127;

/** Runs `fn`; passes when it returns or throws a one-line UserError. */
function parsesOrUserError(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch (e) {
    if (!(e instanceof UserError))
      throw new Error(`not a UserError: ${(e as Error)?.stack ?? String(e)}`, { cause: e });
    if (e.message.includes("\n")) throw new Error(`multi-line message: ${e.message}`, { cause: e });
    return true;
  }
}

const cfg = parseTrainConfig({
  data: "moons",
  model: "mlp:2-4-2",
  steps: 20,
  logEvery: 10,
  checkpointEvery: 10,
  evalSize: 50,
  gcSize: 16,
  optimizer: "adam",
  spectral: 0.01,
});
const base = mkdtempSync(join(tmpdir(), "gcx-fuzz-run-"));
train(cfg, join(base, "run"));
const CK = "checkpoints/step-00000020";
const expected = setupRun(cfg).initial;
const files = {
  latest: readFileSync(join(base, "run", "latest.json")),
  state: readFileSync(join(base, "run", CK, "state.json")),
  tensors: readFileSync(join(base, "run", CK, "state.safetensors")),
};

function withDamaged(file: string, bytes: Uint8Array | string, i: number): string {
  const dir = join(base, `case-${i}`);
  cpSync(join(base, "run"), dir, { recursive: true });
  writeFileSync(join(dir, file), bytes);
  return dir;
}

let counter = 0;
const load = (dir: string) => {
  const ck = loadCheckpoint(dir);
  if (ck) checkCheckpointState(ck, expected);
  return ck;
};

const jsonValue = fc.jsonValue({ maxDepth: 3 });

test("an intact checkpoint loads and matches the run's state", () => {
  const ck = load(join(base, "run"));
  assert.equal(ck?.step, 20);
});

test("fuzz: latest.json with random JSON, random bytes or mutated fields", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        jsonValue.map((v) => JSON.stringify(v)),
        fc.uint8Array({ maxLength: 64 }),
        fc
          .record({
            step: fc.oneof(fc.integer(), fc.double(), fc.constant(20)),
            dir: fc.oneof(fc.string(), fc.constant(CK), fc.constant("../" + CK)),
          })
          .map((v) => JSON.stringify(v)),
      ),
      (bytes) => parsesOrUserError(() => load(withDamaged("latest.json", bytes, counter++))),
    ),
    { seed: SEED, numRuns: 60 },
  );
});

test("fuzz: state.json with random JSON or mutated fields", () => {
  const good = JSON.parse(files.state.toString("utf8")) as Record<string, unknown>;
  const keys = Object.keys(good);
  fc.assert(
    fc.property(
      fc.oneof(
        jsonValue.map((v) => JSON.stringify(v)),
        fc.tuple(fc.constantFrom(...keys, "extra"), jsonValue).map(([k, v]) => JSON.stringify({ ...good, [k]: v })),
        fc.nat({ max: files.state.length }).map((n) => files.state.subarray(0, n)),
      ),
      (bytes) => parsesOrUserError(() => load(withDamaged(`${CK}/state.json`, bytes, counter++))),
    ),
    { seed: SEED, numRuns: 80 },
  );
});

test("fuzz: state.safetensors with flipped bytes or truncation", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc
          .array(fc.tuple(fc.nat({ max: files.tensors.length - 1 }), fc.integer({ min: 0, max: 255 })), {
            minLength: 1,
            maxLength: 6,
          })
          .map((flips) => {
            const b = Uint8Array.from(files.tensors);
            for (const [i, v] of flips) b[i] = v;
            return b;
          }),
        fc.nat({ max: files.tensors.length }).map((n) => files.tensors.subarray(0, n)),
      ),
      (bytes) => parsesOrUserError(() => load(withDamaged(`${CK}/state.safetensors`, bytes, counter++))),
    ),
    { seed: SEED, numRuns: 80 },
  );
});

test("fuzz: metrics.jsonl text is parsed or named as damaged, and a torn tail is dropped", () => {
  const good = readFileSync(join(base, "run", "metrics.jsonl"), "utf8");
  const lines = fc.array(
    fc.oneof(
      jsonValue.map((v) => JSON.stringify(v)),
      fc.string({ maxLength: 20 }),
      fc.constantFrom(...good.split("\n")),
    ),
    { maxLength: 8 },
  );
  fc.assert(
    fc.property(
      fc.oneof(
        fc.tuple(lines, fc.boolean()).map(([l, nl]) => l.join("\n") + (nl ? "\n" : "")),
        fc.nat({ max: good.length }).map((n) => good.slice(0, n)),
      ),
      (text) => {
        parsesOrUserError(() => {
          const { records } = parseMetrics(text, "metrics.jsonl");
          for (const r of records) assert.ok(Number.isSafeInteger(r.step));
        });
        return true;
      },
    ),
    { seed: SEED, numRuns: 300 },
  );
  // Every prefix of a good file keeps exactly the complete lines.
  for (let n = 0; n <= good.length; n += 37) {
    const { records } = parseMetrics(good.slice(0, n), "m");
    assert.equal(records.length, good.slice(0, n).split("\n").length - 1);
  }
});
