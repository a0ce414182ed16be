/**
 * End-to-end test of the browser playground (web/): builds it with Vite, serves web/dist from 127.0.0.1 and
 * drives Debian's Chromium (headless, through playwright-core). Checks that the wasm kernels load, that a
 * deterministic run (#…&autorun=N) gives the numbers `gcx train` gives for the same configuration, that a strong
 * L2 or GC penalty lowers GC against the same seed and step, that the state round-trips through the URL, that
 * playing updates loss and GC, and records the frames per second while training. Saves a screenshot to
 * web/screenshot.png. Skipped when /usr/bin/chromium is absent (apt-get install -y chromium); GCX_CHROMIUM
 * names another Chromium binary.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { chromium, type BrowserContext, type Page } from "playwright-core";

const CHROMIUM = process.env.GCX_CHROMIUM ?? "/usr/bin/chromium";
// dist/test/e2e/playground.test.js → the repository root
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const WEB_DIST = join(ROOT, "web", "dist");
const SCREENSHOT = join(ROOT, "web", "screenshot.png");
const run = promisify(execFile);

/** moons, MLP 2-16-16-2 ReLU, He init, SGD: what both the page and `gcx train` run below. */
const CONFIG = {
  data: "moons",
  size: "200",
  noise: "0.1",
  classes: "3",
  depth: "2",
  width: "16",
  activation: "relu",
  init: "he",
  "init-scale": "1",
  seed: "1",
  optimizer: "sgd",
  lr: "0.1",
  "batch-size": "32",
};
const STEPS = 200;

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".css": "text/css",
  ".wasm": "application/wasm",
  ".svg": "image/svg+xml",
  ".png": "image/png",
};

/** A static file server for dir on 127.0.0.1 (a free port). */
async function serve(dir: string): Promise<{ server: Server; base: string }> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    let file = normalize(join(dir, path));
    if (!file.startsWith(dir + sep) && file !== dir) {
      res.writeHead(403).end();
      return;
    }
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, "index.html");
    if (!existsSync(file)) {
      res.writeHead(404).end("not found");
      return;
    }
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" }).end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  if (!addr || typeof addr === "string") throw new Error("no server address");
  return { server, base: `http://127.0.0.1:${addr.port}/` };
}

async function number(page: Page, id: string): Promise<number> {
  const v = await page.getByTestId(id).getAttribute("data-value");
  return v === null || v === "" ? NaN : Number(v);
}

/** Loads the page with a state and `autorun`, waits for the run to finish, returns the numbers shown. */
async function autorun(page: Page, base: string, extra: Record<string, string>): Promise<Record<string, number>> {
  const hash = new URLSearchParams({ ...CONFIG, ...extra, autorun: String(STEPS) }).toString();
  await page.goto("about:blank"); // a new document each time (a hash change alone would not reload)
  await page.goto(`${base}#${hash}`);
  await page.locator('[data-testid="status"][data-value="done"]').waitFor({ timeout: 30_000 });
  const out: Record<string, number> = {};
  for (const id of ["step", "gc", "gc-test", "train-loss", "test-loss", "t1", "t2"]) out[id] = await number(page, id);
  return out;
}

const relDiff = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

