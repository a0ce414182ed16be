/**
 * `gcx measure` and `gcx train` on a device backend (issue 12), in-process on the strict test backend: device
 * storage, synchronous reads throw, reads counted. Its kernels are the js backend's reference loops, so the numbers
 * are compared with the js backend's.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getBackend, setBackend } from "../src/engine/backend.js";
import { installStrictBackend, resetStrictStats, strictStats } from "../src/engine/backends/strict.js";
import { measureCommand, runMeasure, type MeasureFlags } from "../src/cli/commands/measure.js";
import { runTrain, trainCommand } from "../src/cli/commands/train.js";
import { onDevice } from "../src/measures/readback.js";

installStrictBackend();

/** Runs fn with `name` as the active backend, across fn's awaits (withBackend restores at the first await). */
async function on<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const before = getBackend().name;
  setBackend(name);
  try {
    return await fn();
  } finally {
    setBackend(before);
  }
}

/** Flags exactly as commander parses them from a command line (defaults included), without running the action. */
function flagsOf(cmd: ReturnType<typeof measureCommand>, args: string[]): Record<string, unknown> {
  cmd.action(() => {});
  cmd.parse(args, { from: "user" });
  return cmd.opts();
}

const measureFlags = (args: string[]) => flagsOf(measureCommand(), args) as unknown as MeasureFlags;

/** The measure JSON without what legitimately differs between backends: wall time and the engine. */
function comparable(json: string): Record<string, unknown> {
  const { seconds: _s, engine: _e, ...rest } = JSON.parse(json) as Record<string, unknown>;
  return rest;
}

test("gcx measure on a device backend: the js backend's numbers, read back once per batch at the end", async () => {
  const args = ["--data", "moons", "--limit", "200", "--batch-size", "64", "--model", "mlp:2-16-16-2:tanh", "--json"];
  for (const extra of [["--per-class"], ["--method", "estimate", "--probes", "3"]]) {
    const flags = measureFlags([...args, ...extra]);
    const host = comparable(await on("js", () => runMeasure(flags)));
    const device = await on("strict", async () => {
      assert.ok(onDevice());
      resetStrictStats();
      const out = await runMeasure(flags);
      return { out: comparable(out), reads: strictStats().reads };
    });
    // One norms tensor per batch (4 batches of 200), or one per batch and probe: read together, at the end.
    assert.equal(device.reads, extra.includes("estimate") ? 4 * 3 : 4, extra.join(" "));
    if (extra.includes("estimate")) {
      // Probes run the same ops on both: bit for bit.
      assert.deepEqual(device.out, host);
      continue;
    }
    // Exact GC: the js backend runs the closed-form MLP propagation in float64, the device the reverse-mode ops.
    const { gc: hgc, per_class: hpc, ...hrest } = host;
    const { gc: dgc, per_class: dpc, ...drest } = device.out;
    assert.deepEqual(drest, hrest);
    assert.notEqual(dgc, undefined);
    assert.ok(Math.abs((dgc as number) - (hgc as number)) <= 1e-8 * (hgc as number), `${dgc} vs ${hgc}`);
    const h = hpc as { n: number; gc: number }[],
      d = dpc as { n: number; gc: number }[];
    assert.deepEqual(
      d.map((c) => c.n),
      h.map((c) => c.n),
    );
    for (let i = 0; i < h.length; i++) assert.ok(Math.abs(d[i].gc - h[i].gc) <= 1e-8 * h[i].gc);
  }
});

test("gcx measure --all on a device backend reads the companion measures at the end too", async () => {
  const flags = measureFlags(["--data", "moons", "--limit", "100", "--model", "mlp:2-8-8-2", "--all", "--json"]);
  const host = JSON.parse(await on("js", () => runMeasure(flags))) as { norms: Record<string, unknown> };
  const device = await on("strict", async () => {
    resetStrictStats();
    return JSON.parse(await runMeasure(flags)) as { norms: Record<string, unknown> };
  });
  // Everything but the top Hessian eigenvalue is bit for bit; that one differs in float32's last bits.
  const { hessian_top_eig: he, ...hn } = host.norms;
  const { hessian_top_eig: de, ...dn } = device.norms;
  assert.deepEqual(dn, hn);
  assert.ok(Math.abs((de as number) - (he as number)) <= 1e-6 * Math.abs(he as number), `${de} vs ${he}`);
  assert.equal(device.norms.companions_n, 100);
});
