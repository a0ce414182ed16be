/** Test helpers for spawning the gcx CLI and checking that user mistakes leave files untouched. */
import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { kernelVariant } from "../src/engine/wasmKernels.js";

export const GCX_MAIN = join(dirname(fileURLToPath(import.meta.url)), "..", "src", "cli", "main.js");

/**
 * The environment for a spawned gcx: the CLI turns on relaxed-SIMD kernels where the test process (plain node) may
 * not have them, so unless a test says otherwise the child uses the test process's kernel variant and numbers
 * computed in the test compare bit for bit with the CLI's.
 */
export function cliEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return kernelVariant() === "wasm-relaxed-fma" ? { ...env } : { GCX_KERNELS: "plain", ...env };
}

export function gcx(
  args: string[],
  opts: { cwd?: string; timeout?: number; env?: NodeJS.ProcessEnv } = {},
): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [GCX_MAIN, ...args], {
    encoding: "utf8",
    timeout: opts.timeout ?? 120_000,
    cwd: opts.cwd,
    env: cliEnv(opts.env),
  });
}

/** Runs gcx under bash with a prefix (e.g. `ulimit -f 6;`). */
export function gcxShell(prefix: string, args: string[], opts: { cwd?: string } = {}): SpawnSyncReturns<string> {
  const quoted = [process.execPath, GCX_MAIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" ");
  return spawnSync("bash", ["-c", `${prefix} ${quoted}`], {
    encoding: "utf8",
    timeout: 120_000,
    cwd: opts.cwd,
    env: cliEnv(),
  });
}

/** Exit code 2, exactly one stderr line matching `pattern`, no stack frames. */
export function assertOneLineError(r: SpawnSyncReturns<string>, pattern: RegExp, what: string): void {
  assert.equal(r.status, 2, `${what}: exit ${r.status}, stderr: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /\n\s+at /, `${what}: no stack trace`);
  // Progress lines ("step 100: ...") may precede the error when stderr is not a terminal; errors are "gcx: error:".
  const lines = r.stderr
    .trim()
    .split("\n")
    .filter((l) => !/^step \d+: /.test(l));
  assert.equal(lines.length, 1, `${what}: one line, got: ${r.stderr}`);
  assert.match(lines[0], /^gcx: error: /, what);
  assert.match(lines[0], pattern, what);
}

/** Path → SHA-256 of every file under `root` (directories by name), to show nothing changed. */
export function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (p: string) => {
    if (!existsSync(p)) return;
    const st = statSync(p);
    if (st.isDirectory()) {
      out.set(p + "/", "dir");
      for (const e of readdirSync(p).sort()) walk(join(p, e));
    } else out.set(p, createHash("sha256").update(readFileSync(p)).digest("hex"));
  };
  walk(root);
  return out;
}

export function assertUnchanged(before: Map<string, string>, root: string, what: string): void {
  assert.deepEqual(snapshot(root), before, `${what}: files changed`);
}