test("playground: wasm in the browser, same numbers as gcx train, regularizers lower GC, live training", { timeout: 120_000 }, async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.skip(`${CHROMIUM} is absent (apt-get install -y chromium)`);
    return;
  }
  const t0 = performance.now();
  await run(process.execPath, [join(ROOT, "node_modules", "vite", "bin", "vite.js"), "build", "--config", "web/vite.config.ts", "--logLevel", "warn"], { cwd: ROOT });
  t.diagnostic(`vite build: ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const { server, base } = await serve(WEB_DIST);
  const userDataDir = mkdtempSync(join(tmpdir(), "gcx-e2e-chromium-"));
  let context: BrowserContext | undefined;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
      viewport: { width: 1320, height: 1000 },
    });
    const page = context.pages()[0] ?? (await context.newPage());
    const errors: string[] = [];
    const foreign: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    page.on("request", (r) => {
      if (!r.url().startsWith(base) && !r.url().startsWith("data:")) foreign.push(r.url());
    });

    await t.test("a deterministic run loads wasm and reproduces gcx train", async () => {
      const web = await autorun(page, base, {});
      assert.equal(await page.getByTestId("engine").getAttribute("data-value"), "wasm", "the wasm kernels load in the browser");
      assert.equal(web.step, STEPS);
      for (const [k, v] of Object.entries(web)) assert.ok(Number.isFinite(v) && v >= 0, `${k} = ${v}`);

      // The same configuration through the CLI, which runs the same library code under Node.
      const out = mkdtempSync(join(tmpdir(), "gcx-e2e-run-"));
      try {
        const c = CONFIG;
        await run(
          process.execPath,
          [join(ROOT, "dist", "src", "cli", "main.js"), "train", "--data", c.data, "--size", c.size, "--noise", c.noise, "--model", `mlp:2-${c.width}-${c.width}-2:${c.activation}`,
            "--init", c.init, "--init-scale", c["init-scale"], "--seed", c.seed, "--optimizer", c.optimizer, "--lr", c.lr, "--batch-size", c["batch-size"],
            "--steps", String(STEPS), "--log-every", String(STEPS), "--measures", "norms", "--no-progress", "--out", out],
          { cwd: ROOT },
        );
        const lines = readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n");
        const cli = JSON.parse(lines[lines.length - 1]);
        assert.equal(cli.step, STEPS);
        const pairs: [string, number, number][] = [
          ["gc", web.gc, cli.gc_train],
          ["gc-test", web["gc-test"], cli.gc_test],
          ["train-loss", web["train-loss"], cli.train_loss],
          ["test-loss", web["test-loss"], cli.test_loss],
          ["t1", web.t1, cli.prod_frobenius_sq],
          ["t2", web.t2, cli.lipschitz_bound],
        ];
        for (const [k, a, b] of pairs) assert.ok(relDiff(a, b) < 1e-3, `${k}: browser ${a} vs gcx train ${b}`);
        t.diagnostic(`after ${STEPS} steps: GC ${web.gc.toFixed(4)} (gcx train ${cli.gc_train.toFixed(4)}), T1 ${web.t1.toFixed(1)}, T2 ${web.t2.toFixed(1)}`);
        assert.ok(web.gc <= web.t1 && web.gc <= web.t2, "GC is below both bounds");
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    });

    await t.test("a strong L2 or GC penalty lowers GC at the same seed and step", async () => {
      const plain = await autorun(page, base, {});
      const l2 = await autorun(page, base, { l2: "0.03" });
      const gc = await autorun(page, base, { gc: "0.1" });
      t.diagnostic(`GC after ${STEPS} steps: plain ${plain.gc.toFixed(3)}, l2 0.03 ${l2.gc.toFixed(3)}, gc 0.1 ${gc.gc.toFixed(3)}`);
      assert.ok(l2.gc < 0.5 * plain.gc, `l2: ${l2.gc} vs ${plain.gc}`);
      assert.ok(gc.gc < 0.5 * plain.gc, `gc penalty: ${gc.gc} vs ${plain.gc}`);
      assert.ok(l2.t1 < plain.t1, "l2 also lowers the T1 bound");
    });

    await t.test("the state lives in the URL: a control change is written there and a reload restores it", async () => {
      await page.goto("about:blank");
      await page.goto(`${base}#${new URLSearchParams(CONFIG)}`);
      await page.locator('[data-testid="status"][data-value="ready"]').waitFor({ timeout: 10_000 });
      await page.getByTestId("control-l2").selectOption("0.01");
      await page.getByTestId("control-data").selectOption("circles");
      const hash = new URLSearchParams(new URL(page.url()).hash.slice(1));
      assert.equal(hash.get("l2"), "0.01");
      assert.equal(hash.get("data"), "circles");
      assert.equal(hash.get("seed"), CONFIG.seed);
      await page.reload();
      await page.locator('[data-testid="status"][data-value="ready"]').waitFor({ timeout: 10_000 });
      assert.equal(await page.getByTestId("control-l2").inputValue(), "0.01");
      assert.equal(await page.getByTestId("control-data").inputValue(), "circles");
    });

    await t.test("playing trains: step, loss and GC update; frames per second", async () => {
      await page.goto("about:blank");
      await page.goto(`${base}#${new URLSearchParams({ ...CONFIG, lr: "0.03", "steps-per-frame": "5" })}`);
      await page.locator('[data-testid="status"][data-value="ready"]').waitFor({ timeout: 10_000 });
      const before = { step: await number(page, "step"), gc: await number(page, "gc"), loss: await number(page, "train-loss") };
      assert.equal(before.step, 0);
      await page.getByTestId("play-button").click();
      await page.locator('[data-testid="status"][data-value="training"]').waitFor({ timeout: 5_000 });
      await page.waitForTimeout(1000);
      const mid = { step: await number(page, "step"), gc: await number(page, "gc"), loss: await number(page, "train-loss") };
      await page.waitForTimeout(2500);
      const after = { step: await number(page, "step"), gc: await number(page, "gc"), loss: await number(page, "train-loss") };
      const fpsLive = await number(page, "fps");
      const totals = await page.evaluate(() => (window as unknown as { gcx: { totals(): { frames: number; ms: number } } }).gcx.totals());
      await page.getByTestId("play-button").click();
      await page.locator('[data-testid="status"][data-value="paused"]').waitFor({ timeout: 5_000 });
      assert.ok(mid.step > before.step && after.step > mid.step, `steps advance: ${before.step} → ${mid.step} → ${after.step}`);
      assert.ok(after.gc !== before.gc && after.gc !== mid.gc, "GC updates");
      assert.ok(after.loss < before.loss, `loss falls: ${before.loss} → ${after.loss}`);
      const fps = (1000 * totals.frames) / totals.ms;
      t.diagnostic(`playing: ${after.step} steps (5 per frame) in ${(totals.ms / 1000).toFixed(1)} s: ${fps.toFixed(1)} frames/s on average, ${fpsLive.toFixed(1)} over the last second`);
      assert.ok(fps > 1, `frames per second ${fps}`);
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
    });

    assert.deepEqual(errors, [], "no errors in the page");
    assert.deepEqual(foreign, [], "no requests to other origins (works offline)");
  } finally {
    await context?.close();
    server.close();
    rmSync(userDataDir, { recursive: true, force: true });
    t.diagnostic(`e2e total: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
});
