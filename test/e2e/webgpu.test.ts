/**
 * The WebGPU backend's kernels in a real WebGPU implementation: builds test/e2e/webgpu-page with Vite, serves it
 * from 127.0.0.1 (navigator.gpu needs a secure context) and runs it in Debian's headless Chromium with
 * --enable-unsafe-webgpu, where WebGPU runs on SwiftShader (CPU). Every kernel is compared with a float64 reference
 * loop within a float32 tolerance stated in the page (webgpu-page/page.ts); the context's scopes, pooling, upload
 * ordering, aliasing, determinism and batching are checked too. Skipped when /usr/bin/chromium is absent
 * (GCX_CHROMIUM names another binary) or when the browser offers no WebGPU adapter at all.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { chromium, type BrowserContext } from "playwright-core";
import { serveStatic } from "./staticServer.js";

const CHROMIUM = process.env.GCX_CHROMIUM ?? "/usr/bin/chromium";
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const run = promisify(execFile);
interface Run {
  adapter: unknown;
  results: Result[];
  ops: Result[];
  models: Result[];
  smoke: Result[];
  stats: unknown;
}

interface Result {
  name: string;
  ok: boolean;
  worst: number;
  detail: string;
  pending?: boolean;
}

/** Chromium flags that give headless WebGPU on SwiftShader (no GPU process access to real hardware). */
export const WEBGPU_ARGS = [
  "--no-sandbox",
  "--enable-unsafe-webgpu",
  "--enable-features=Vulkan",
  "--use-angle=swiftshader",
  "--use-webgpu-adapter=swiftshader",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

test("webgpu: every kernel on SwiftShader matches the float64 reference", { timeout: 600_000 }, async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.skip(`${CHROMIUM} is absent (apt-get install -y chromium)`);
    return;
  }
  const out = mkdtempSync(join(tmpdir(), "gcx-webgpu-page-"));
  const userDataDir = mkdtempSync(join(tmpdir(), "gcx-webgpu-chromium-"));
  let context: BrowserContext | undefined;
  let server: Server | undefined;
  try {
    const t0 = performance.now();
    await run(
      process.execPath,
      [
        join(ROOT, "node_modules", "vite", "bin", "vite.js"),
        "build",
        join(ROOT, "test", "e2e", "webgpu-page"),
        "--outDir",
        out,
        "--emptyOutDir",
        "--base",
        "./",
        "--target",
        "es2022",
        "--logLevel",
        "warn",
      ],
      { cwd: ROOT },
    );
    t.diagnostic(`vite build: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const served = await serveStatic(out);
    server = served.server;
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: WEBGPU_ARGS,
    });
    const page = context.pages()[0] ?? (await context.newPage());
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") errors.push(m.text());
    });
    await page.goto(served.base);
    await page.waitForFunction(() => "gcxWebGPU" in globalThis, null, { timeout: 60_000 });
    const t1 = performance.now();
    const r = await page.evaluate(() =>
      (globalThis as unknown as { gcxWebGPU: { run(): Promise<Run> } }).gcxWebGPU.run(),
    );
    t.diagnostic(`page ran in ${((performance.now() - t1) / 1000).toFixed(1)} s on ${JSON.stringify(r.adapter)}`);
    if (typeof r.adapter === "string") {
      t.skip(`no WebGPU adapter in this Chromium: ${r.adapter}`);
      return;
    }
    t.diagnostic(`context counters: ${JSON.stringify(r.stats)}`);
    const report = (list: Result[], what: string, min: number) => {
      for (const x of list)
        t.diagnostic(
          `${x.ok ? "ok  " : x.pending ? "TODO" : "FAIL"} ${x.name}: ${x.worst.toPrecision(3)} of the bound; ${x.detail}`,
        );
      assert.ok(list.length >= min, `${what}: ran ${list.length} checks`);
      assert.deepEqual(
        list.filter((x) => !x.ok && !x.pending).map((x) => `${x.name}: ${x.detail}`),
        [],
        `${what}: every check within its tolerance`,
      );
    };
    await t.test("kernels and the device context", () => report(r.results, "kernels", 100));
    await t.test("op suite: forward, ∇ and H·v on webgpu = js; js float64 = finite differences", () =>
      report(r.ops, "ops", 150),
    );
    const pending = r.models.filter((x) => x.pending);
    await t.test(
      "MLP exact GC and one GC-penalty SGD step on webgpu = js",
      { todo: pending.length > 0 ? `op routing pending: ${pending[0].detail}` : false },
      () => report(r.models, "models", 8),
    );
    const smokePending = r.smoke.filter((x) => x.pending);
    await t.test(
      "bench smoke (bench/gpuTasks.ts, tiny MLP and CNN): forward, SGD step, exact GC, GC-penalty step on webgpu = js",
      { todo: smokePending.length > 0 ? `op routing pending: ${smokePending[0].name}` : false },
      () => report(r.smoke, "smoke", 8),
    );
    assert.deepEqual(errors, [], "no errors or warnings in the page (shader compilation included)");
  } finally {
    await context?.close();
    server?.close();
    rmSync(out, { recursive: true, force: true });
    rmSync(userDataDir, { recursive: true, force: true });
  }
});
