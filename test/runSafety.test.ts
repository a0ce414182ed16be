/**
 * Reliability of `gcx train` run directories (issue 9): nothing pre-existing is lost or changed by a mistaken
 * --out, a full disk leaves the run resumable, --resume refuses an edited run, one process at a time trains a run,
 * and every damaged file is one line naming it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertOneLineError, assertUnchanged, cliEnv, gcx, gcxShell, GCX_MAIN, snapshot } from "./cliRun.js";
import { parseMetrics } from "../src/training/metricsFile.js";

const tmp = () => mkdtempSync(join(tmpdir(), "gcx-safety-"));
/** A small, fast run: moons, MLP 2-16-2, logs every 20 steps, checkpoints every 100. */
const RUN = [
  "--data",
  "moons",
  "--model",
  "mlp:2-16-2",
  "--log-every",
  "20",
  "--checkpoint-every",
  "100",
  "--eval-size",
  "200",
  "--gc-size",
  "64",
  "--no-progress",
];

function trainRun(dir: string, steps = 300): void {
  const r = gcx(["train", ...RUN, "--steps", String(steps), "--out", dir]);
  assert.equal(r.status, 0, r.stderr);
}

test("--out that is not a new or empty directory is refused and nothing in it changes", () => {
  const root = tmp();
  const notRun = join(root, "notrun");
  mkdirSync(join(notRun, "checkpoints"), { recursive: true });
  writeFileSync(join(notRun, "metrics.jsonl"), "precious\n");
  writeFileSync(join(notRun, "checkpoints", "keep.bin"), "data");
  const aFile = join(root, "afile");
  writeFileSync(aFile, "not a directory");
  const run = join(root, "run");
  trainRun(run, 100);
  const before = snapshot(root);
  const deep = join(root, "a", "b");
  mkdirSync(deep, { recursive: true });
  const cases: [string[], RegExp, string?][] = [
    [["--out", notRun], /is not empty .*checkpoints.*metrics\.jsonl/],
    [["--out", aFile], /exists and is not a directory/],
    [["--out", run], /already holds a run; continue it with --resume/],
    [["--out", "/"], /not empty|not a run directory/],
    [["--out", "../../../../../../../../.."], /is not empty/, deep],
  ];
  for (const [args, pattern, cwd] of cases) {
    const r = gcx(["train", ...RUN, "--steps", "10", ...args], { cwd });
    assertOneLineError(r, pattern, args.join(" "));
  }
  rmSync(join(root, "a"), { recursive: true });
  assertUnchanged(before, root, "refused --out");
});

test("an empty --out directory is accepted, and a finished run resumed says it is complete", () => {
  const dir = tmp();
  trainRun(dir, 100);
  assert.ok(existsSync(join(dir, "model", "model.json")));
  assert.ok(!existsSync(join(dir, ".lock")), "the lock is released");
  const before = snapshot(dir);
  const r = gcx(["train", "--resume", dir]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /already complete \(100 steps\)/);
  assert.doesNotMatch(r.stdout, /undefined/);
  assertUnchanged(before, dir, "resume of a finished run");
});

test("a full disk (ulimit -f) tears metrics.jsonl: one line naming the file, and --resume finishes byte-identically", () => {
  const root = tmp();
  const cut = join(root, "cut"),
    whole = join(root, "whole");
  const r = gcxShell("ulimit -f 6;", ["train", ...RUN, "--steps", "600", "--out", cut]);
  assertOneLineError(r, /cannot write .*metrics\.jsonl: file too large .*EFBIG/, "ulimit -f");
  const text = readFileSync(join(cut, "metrics.jsonl"), "utf8");
  assert.ok(!text.endsWith("\n"), "the last line was torn (the test needs the limit to cut a line)");
  assert.ok(
    readdirSync(cut).every((f) => !f.includes(".tmp-")),
    "no temporary files left",
  );
  const resumed = gcx(["train", "--resume", cut]);
  assert.equal(resumed.status, 0, resumed.stderr);
  trainRun(whole, 600);
  for (const f of ["metrics.jsonl", "model/weights.safetensors", "model/model.json", "latest.json"]) {
    assert.deepEqual(readFileSync(join(cut, f)), readFileSync(join(whole, f)), f);
  }
});

