#!/usr/bin/env node
// Runs the compiled test suites (dist/test/**/*.test.js) with node's test runner, the same way on Node 20, 22 and 24:
// Node 22+ reads `node --test dist/test/` as a glob that matches no file, and Node 20 expands no globs, so the files
// are listed here. `--fast` leaves out the slow suites named in SLOW (browser, Postgres, packing, long statistical
// runs); GCX_TEST_FAST=1 is set for the suites themselves. GCX_TEST_SKIP (comma-separated paths under dist/test)
// leaves out more files. Other arguments go to node (e.g. --test-reporter=spec).
// Usage: node scripts/run-tests.mjs [--fast] [node options…]
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** Suites `--fast` skips, as paths under dist/test (a trailing slash names a folder). Keep the reason beside each. */
export const SLOW = [
  "e2e/", // builds the playground and drives Chromium
  "pack.test.js", // npm pack + an offline install into a temporary project
  "distributed.test.js", // starts a PostgreSQL server and several worker processes
  "experiments.test.js", // runs experiment families end to end on worker threads
  "fuzzRun.test.js", // property-based training runs
  "runSafety.test.js", // crash, full-disk, lock and permission scenarios, each spawning several gcx processes
  "cliStore.test.js", // damaged and read-only run stores, spawning gcx dozens of times (also as another user)
];
// Single long tests inside otherwise fast files use SLOW_TEST from test/helpers.ts (skipped when GCX_TEST_FAST=1).

const root = fileURLToPath(new URL("..", import.meta.url));
const testDir = join(root, "dist", "test");
const args = process.argv.slice(2);
const fast = args.includes("--fast");
const nodeArgs = args.filter((a) => a !== "--fast");

function list(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? list(join(dir, e.name)) : e.name.endsWith(".test.js") ? [join(dir, e.name)] : [],
  );
}

const skipped = (process.env.GCX_TEST_SKIP ?? "").split(",").filter(Boolean);
const matches = (file, names) => {
  const rel = relative(testDir, file).split("\\").join("/");
  return names.some((s) => (s.endsWith("/") ? rel.startsWith(s) : rel === s));
};
const files = list(testDir)
  .sort()
  .filter((f) => !(fast && matches(f, SLOW)) && !matches(f, skipped));
if (files.length === 0) {
  console.error(`gcx: error: no test files under ${relative(root, testDir)}; run npm run build first`);
  process.exit(2);
}
const env = fast ? { ...process.env, GCX_TEST_FAST: "1" } : process.env;
const r = spawnSync(process.execPath, ["--expose-gc", "--test", ...nodeArgs, ...files], { stdio: "inherit", env });
process.exit(r.status ?? 1);
