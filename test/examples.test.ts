/**
 * Every program in examples/ runs, with small sizes, and prints what it promises: the tests check the printed
 * numbers against independent truth where there is one (PyTorch's GC of a fixture) and against the files written.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const exampleJs = (name: string) => fileURLToPath(new URL(`../examples/${name}.js`, import.meta.url));
const fixture = fileURLToPath(new URL("../../test/fixtures/torch/mlp_gelu", import.meta.url));

function run(name: string, args: string[]): string[] {
  const r = spawnSync(process.execPath, [exampleJs(name), ...args], { encoding: "utf8", timeout: 120_000 });
  assert.equal(r.status, 0, `${name} failed:\n${r.stderr}`);
  assert.equal(r.stderr, "", `${name} wrote to stderr`);
  return r.stdout.trimEnd().split("\n");
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "gcx-examples-test-"));
}

/** Records of a run's metrics.jsonl. */
function metrics(runDir: string): Record<string, number>[] {
  return readFileSync(join(runDir, "metrics.jsonl"), "utf8")
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, number>);
}

function measured(lines: string[]): { exact: number; n: number; estimate: number; stderr: number } {
  const e = /^exact GC over (\d+) \S+ examples: (\S+) /.exec(lines[1]);
  const s = /^estimated GC with \d+ probes per example: (\S+) ± (\S+)$/.exec(lines[2]);
  assert.ok(e && s, `unexpected output:\n${lines.join("\n")}`);
  return { n: Number(e[1]), exact: Number(e[2]), estimate: Number(s[1]), stderr: Number(s[2]) };
}

test("measure-model: a saved model directory and its ONNX export give PyTorch's GC; the estimate is within 5 standard errors", () => {
  const reference = JSON.parse(readFileSync(join(fixture, "reference.json"), "utf8")) as { gc: number; n: number };
  for (const model of [fixture, join(fixture, "model.onnx")]) {
    const m = measured(
      run("measure-model", ["--model", model, "--data", "mnist", "--limit", String(reference.n), "--probes", "4"]),
    );
    assert.equal(m.n, reference.n);
    assert.ok(
      Math.abs(m.exact - reference.gc) / reference.gc < 1e-4,
      `${model}: exact ${m.exact} vs torch ${reference.gc}`,
    );
    assert.ok(
      m.stderr > 0 && Math.abs(m.estimate - m.exact) < 5 * m.stderr,
      `${model}: estimate ${m.estimate} ± ${m.stderr} vs ${m.exact}`,
    );
  }
});

test("measure-model without --model saves and measures a fresh MLP on moons", () => {
  const m = measured(run("measure-model", ["--limit", "200", "--probes", "4"]));
  assert.equal(m.n, 200);
  assert.ok(m.exact > 0 && Number.isFinite(m.exact));
  assert.ok(Math.abs(m.estimate - m.exact) < 5 * m.stderr, `estimate ${m.estimate} ± ${m.stderr} vs ${m.exact}`);
});

test("train-with-gc-penalty: trains, and prints the rows of metrics.jsonl", () => {
  const dir = tempDir();
  try {
    const out = join(dir, "run");
    const lines = run("train-with-gc-penalty", ["--steps", "20", "--gc", "0.01", "--out", out]);
    assert.equal(lines[0], `trained 20 steps into ${out}`);
    const records = metrics(out);
    assert.deepEqual(
      records.map((r) => r.step),
      [0, 4, 8, 12, 16, 20],
    );
    const rows = lines.slice(2).map((l) => l.split("  "));
    assert.equal(rows.length, records.length);
    rows.forEach((row, i) => {
      assert.equal(Number(row[0]), records[i].step);
      assert.equal(row[3], records[i].gc_train.toPrecision(4));
      assert.equal(row[4], records[i].gc_test.toPrecision(4));
    });
    assert.equal(JSON.parse(readFileSync(join(out, "config.json"), "utf8")).gc, 0.01);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("compare-regularizers: three runs at one seed; the printed final GC is each run's last logged GC, lowest with the GC penalty", () => {
  const dir = tempDir();
  try {
    const lines = run("compare-regularizers", ["--steps", "40", "--gc", "0.05", "--out", dir]);
    const rows = new Map(
      lines.slice(1, 4).map((l) => {
        const [name, ...v] = l.split("  ");
        return [name, v.map(Number)];
      }),
    );
    assert.deepEqual([...rows.keys()], ["none", "l2", "gc"]);
    for (const [name, [gcTrain, gcTest]] of rows) {
      const last = metrics(join(dir, name)).at(-1)!;
      assert.equal(last.step, 40);
      assert.equal(gcTrain, Number(last.gc_train.toPrecision(5)), name);
      assert.equal(gcTest, Number(last.gc_test.toPrecision(5)), name);
    }
    assert.ok(rows.get("gc")![0] < rows.get("none")![0], "the GC penalty lowers GC at the same seed and budget");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("custom-penalty: the input-gradient penalty built with grad is zero at λ = 0 and lowers GC when on", () => {
  const lines = run("custom-penalty", ["--steps", "100", "--lambda", "0.1"]);
  const rows = lines.slice(1).map((l) => l.split("  ").map(Number));
  assert.equal(rows.length, 2);
  const [off, on] = rows;
  assert.deepEqual([off[0], on[0]], [0, 0.1]);
  assert.equal(off[2], 0);
  assert.ok(on[2] > 0 && Number.isFinite(on[2]));
  assert.ok(on[3] < off[3], `GC with the penalty ${on[3]} vs without ${off[3]}`);
});