test("no space left on device (a small tmpfs): one line naming the file, and the run resumes elsewhere", (t) => {
  const mnt = tmp();
  const m = spawnSync("mount", ["-t", "tmpfs", "-o", "size=48k", "tmpfs", mnt], { encoding: "utf8" });
  if (m.status !== 0) return t.skip(`cannot mount a tmpfs here (${m.stderr.trim()})`);
  try {
    const run = join(mnt, "run");
    const r = gcx(["train", ...RUN, "--steps", "2000", "--out", run]);
    assertOneLineError(r, /cannot write .*: no space left on device \(ENOSPC\)/, "ENOSPC");
    // Move the run to a disk with room (as a user would) and finish it.
    const moved = join(tmp(), "run");
    cpSync(run, moved, { recursive: true });
    const resumed = gcx(["train", "--resume", moved]);
    assert.equal(resumed.status, 0, resumed.stderr);
    const records = parseMetrics(readFileSync(join(moved, "metrics.jsonl"), "utf8"), "m").records;
    assert.deepEqual(
      records.map((x) => x.step),
      Array.from({ length: 101 }, (_, i) => i * 20),
    );
  } finally {
    spawnSync("umount", [mnt]);
  }
});

test("--resume refuses an edited config.json, naming the changed keys, and changes nothing", () => {
  const dir = tmp();
  trainRun(dir, 200);
  const cfgFile = join(dir, "config.json");
  const original = readFileSync(cfgFile, "utf8");
  const edits: [Record<string, unknown>, RegExp][] = [
    [{ model: "mlp:2-32-2" }, /model \("mlp:2-16-2" → "mlp:2-32-2"\)/],
    [{ optimizer: "adam" }, /optimizer \("sgd" → "adam"\)/],
    [{ lr: 0.1, l2: 0.01 }, /l2 \(0 → 0\.01\), lr \(0\.05 → 0\.1\)/],
    [{ steps: 400 }, /steps \(200 → 400\).*--resume .* --steps N/],
  ];
  for (const [edit, pattern] of edits) {
    writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(original), ...edit }, null, 2) + "\n");
    const before = snapshot(dir);
    assertOneLineError(gcx(["train", "--resume", dir]), pattern, JSON.stringify(edit));
    assertUnchanged(before, dir, JSON.stringify(edit));
  }
  writeFileSync(cfgFile, original);
  // Other training flags cannot ride along with --resume.
  assertOneLineError(
    gcx(["train", "--resume", dir, "--lr", "0.1"]),
    /--lr cannot be combined with it/,
    "--resume --lr",
  );
});

test("--resume DIR --steps N extends a run exactly as if it had been asked for N steps from the start", () => {
  const root = tmp();
  const ext = join(root, "ext"),
    fresh = join(root, "fresh");
  trainRun(ext, 200);
  const r = gcx(["train", "--resume", ext, "--steps", "400"]);
  assert.equal(r.status, 0, r.stderr);
  trainRun(fresh, 400);
  for (const f of ["metrics.jsonl", "config.json", "model/weights.safetensors"]) {
    assert.deepEqual(readFileSync(join(ext, f)), readFileSync(join(fresh, f)), f);
  }
  assertOneLineError(
    gcx(["train", "--resume", ext, "--steps", "100"]),
    /fewer than the 400 steps .* can only be extended/,
    "shrink",
  );
});

