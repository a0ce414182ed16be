/**
 * End-to-end test of the browser playground (web/): builds it with Vite, serves web/dist from a sub-path of
 * 127.0.0.1 (as a static host would) and drives Debian's Chromium (headless, through playwright-core). Checks that
 * the wasm kernels load in the trainer worker, that a deterministic run (#…&autorun=N) gives the numbers
 * `gcx train` gives for the same configuration, that a strong L2 or GC penalty lowers GC against the same seed and
 * step, that the state round-trips through the URL and an invalid seed is rejected visibly, that playing updates
 * loss and GC, that Pause takes effect while a 6×64 network trains on 1,000 examples (the worker keeps the page
 * responsive), compare mode and its URL, every stop of the tour of the claims, the fixed colour scale, and the
 * phone layout. Saves web/screenshot.png, web/screenshot-compare.png and web/screenshot-mobile.png. Skipped
 * when /usr/bin/chromium is absent (apt-get install -y chromium); GCX_CHROMIUM names another Chromium binary.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { buildPlayground, CHROMIUM, ROOT, run, serve, WEB_DIST } from "./playgroundServer.js";

const SCREENSHOT = join(ROOT, "web", "screenshot.png");
const SCREENSHOT_COMPARE = join(ROOT, "web", "screenshot-compare.png");
const SCREENSHOT_MOBILE = join(ROOT, "web", "screenshot-mobile.png");

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

/** Loads a hash in a fresh document and waits for the status to say `status`. */
async function load(page: Page, base: string, hash: string, status = "ready", timeout = 30_000): Promise<void> {
  await page.goto("about:blank");
  await page.goto(`${base}#${hash}`);
  await page.locator(`[data-testid="status"][data-value="${status}"]`).waitFor({ timeout });
}

interface Gcx {
  gcx: { page(): { tour: string | null }; runs(): { last: { step: number; gcTrain: number } | undefined }[] };
}

