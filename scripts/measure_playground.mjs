// Playground responsiveness in headless Chromium (issue 16): frames per second while a 6×64 MLP trains on 1,000
// spirals points (5 steps per frame), and the time from a mouse click on Pause being sent to the status saying
// "paused" (pauseLatencyMs; fromEventMs counts from the click event's own timestamp). Three play/pause rounds.
// usage: npm run build:web && node scripts/measure_playground.mjs web/dist [label]
// To compare two builds, copy each web/dist aside and run them alternately (the machine's load changes).
// Prints timings: run it on a quiet machine, or say how busy the machine was.
import { chromium } from "playwright-core";
import { createServer } from "node:http";
import { readFileSync, existsSync, statSync } from "node:fs";
import { join, extname } from "node:path";
import { tmpdir } from "node:os";
const dir = process.argv[2];
const T = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".wasm": "application/wasm" };
const server = createServer((req, res) => {
  let f = join(dir, decodeURIComponent(new URL(req.url, "http://x").pathname));
  if (existsSync(f) && statSync(f).isDirectory()) f = join(f, "index.html");
  if (!existsSync(f)) return res.writeHead(404).end();
  res.writeHead(200, { "content-type": T[extname(f)] ?? "application/octet-stream" }).end(readFileSync(f));
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const base = `http://127.0.0.1:${server.address().port}/`;
const ctx = await chromium.launchPersistentContext(join(tmpdir(), `gcx-measure-chromium-${process.pid}`), {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu"],
  viewport: { width: 1320, height: 1000 },
});
const page = ctx.pages()[0];
const hash = "data=spirals&size=1000&depth=6&width=64&lr=0.03&steps-per-frame=5&noise=0.1";
await page.goto(`${base}#${hash}`);
await page.locator('[data-testid="status"][data-value="ready"]').waitFor({ timeout: 60000 });
const results = [];
for (let rep = 0; rep < 3; rep++) {
  await page.getByTestId("play-button").click();
  await page.locator('[data-testid="status"][data-value="training"]').waitFor({ timeout: 20000 });
  await page.waitForTimeout(1500);
  const s0 = await page.evaluate(() => ({ ...window.gcx.totals(), t: performance.now() }));
  await page.waitForTimeout(4000);
  const s1 = await page.evaluate(() => ({ ...window.gcx.totals(), t: performance.now() }));
  // latency: click event timestamp → status shows "paused" (observed by a MutationObserver)
  await page.evaluate(() => {
    window.__lat = {};
    document.addEventListener(
      "click",
      (e) => {
        window.__lat.click = e.timeStamp;
      },
      { capture: true, once: true },
    );
    const st = document.querySelector('[data-testid="status"]');
    const mo = new MutationObserver(() => {
      if (st.dataset.value === "paused" && window.__lat.paused === undefined) {
        window.__lat.paused = performance.now();
        window.__lat.pausedWall = Date.now();
        mo.disconnect();
      }
    });
    mo.observe(st, { attributes: true, childList: true, subtree: true, characterData: true });
  });
  const box = await page.getByTestId("play-button").boundingBox();
  const tSend = Date.now();
  await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
  await page.locator('[data-testid="status"][data-value="paused"]').waitFor({ timeout: 30000 });
  const lat = await page.evaluate(() => window.__lat);
  const fps = (1000 * (s1.frames - s0.frames)) / (s1.t - s0.t);
  results.push({
    fps: +fps.toFixed(1),
    pauseLatencyMs: Math.round(lat.pausedWall - tSend),
    fromEventMs: Math.round(lat.paused - lat.click),
  });
  await page.waitForTimeout(500);
}
console.log(process.argv[3] ?? dir, JSON.stringify(results));
await ctx.close();
server.close();