test("damaged run files are one line naming the file on --resume, and nothing changes", () => {
  const base = tmp();
  trainRun(base, 250); // checkpoint at 200, finished at 250 (checkpoint 250)
  const cases: [string, (dir: string) => void, RegExp][] = [
    ["config.json garbage", (d) => writeFileSync(join(d, "config.json"), "{not json"), /config\.json: malformed JSON/],
    [
      "config.json a directory",
      (d) => (rmSync(join(d, "config.json")), mkdirSync(join(d, "config.json"))),
      /config\.json: it is a directory/,
    ],
    [
      "latest.json garbage",
      (d) => writeFileSync(join(d, "latest.json"), "\u0000\u0001garbage"),
      /latest\.json: malformed JSON/,
    ],
    [
      "latest.json path escape",
      (d) => writeFileSync(join(d, "latest.json"), JSON.stringify({ step: 250, dir: "../../etc" })),
      /latest\.json: names "\.\.\/\.\.\/etc"/,
    ],
    [
      "latest.json fractional step",
      (d) => writeFileSync(join(d, "latest.json"), JSON.stringify({ step: 2.5, dir: "x" })),
      /latest\.json: not a valid checkpoint pointer/,
    ],
    [
      "state.json garbage",
      (d) => writeFileSync(join(d, "checkpoints", "step-00000250", "state.json"), "[1,2"),
      /state\.json: malformed JSON/,
    ],
    [
      "state.json wrong fields",
      (d) =>
        writeFileSync(
          join(d, "checkpoints", "step-00000250", "state.json"),
          JSON.stringify({ step: 250, optScalars: {}, regs: "x" }),
        ),
      /state\.json: not a valid checkpoint state/,
    ],
    [
      "state.safetensors truncated",
      (d) => writeFileSync(join(d, "checkpoints", "step-00000250", "state.safetensors"), Buffer.alloc(5)),
      /state\.safetensors: not a valid safetensors file/,
    ],
    [
      "weights a directory",
      (d) => {
        const w = join(d, "checkpoints", "step-00000250", "weights.safetensors");
        rmSync(w);
        mkdirSync(w);
      },
      /weights\.safetensors.*directory/,
    ],
  ];
  for (const [what, damage, pattern] of cases) {
    const dir = join(tmp(), "run");
    cpSync(base, dir, { recursive: true });
    rmSync(join(dir, "model"), { recursive: true }); // so that resume has to read the checkpoint
    damage(dir);
    const before = snapshot(dir);
    assertOneLineError(gcx(["train", "--resume", dir]), pattern, what);
    assertUnchanged(before, dir, what);
  }
  // A damaged line in the middle of metrics.jsonl (not a torn tail) is named, before anything is written.
  const mid = join(tmp(), "run");
  cpSync(base, mid, { recursive: true });
  const lines = readFileSync(join(mid, "metrics.jsonl"), "utf8").split("\n");
  lines[2] = "{garbage";
  writeFileSync(join(mid, "metrics.jsonl"), lines.join("\n"));
  const m = snapshot(mid);
  assertOneLineError(
    gcx(["train", "--resume", mid, "--steps", "300"]),
    /metrics\.jsonl: line 3 is not valid JSON/,
    "metrics middle line",
  );
  assertUnchanged(m, mid, "metrics middle line");
});

test("--config that is a directory, a device or too large is one line", () => {
  const dir = tmp();
  const big = join(dir, "big.json");
  writeFileSync(big, " ".repeat(2 << 20));
  const cases: [string, RegExp][] = [
    [dir, /it is a directory/],
    ["/dev/zero", /not a regular file/],
    [big, /larger than the 1048576-byte limit/],
    [join(dir, "missing.yaml"), /no such file/],
  ];
  for (const [file, pattern] of cases) {
    const r = gcx(["train", "--config", file, "--out", join(dir, "out")], { timeout: 20_000 });
    assertOneLineError(r, pattern, file);
  }
  writeFileSync(join(dir, "bad.yaml"), "a: [1\nb: {");
  assertOneLineError(gcx(["train", "--config", join(dir, "bad.yaml")]), /cannot parse/, "bad yaml");
  assert.ok(!existsSync(join(dir, "out")));
});