test(
  "playground: wasm in the browser, same numbers as gcx train, regularizers lower GC, live training",
  { timeout: 600_000 },
  async (t) => {
    if (!existsSync(CHROMIUM)) {
      t.skip(`${CHROMIUM} is absent (apt-get install -y chromium)`);
      return;
    }
    const t0 = performance.now();
    t.diagnostic(`vite build: ${(await buildPlayground()).toFixed(1)} s`);

    const { server, base } = await serve(WEB_DIST);
    const userDataDir = mkdtempSync(join(tmpdir(), "gcx-e2e-chromium-"));
    let context: BrowserContext | undefined;
    try {
      context = await chromium.launchPersistentContext(userDataDir, {
        executablePath: CHROMIUM,
        headless: true,
        args: [
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
        ],
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
        assert.equal(
          await page.getByTestId("engine").getAttribute("data-value"),
          "wasm",
          "the wasm kernels load in the browser's trainer worker (no WebGPU here, or only a software adapter)",
        );
        const gpu = await page.evaluate(async () => {
          const g = (navigator as unknown as { gpu?: { requestAdapter(): Promise<{ info?: object } | null> } }).gpu;
          if (!g) return "navigator.gpu is absent";
          const a = await g.requestAdapter();
          return a ? `adapter ${JSON.stringify(a.info ?? {})}` : "navigator.gpu gives no adapter";
        });
        t.diagnostic(`WebGPU in this Chromium (no --enable-unsafe-webgpu): ${gpu}`);
        assert.equal(
          await page.getByTestId("gc").getAttribute("data-exact"),
          "true",
          "a finished run shows the exact GC",
        );
        assert.equal(web.step, STEPS);
        for (const [k, v] of Object.entries(web)) assert.ok(Number.isFinite(v) && v >= 0, `${k} = ${v}`);

        // The same configuration through the CLI, which runs the same library code under Node.
        const out = mkdtempSync(join(tmpdir(), "gcx-e2e-run-"));
        try {
          const c = CONFIG;
          await run(
            process.execPath,
            [
              join(ROOT, "dist", "src", "cli", "main.js"),
              "train",
              "--data",
              c.data,
              "--size",
              c.size,
              "--noise",
              c.noise,
              "--model",
              `mlp:2-${c.width}-${c.width}-2:${c.activation}`,
              "--init",
              c.init,
              "--init-scale",
              c["init-scale"],
              "--seed",
              c.seed,
              "--optimizer",
              c.optimizer,
              "--lr",
              c.lr,
              "--batch-size",
              c["batch-size"],
              "--steps",
              String(STEPS),
              "--log-every",
              String(STEPS),
              "--measures",
              "norms",
              "--no-progress",
              "--out",
              out,
            ],
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
          t.diagnostic(
            `after ${STEPS} steps: GC ${web.gc.toFixed(4)} (gcx train ${cli.gc_train.toFixed(4)}), T1 ${web.t1.toFixed(1)}, T2 ${web.t2.toFixed(1)}`,
          );
          assert.ok(web.gc <= web.t1 && web.gc <= web.t2, "GC is below both bounds");
        } finally {
          rmSync(out, { recursive: true, force: true });
        }
      });

      await t.test("engine=webgpu without a WebGPU adapter falls back to wasm and says why", async () => {
        await load(page, base, new URLSearchParams({ ...CONFIG, engine: "webgpu" }).toString());
        const badge = page.getByTestId("engine");
        assert.equal(await badge.getAttribute("data-value"), "wasm");
        assert.match((await badge.getAttribute("title")) ?? "", /WebGPU/, "the tooltip says why WebGPU is not used");
      });

      await t.test("a strong L2 or GC penalty lowers GC at the same seed and step", async () => {
        const plain = await autorun(page, base, {});
        const l2 = await autorun(page, base, { l2: "0.03" });
        const gc = await autorun(page, base, { gc: "0.1" });
        t.diagnostic(
          `GC after ${STEPS} steps: plain ${plain.gc.toFixed(3)}, l2 0.03 ${l2.gc.toFixed(3)}, gc 0.1 ${gc.gc.toFixed(3)}`,
        );
        assert.ok(l2.gc < 0.5 * plain.gc, `l2: ${l2.gc} vs ${plain.gc}`);
        assert.ok(gc.gc < 0.5 * plain.gc, `gc penalty: ${gc.gc} vs ${plain.gc}`);
        assert.ok(l2.t1 < plain.t1, "l2 also lowers the T1 bound");
      });

      await t.test(
        "the state lives in the URL: a control change is written there and a reload restores it",
        async () => {
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

          // An invalid seed stays in its box, marked invalid with the reason, and the URL keeps the old seed.
          for (const bad of ["-5", "1.5"]) {
            await page.getByTestId("control-seed").fill(bad);
            assert.equal(
              await page.getByTestId("control-seed").getAttribute("aria-invalid"),
              "true",
              `seed ${bad} is marked invalid`,
            );
            assert.equal(await page.getByTestId("control-seed").inputValue(), bad, "the invalid text stays visible");
            assert.match(
              (await page.locator("#help-seed").textContent()) ?? "",
              /Not applied: seed must be an integer from 0 to 999999/,
            );
            assert.equal(
              new URLSearchParams(new URL(page.url()).hash.slice(1)).get("seed"),
              CONFIG.seed,
              "the URL keeps the old seed",
            );
          }
          await page.getByTestId("control-seed").fill("7");
          assert.equal(await page.getByTestId("control-seed").getAttribute("aria-invalid"), "false");
          assert.equal(new URLSearchParams(new URL(page.url()).hash.slice(1)).get("seed"), "7");

          // Pasting a link with autorun into the open tab runs it (hash change, no reload).
          await page.evaluate((h) => (location.hash = h), new URLSearchParams({ ...CONFIG, autorun: "20" }).toString());
          await page.waitForFunction(
            () => document.querySelector('[data-testid="step"]')?.getAttribute("data-value") === "20",
            null,
            { timeout: 30_000 },
          );
          await page.locator('[data-testid="status"][data-value="done"]').waitFor({ timeout: 30_000 });

          // Accessibility hooks: live status, a pressed state on Play, labelled canvases, visible help for every control.
          assert.equal(await page.getByTestId("status").getAttribute("aria-live"), "polite");
          assert.equal(await page.getByTestId("play-button").getAttribute("aria-pressed"), "false");
          for (const id of ["function-view", "gradient-view", "loss-chart", "gc-chart"])
            assert.ok(await page.getByTestId(id).getAttribute("aria-label"), `${id} has a label`);
          const helpless = await page.evaluate(() =>
            [...document.querySelectorAll("#controls select, #controls input")]
              .filter(
                (c) => !(document.getElementById(c.getAttribute("aria-describedby") ?? "")?.textContent ?? "").trim(),
              )
              .map((c) => c.id),
          );
          assert.deepEqual(helpless, [], "every control has visible help");
        },
      );

      await t.test("playing trains: step, loss and GC update; frames per second", async () => {
        await page.goto("about:blank");
        await page.goto(`${base}#${new URLSearchParams({ ...CONFIG, lr: "0.03", "steps-per-frame": "5" })}`);
        await page.locator('[data-testid="status"][data-value="ready"]').waitFor({ timeout: 10_000 });
        const before = {
          step: await number(page, "step"),
          gc: await number(page, "gc"),
          loss: await number(page, "train-loss"),
        };
        assert.equal(before.step, 0);
        await page.getByTestId("play-button").click();
        await page.locator('[data-testid="status"][data-value="training"]').waitFor({ timeout: 5_000 });
        await page.waitForTimeout(1000);
        const mid = {
          step: await number(page, "step"),
          gc: await number(page, "gc"),
          loss: await number(page, "train-loss"),
        };
        await page.waitForTimeout(2500);
        const after = {
          step: await number(page, "step"),
          gc: await number(page, "gc"),
          loss: await number(page, "train-loss"),
        };
        const fpsLive = await number(page, "fps");
        const totals = await page.evaluate(() =>
          (window as unknown as { gcx: { totals(): { frames: number; ms: number } } }).gcx.totals(),
        );
        await page.getByTestId("play-button").click();
        await page.locator('[data-testid="status"][data-value="paused"]').waitFor({ timeout: 5_000 });
        assert.ok(
          mid.step > before.step && after.step > mid.step,
          `steps advance: ${before.step} → ${mid.step} → ${after.step}`,
        );
        assert.ok(after.gc !== before.gc && after.gc !== mid.gc, "GC updates");
        assert.ok(after.loss < before.loss, `loss falls: ${before.loss} → ${after.loss}`);
        const fps = (1000 * totals.frames) / totals.ms;
        t.diagnostic(
          `playing: ${after.step} steps (5 per frame) in ${(totals.ms / 1000).toFixed(1)} s: ${fps.toFixed(1)} frames/s on average, ${fpsLive.toFixed(1)} over the last second`,
        );
        assert.ok(fps > 1, `frames per second ${fps}`);
        await page.screenshot({ path: SCREENSHOT, fullPage: true });

        // Space plays and pauses when focus is not in a field.
        await page.locator("h1").click();
        await page.keyboard.press("Space");
        await page.locator('[data-testid="status"][data-value="training"]').waitFor({ timeout: 5_000 });
        await page.keyboard.press("Space");
        await page.locator('[data-testid="status"][data-value="paused"]').waitFor({ timeout: 10_000 });
      });

      await t.test(
        "Pause takes effect while a 6×64 network trains on 1,000 examples (training runs in a worker)",
        async () => {
          await load(
            page,
            base,
            new URLSearchParams({
              ...CONFIG,
              data: "spirals",
              size: "1000",
              depth: "6",
              width: "64",
              lr: "0.03",
              "steps-per-frame": "5",
            }).toString(),
            "ready",
            60_000,
          );
          await page.getByTestId("play-button").click();
          await page.locator('[data-testid="status"][data-value="training"]').waitFor({ timeout: 10_000 });
          await page.waitForFunction(
            () => Number(document.querySelector('[data-testid="step"]')?.getAttribute("data-value")) >= 20,
            null,
            { timeout: 60_000 },
          );
          // While playing, a large network is measured on a sample and says so.
          assert.equal(
            await page.getByTestId("gc").getAttribute("data-exact"),
            "false",
            "GC while playing a large net is labelled approximate",
          );
          assert.match((await page.getByTestId("gc-note").textContent()) ?? "", /first \d+ examples/);
          // A real mouse click at the button (no waiting for the page to settle first), timed from when it is sent.
          const box = (await page.getByTestId("play-button").boundingBox())!;
          const sent = Date.now();
          await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
          await page.locator('[data-testid="status"][data-value="paused"]').waitFor({ timeout: 15_000 });
          const latency = Date.now() - sent;
          assert.equal(await page.getByTestId("play-button").getAttribute("aria-pressed"), "false");
          const s1 = await number(page, "step");
          await page.waitForTimeout(1000);
          assert.equal(await number(page, "step"), s1, "no step after the pause took effect");
          // Paused: the exact GC over every example, as gcx measure gives.
          await page.locator('[data-testid="gc"][data-exact="true"]').waitFor({ timeout: 30_000 });
          const fps = await page.evaluate(() => {
            const { frames, ms } = (
              window as unknown as { gcx: { totals(): { frames: number; ms: number } } }
            ).gcx.totals();
            return (1000 * frames) / ms;
          });
          t.diagnostic(
            `6×64, 1,000 examples: ${fps.toFixed(1)} frames/s while playing; Pause took effect ${latency} ms after the click was sent (machine shared)`,
          );
        },
      );

      await t.test(
        "compare mode: runs side by side on one colour scale, and the comparison round-trips through the URL",
        async () => {
          const hash = new URLSearchParams({ ...CONFIG, compare: "l2:0.03", autorun: "150" }).toString();
          await load(page, base, hash, "done", 60_000);
          assert.equal(await page.getByTestId("compare-cards").locator("figure.card").count(), 2);
          const gc0 = await number(page, "run-0-gc"),
            gc1 = await number(page, "run-1-gc");
          assert.ok(gc1 < gc0, `L2 run has the lower GC: ${gc1} vs ${gc0}`);
          assert.match((await page.getByTestId("run-1").locator("figcaption").textContent()) ?? "", /l2 0\.03/);
          // Both heatmaps share the fixed scale.
          const scales = await page.evaluate(() =>
            [0, 1].map((i) => {
              const c = document.querySelector<HTMLElement>(`[data-testid="run-${i}-gradient"]`)!;
              return [c.dataset.lo, c.dataset.hi];
            }),
          );
          assert.deepEqual(scales[0], scales[1], "one colour scale for both runs");
          assert.deepEqual(scales[0].map(Number), [1e-3, 1e3]);
          const url = page.url();
          assert.equal(new URLSearchParams(new URL(url).hash.slice(1)).get("compare"), "l2:0.03");
          // The URL alone restores the comparison, numbers included.
          await load(page, base, new URL(url).hash.slice(1) + "&autorun=150", "done", 60_000);
          assert.equal(await number(page, "run-0-gc"), gc0, "same URL, same numbers (run A)");
          assert.equal(await number(page, "run-1-gc"), gc1, "same URL, same numbers (run B)");
          // A third run typed into the compare box joins, and the URL follows.
          await page.getByTestId("control-compare").fill("l2:0.03|gc:0.1");
          await page.getByTestId("control-compare").press("Enter");
          await page.getByTestId("compare-cards").locator("figure.card").nth(2).waitFor({ timeout: 10_000 });
          assert.equal(new URLSearchParams(new URL(page.url()).hash.slice(1)).get("compare"), "l2:0.03|gc:0.1");
          await page.getByTestId("play-button").click();
          await page.waitForTimeout(1500);
          await page.getByTestId("play-button").click();
          await page.locator('[data-testid="status"][data-value="paused"]').waitFor({ timeout: 15_000 });
          // Compared runs play in lockstep: paused, they stand at the same step.
          const equalSteps = () => {
            const v = [0, 1, 2].map((i) =>
              document.querySelector(`[data-testid="run-${i}-step"]`)?.getAttribute("data-value"),
            );
            return Number(v[0]) > 0 && v.every((x) => x === v[0]);
          };
          await page.waitForFunction(equalSteps, null, { timeout: 15_000 }).catch(async () => {
            const steps = await Promise.all([0, 1, 2].map((i) => number(page, `run-${i}-step`)));
            assert.fail(`compared runs should stand at equal steps when paused: ${steps}`);
          });
          await page.screenshot({ path: SCREENSHOT_COMPARE, fullPage: true });
          // A bad entry is refused visibly and changes nothing.
          await page.getByTestId("control-compare").fill("l2:banana");
          await page.getByTestId("control-compare").press("Enter");
          assert.equal(await page.getByTestId("control-compare").getAttribute("aria-invalid"), "true");
          assert.equal(new URLSearchParams(new URL(page.url()).hash.slice(1)).get("compare"), "l2:0.03|gc:0.1");
        },
      );

      await t.test("fixed colour scale: the legend stays put while training; auto follows the values", async () => {
        await load(page, base, new URLSearchParams({ ...CONFIG, autorun: "0" }).toString(), "done");
        // The legend is drawn with the first picture (the next animation frame after the numbers arrive).
        const legend = async () => {
          await page.locator('[data-testid="gradient-legend"][data-lo]').waitFor({ timeout: 10_000 });
          return [
            await page.getByTestId("gradient-legend").getAttribute("data-lo"),
            await page.getByTestId("gradient-legend").getAttribute("data-hi"),
          ];
        };
        const fixed0 = await legend();
        await page.evaluate(() =>
          (window as unknown as { gcx: { runSteps(n: number): Promise<number> } }).gcx.runSteps(200),
        );
        await page.waitForFunction(
          () => document.querySelector('[data-testid="step"]')?.getAttribute("data-value") === "200",
        );
        assert.deepEqual(await legend(), fixed0, "fixed scale: the same legend after 200 steps");
        assert.deepEqual(fixed0.map(Number), [1e-3, 1e3]);
        await load(page, base, new URLSearchParams({ ...CONFIG, scale: "auto", autorun: "0" }).toString(), "done");
        const auto0 = await legend();
        await page.evaluate(() =>
          (window as unknown as { gcx: { runSteps(n: number): Promise<number> } }).gcx.runSteps(200),
        );
        await page.waitForFunction(
          () => document.querySelector('[data-testid="step"]')?.getAttribute("data-value") === "200",
        );
        assert.notDeepEqual(await legend(), auto0, "auto scale: the legend follows the values");
      });

      await t.test("a dead network (SGD, learning rate 3) is flagged, not silently shown", async () => {
        await page.goto("about:blank");
        await page.goto(`${base}#${new URLSearchParams({ ...CONFIG, lr: "3", autorun: "1000" })}`);
        await page
          .locator('[data-testid="status"][data-value="dead"], [data-testid="status"][data-value="diverged"]')
          .waitFor({ timeout: 60_000 });
        const status = await page.getByTestId("status").getAttribute("data-value");
        const message = (await page.getByTestId("message").textContent()) ?? "";
        t.diagnostic(`lr 3: status ${status}: ${message}`);
        assert.match(message, status === "dead" ? /network is dead: GC is 0/ : /diverged/);
        if (status === "dead") assert.equal(await number(page, "gc"), 0);
      });

      await t.test("the tour: every stop runs, and the verdict reports the direction its numbers show", async () => {
        await load(page, base, new URLSearchParams(CONFIG).toString());
        const ids = await page
          .locator("[data-tour]")
          .evaluateAll((bs) => bs.map((b) => (b as HTMLElement).dataset.tour!));
        assert.deepEqual(ids, ["T1", "T2", "T3", "T4", "T5", "T6", "T7", "X", "sine"]);
        // Claims this small problem shows at once; T4 is reported either way, T7 has no staged direction.
        const robust = new Set(["T1", "T2", "T3", "T5", "T6", "X"]);
        for (const id of ids) {
          await page.getByTestId(`tour-${id}`).click();
          await page.waitForFunction(
            (want) =>
              (window as unknown as Gcx).gcx.page().tour === want &&
              document.querySelector('[data-testid="status"]')?.getAttribute("data-value") === "done",
            id,
            { timeout: 180_000 },
          );
          assert.ok(((await page.getByTestId("tour-text").textContent()) ?? "").length > 40, `${id}: explained`);
          const runs = await page.evaluate(() => (window as unknown as Gcx).gcx.runs().map((r) => r.last!.gcTrain));
          const verdict = (await page.getByTestId("verdict").textContent()) ?? "";
          const holds = await page.getByTestId("verdict").getAttribute("data-holds");
          t.diagnostic(`tour ${id}: GC ${runs.map((g) => g.toPrecision(3)).join(" / ")}: ${verdict}`);
          if (id === "sine") {
            const net = Number(await page.getByTestId("energy-net").getAttribute("data-value"));
            const interp = Number(await page.getByTestId("energy-interp").getAttribute("data-value"));
            // The piecewise-linear interpolant has the least energy of all functions through the points; the trained
            // network passes near them, so its energy is close to it and not far below.
            assert.ok(
              interp > 0 && net > 0.8 * interp && net < 3 * interp,
              `∫g'²: network ${net}, interpolant ${interp}`,
            );
          } else if (id === "T7") {
            assert.equal(holds, "null");
            assert.match((await page.getByTestId("tour-text").textContent()) ?? "", /does not confirm/);
            assert.equal(runs.length, 3);
          } else {
            assert.equal(runs.length, 2);
            assert.equal(holds, String(runs[1] < runs[0]), `${id}: the verdict matches the numbers`);
            if (robust.has(id)) assert.equal(holds, "true", `${id}: ${verdict}`);
          }
        }
      });

      await t.test("phone layout (390×844): the plots are in view and the play bar stays in reach", async () => {
        const phone = await context!.newPage();
        try {
          await phone.setViewportSize({ width: 390, height: 844 });
          phone.on("pageerror", (e) => errors.push(e.message));
          await phone.goto(`${base}#${new URLSearchParams({ ...CONFIG, autorun: "100" })}`);
          await phone.locator('[data-testid="status"][data-value="done"]').waitFor({ timeout: 60_000 });
          const fn = await phone.getByTestId("function-view").boundingBox();
          assert.ok(
            fn && fn.y < 844 && fn.y + fn.height / 2 < 844 && fn.x >= 0 && fn.x + fn.width <= 390,
            `function view in the first screen: ${JSON.stringify(fn)}`,
          );
          const width = await phone.evaluate(() => document.documentElement.scrollWidth);
          assert.ok(width <= 390, `no horizontal scrolling (${width} px)`);
          const play = await phone.getByTestId("play-button").boundingBox();
          assert.ok(play && play.height >= 40, `Play is at least 40 px tall (${play?.height})`);
          await phone.screenshot({ path: SCREENSHOT_MOBILE });
          await phone.mouse.wheel(0, 1500);
          await phone.waitForTimeout(300);
          const after = await phone.getByTestId("play-button").boundingBox();
          assert.ok(
            after && after.y >= 0 && after.y < 100,
            `Play stays at the top when scrolled: ${JSON.stringify(after)}`,
          );
          const small = await phone.evaluate(() =>
            [
              ...document.querySelectorAll(
                "#controls select, #controls input[type=number], #controls input[type=text], header button",
              ),
            ]
              .filter((e) => (e as HTMLElement).getBoundingClientRect().height < 40)
              .map((e) => e.id || e.textContent),
          );
          assert.deepEqual(small, [], "controls are at least 40 px tall");
        } finally {
          await phone.close();
        }
      });

      assert.deepEqual(errors, [], "no errors in the page");
      assert.deepEqual(foreign, [], "no requests to other origins (works offline)");
    } finally {
      await context?.close();
      server.close();
      rmSync(userDataDir, { recursive: true, force: true });
      t.diagnostic(`e2e total: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  },
);
