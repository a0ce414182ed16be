/**
 * The playground on WebGPU (issue 12), in Debian's headless Chromium with --enable-unsafe-webgpu, where WebGPU
 * runs on SwiftShader (a CPU implementation, so the network is tiny and the runs short). Checks that
 * - `engine=webgpu` (which accepts a software adapter) puts the trainer worker on WebGPU and the badge says so;
 * - a deterministic run (#…&autorun=N) on WebGPU gives the wasm page's losses, GC and bounds to relative 1e-4
 *   (both compute in float32, GC in forward mode: as ops on WebGPU, a host loop or fused kernel on wasm);
 * - Play, then Pause, works on WebGPU (frames read back asynchronously, commands are handled between them);
 * - without `engine=`, the page picks wasm even though navigator.gpu offers an adapter: SwiftShader is software.
 * Skipped when /usr/bin/chromium is absent or when this Chromium offers no WebGPU adapter at all.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { buildPlayground, CHROMIUM, serve, WEB_DIST } from "./playgroundServer.js";
import { WEBGPU_ARGS } from "./webgpuArgs.js";

/** moons, MLP 2-8-2 tanh, SGD: small enough for SwiftShader. */
const CONFIG = {
  data: "moons",
  size: "100",
  noise: "0.1",
  depth: "1",
  width: "8",
  activation: "tanh",
  init: "glorot",
  "init-scale": "1",
  seed: "3",
  optimizer: "sgd",
  lr: "0.1",
  "batch-size": "16",
};
const STEPS = 12;
const SHOWN = ["step", "gc", "gc-test", "train-loss", "test-loss", "t1", "t2"];

async function number(page: Page, id: string): Promise<number> {
  const v = await page.getByTestId(id).getAttribute("data-value");
  return v === null || v === "" ? NaN : Number(v);
}

/** Loads the page with CONFIG, `extra` and autorun=STEPS in a fresh document; the engine and the numbers shown. */
async function autorun(page: Page, base: string, extra: Record<string, string>) {
  const hash = new URLSearchParams({ ...CONFIG, ...extra, autorun: String(STEPS) }).toString();
  await page.goto("about:blank");
  await page.goto(`${base}#${hash}`);
  await page.locator('[data-testid="status"][data-value="done"]').waitFor({ timeout: 180_000 });
  const values: Record<string, number> = {};
  for (const id of SHOWN) values[id] = await number(page, id);
  const badge = page.getByTestId("engine");
  return {
    engine: await badge.getAttribute("data-value"),
    badge: (await badge.textContent()) ?? "",
    title: await badge.getAttribute("title"),
    values,
  };
}

const relDiff = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

test(
  "playground on WebGPU (SwiftShader): badge, same numbers as wasm, play and pause",
  { timeout: 600_000 },
  async (t) => {
    if (!existsSync(CHROMIUM)) {
      t.skip(`${CHROMIUM} is absent (apt-get install -y chromium)`);
      return;
    }
    t.diagnostic(`vite build: ${(await buildPlayground()).toFixed(1)} s`);
    const { server, base } = await serve(WEB_DIST);
    const userDataDir = mkdtempSync(join(tmpdir(), "gcx-e2e-webgpu-chromium-"));
    let context: BrowserContext | undefined;
    try {
      context = await chromium.launchPersistentContext(userDataDir, {
        executablePath: CHROMIUM,
        headless: true,
        args: WEBGPU_ARGS,
        viewport: { width: 1320, height: 1000 },
      });
      const page = context.pages()[0] ?? (await context.newPage());
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      page.on("console", (m) => {
        if (m.type() === "error") errors.push(m.text());
      });
      await page.goto(base);
      const adapter = await page.evaluate(async () => {
        const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<{ info?: object } | null> } }).gpu;
        const a = await gpu?.requestAdapter();
        if (!a) return null;
        const info = (a.info ?? {}) as Record<string, unknown>;
        return { vendor: info.vendor, architecture: info.architecture, description: info.description };
      });
      if (!adapter) {
        t.skip("this Chromium offers no WebGPU adapter");
        return;
      }
      t.diagnostic(`adapter: ${JSON.stringify(adapter)}`);

      const gpu = await autorun(page, base, { engine: "webgpu" });
      assert.equal(gpu.engine, "webgpu", `engine=webgpu runs on WebGPU (badge title: ${gpu.title})`);
      assert.equal(gpu.badge, "engine: WebGPU (worker)");
      assert.match(page.url(), /engine=webgpu/, "the address bar keeps engine=webgpu");

      const cpu = await autorun(page, base, {});
      assert.equal(cpu.engine, "wasm", "auto never picks a software adapter (SwiftShader): wasm");
      assert.equal(cpu.badge, "engine: wasm SIMD (worker)");

      t.diagnostic(`after ${STEPS} steps: webgpu ${JSON.stringify(gpu.values)}`);
      t.diagnostic(`after ${STEPS} steps: wasm   ${JSON.stringify(cpu.values)}`);
      assert.equal(gpu.values.step, STEPS);
      assert.equal(cpu.values.step, STEPS);
      for (const id of SHOWN) {
        const [a, b] = [gpu.values[id], cpu.values[id]];
        assert.ok(Number.isFinite(a) && a > 0, `${id} = ${a} on WebGPU`);
        assert.ok(relDiff(a, b) < 1e-4, `${id}: WebGPU ${a} vs wasm ${b} (relative ${relDiff(a, b).toExponential(2)})`);
      }
      // The untrained network is different: the comparison above could not pass by showing initial values.
      const h = new URLSearchParams({ ...CONFIG, engine: "webgpu" }).toString();
      await page.goto("about:blank");
      await page.goto(`${base}#${h}`);
      await page.locator('[data-testid="status"][data-value="ready"]').waitFor({ timeout: 120_000 });
      const untrained = await number(page, "train-loss");
      assert.ok(relDiff(untrained, gpu.values["train-loss"]) > 1e-3, `training moved the loss from ${untrained}`);

      // Live training on WebGPU: Play runs frames (each reads its numbers back), Pause stops them between frames.
      await page.getByTestId("play-button").click();
      await page.waitForFunction(
        () => Number(document.querySelector('[data-testid="step"]')?.getAttribute("data-value")) >= 10,
        null,
        { timeout: 120_000 },
      );
      await page.getByTestId("play-button").click();
      await page.locator('[data-testid="status"][data-value="paused"]').waitFor({ timeout: 60_000 });
      const s1 = await number(page, "step");
      await page.waitForTimeout(1000);
      assert.equal(await number(page, "step"), s1, "no step after the pause took effect");
      await page.locator('[data-testid="gc"][data-exact="true"]').waitFor({ timeout: 60_000 });
      const paused = await number(page, "gc");
      assert.ok(Number.isFinite(paused) && paused > 0, `GC after playing: ${paused}`);
      t.diagnostic(`played to step ${s1} on WebGPU, GC ${paused}`);

      assert.deepEqual(errors, [], "no errors in the page");
    } finally {
      await context?.close();
      server.close();
      rmSync(userDataDir, { recursive: true, force: true });
    }
  },
);