test("two gcx processes cannot train the same run at once; a lock left by a killed process is taken over", async () => {
  const dir = tmp();
  trainRun(dir, 100);
  // A long extension in the background holds the lock.
  const child = spawn(process.execPath, [GCX_MAIN, "train", "--resume", dir, "--steps", "200000"], {
    stdio: "ignore",
    env: cliEnv(), // the kernels trainRun used: a resume on other kernels is refused
  });
  try {
    const deadline = Date.now() + 30_000;
    while (!existsSync(join(dir, ".lock")) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(existsSync(join(dir, ".lock")), "the training process took the lock");
    const second = gcx(["train", "--resume", dir, "--steps", "200000"]);
    assertOneLineError(second, new RegExp(`is in use by gcx process ${child.pid}`), "second process");
  } finally {
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
  }
  assert.ok(existsSync(join(dir, ".lock")), "kill -9 leaves the lock behind");
  const at = (JSON.parse(readFileSync(join(dir, "latest.json"), "utf8")) as { step: number }).step;
  const r = gcx(["train", "--resume", dir, "--steps", String(at)]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /already complete/);
  assert.ok(!existsSync(join(dir, ".lock")));
});

test("a write refused by permissions (EACCES) ends the run with one line naming the path, and the run stays resumable", (t) => {
  const root = tmp();
  chmodSync(root, 0o755);
  const probe = spawnSync(
    "setpriv",
    ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, GCX_MAIN, "--version"],
    { encoding: "utf8" },
  );
  if (probe.status !== 0)
    return t.skip(
      `cannot run gcx as an unprivileged user here (${(probe.stderr || probe.error?.message || "").trim().split("\n")[0]})`,
    );
  const run = join(root, "run"),
    fresh = join(root, "fresh");
  // --out inside a directory this user cannot write to.
  const denied = spawnSync(
    "setpriv",
    [
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      process.execPath,
      GCX_MAIN,
      "train",
      ...RUN,
      "--steps",
      "5",
      "--out",
      join(root, "x"),
    ],
    { encoding: "utf8", env: cliEnv() },
  );
  assertOneLineError(denied, /cannot create .*x: permission denied \(EACCES\)/, "--out in a read-only directory");
  trainRun(run, 100);
  spawnSync("chown", ["-R", "65534:65534", run]);
  chmodSync(join(run, "checkpoints"), 0o555); // the next checkpoint cannot be created
  const r = spawnSync(
    "setpriv",
    [
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      process.execPath,
      GCX_MAIN,
      "train",
      "--resume",
      run,
      "--steps",
      "300",
    ],
    { encoding: "utf8", env: cliEnv() }, // trainRun's kernels: a resume on others is refused first
  );
  assertOneLineError(r, /cannot write .*checkpoints.*permission denied \(EACCES\)/, "EACCES");
  chmodSync(join(run, "checkpoints"), 0o755);
  const resumed = gcx(["train", "--resume", run]);
  assert.equal(resumed.status, 0, resumed.stderr);
  trainRun(fresh, 300);
  for (const f of ["metrics.jsonl", "model/weights.safetensors"])
    assert.deepEqual(readFileSync(join(run, f)), readFileSync(join(fresh, f)), f);
});

test("non-finite GC during training (huge --init-scale) is an error, not a null in metrics.jsonl", () => {
  const dir = join(tmp(), "run");
  assertOneLineError(
    gcx(["train", ...RUN, "--steps", "10", "--init-scale", "1e20", "--out", dir]),
    /(gc_train is not finite|diverged)/,
    "init-scale 1e20",
  );
});

test("an extension must fit the time budget too", () => {
  const dir = tmp();
  trainRun(dir, 100);
  const before = snapshot(dir);
  assertOneLineError(
    gcx(["train", "--resume", dir, "--steps", "1000000000000000"]),
    /would take at least/,
    "huge extension",
  );
  assertUnchanged(before, dir, "huge extension");
});
