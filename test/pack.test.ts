/**
 * The published package works for a user: `npm pack` ships only what users need, and the tarball installs into an
 * empty project offline (dependencies from the npm cache that `npm ci` filled, native addons built as on a user's
 * machine), where `npx gcx measure` and an example run against the installed copy and TypeScript finds the types.
 * Slow (the install builds better-sqlite3 from source): not part of `npm run test:fast`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const repo = fileURLToPath(new URL("../..", import.meta.url));

function sh(cmd: string, args: string[], cwd: string, opts: SpawnSyncOptions = {}): string {
  // Generous: the install compiles better-sqlite3 (about a minute on 2 idle cores, far longer on a busy machine).
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", timeout: 1_500_000, ...opts });
  assert.equal(
    r.status,
    0,
    `${cmd} ${args.join(" ")} failed (status ${r.status}${r.error ? `, ${r.error.message}` : ""}):\n${String(r.stdout)}\n${String(r.stderr)}`,
  );
  return String(r.stdout);
}

interface PackEntry {
  filename: string;
  size: number;
  entryCount: number;
  files: { path: string }[];
}

/**
 * A lockfile for a project that depends only on the tarball: the repository's own locked production packages
 * (same versions, tarball URLs and integrity hashes), so `npm ci --offline` finds every one in the npm cache.
 */
function consumerLock(tarball: string): object {
  const lock = JSON.parse(readFileSync(join(repo, "package-lock.json"), "utf8")) as {
    packages: Record<string, Record<string, unknown>>;
  };
  const self = lock.packages[""];
  const integrity = "sha512-" + createHash("sha512").update(readFileSync(tarball)).digest("base64");
  const packages: Record<string, unknown> = {
    "": { name: "gcx-consumer", version: "1.0.0", dependencies: { "geometric-complexity": `file:${tarball}` } },
    "node_modules/geometric-complexity": {
      version: self.version,
      resolved: `file:${tarball}`,
      integrity,
      license: self.license,
      dependencies: self.dependencies,
      bin: self.bin,
      engines: self.engines,
    },
  };
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === "" || entry.dev === true || entry.link === true) continue;
    const { devOptional: _devOptional, ...rest } = entry;
    packages[path] = rest;
  }
  return { name: "gcx-consumer", version: "1.0.0", lockfileVersion: 3, requires: true, packages };
}

test(
  "npm pack ships the library, CLI, types and wasm only; the tarball installs offline and runs",
  { timeout: 1_800_000 },
  () => {
    const dir = mkdtempSync(join(tmpdir(), "gcx-pack-test-"));
    try {
      // 1. Pack the built tree (the build already ran; --ignore-scripts skips `prepare`'s rebuild).
      const [pack] = JSON.parse(
        sh("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", dir], repo),
      ) as PackEntry[];
      const files = pack.files.map((f) => f.path);
      for (const must of [
        "package.json",
        "README.md",
        "dist/src/index.js",
        "dist/src/index.d.ts",
        "dist/src/cli/main.js",
        "dist/wasm/kernels.wasm",
        "dist/wasm/kernels-shared.wasm",
      ]) {
        assert.ok(files.includes(must), `the tarball lacks ${must}`);
      }
      const stray = files.filter(
        (f) => !/^(package\.json|README\.md|LICENSE|dist\/src\/.*\.(js|d\.ts)|dist\/wasm\/[^/]+\.wasm)$/.test(f),
      );
      assert.deepEqual(
        stray,
        [],
        "only the library, its types and the wasm kernels are shipped (no tests, maps, screenshots)",
      );
      console.log(`# tarball ${pack.filename}: ${pack.size} bytes, ${pack.entryCount} files`);

      // 2. An empty project that depends on the tarball, installed without the network.
      const project = join(dir, "consumer");
      const tarball = join(dir, pack.filename);
      sh("mkdir", ["-p", project], dir);
      const manifest = {
        name: "gcx-consumer",
        version: "1.0.0",
        private: true,
        type: "module",
        dependencies: { "geometric-complexity": `file:${tarball}` },
      };
      writeFileSync(join(project, "package.json"), JSON.stringify(manifest, null, 2));
      writeFileSync(join(project, "package-lock.json"), JSON.stringify(consumerLock(tarball), null, 2));
      sh("npm", ["ci", "--offline", "--no-audit", "--no-fund"], project);

      // 3. The installed CLI gives the same GC as the repository's.
      const installed = JSON.parse(
        sh("npx", ["--offline", "gcx", "measure", "--data", "moons", "--json"], project),
      ) as { gc: number; n: number };
      const local = JSON.parse(
        sh(process.execPath, [join(repo, "dist/src/cli/main.js"), "measure", "--data", "moons", "--json"], repo),
      ) as { gc: number };
      assert.equal(installed.n, 1000);
      assert.equal(installed.gc, local.gc);

      // 4. An example, copied as a user would, imports the installed package by name.
      copyFileSync(join(repo, "dist/examples/measure-model.js"), join(project, "measure-model.js"));
      const out = sh(process.execPath, ["measure-model.js", "--limit", "100"], project);
      assert.match(out, /^exact GC over 100 moons examples: \d/m);
      assert.match(out, /^estimated GC with 8 probes per example: \d/m);

      // 5. Internals are not importable; the public entry's types resolve for a TypeScript user.
      const deep = spawnSync(
        process.execPath,
        ["--input-type=module", "-e", 'await import("geometric-complexity/dist/src/engine/ops.js")'],
        { cwd: project, encoding: "utf8" },
      );
      assert.match(deep.stderr, /ERR_PACKAGE_PATH_NOT_EXPORTED/);
      writeFileSync(
        join(project, "consumer.ts"),
        'import { exactGC, loadDataset, compileNetwork, initParams, DEFAULT_INIT, type GCResult } from "geometric-complexity";\n' +
          'const ds = loadDataset("moons", { split: "test", seed: 0, limit: 10 });\n' +
          'const net = compileNetwork({ kind: "mlp", sizes: [2, 8, 2], activation: "relu" });\n' +
          "const r: GCResult = exactGC(net, initParams(net, DEFAULT_INIT), ds);\n" +
          "export const gc: number = r.gc;\n",
      );
      const tsc = join(repo, "node_modules/typescript/bin/tsc");
      sh(
        process.execPath,
        [
          tsc,
          "--noEmit",
          "--strict",
          "--skipLibCheck",
          "--target",
          "es2022",
          "--module",
          "nodenext",
          "--moduleResolution",
          "nodenext",
          "consumer.ts",
        ],
        project,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
