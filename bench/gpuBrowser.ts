/**
 * The bench:gpu smoke in headless Chromium, for machines whose Node has no WebGPU adapter (CI): builds
 * bench/gpu-page with Vite, serves it from 127.0.0.1 (navigator.gpu needs a secure context) and runs it in Chromium
 * with --enable-unsafe-webgpu, where WebGPU runs on SwiftShader (software; the smoke checks correctness only).
 * The browser is /usr/bin/chromium unless GCX_CHROMIUM names another binary.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { chromium, type BrowserContext } from "playwright-core";
import { serveStatic } from "../test/e2e/staticServer.js";
import { WEBGPU_ARGS } from "../test/e2e/webgpuArgs.js";
import type { SmokeResult } from "./gpuTasks.js";

/** What the page reports: the adapter (a string: why there is none), the comparisons, device and page errors. */
export interface BrowserSmoke {
  adapter: unknown;
  results: SmokeResult[];
  errors: string[];
}

/** Runs the smoke in headless Chromium; throws with one line when the browser is missing or the page fails. */
export async function smokeInChromium(): Promise<BrowserSmoke> {
  const exe = process.env.GCX_CHROMIUM ?? "/usr/bin/chromium";
  if (!existsSync(exe)) throw new Error(`${exe} is absent (apt-get install -y chromium, or set GCX_CHROMIUM)`);
  const root = fileURLToPath(new URL("../../", import.meta.url));
  const out = mkdtempSync(join(tmpdir(), "gcx-bench-gpu-page-"));
  const userDataDir = mkdtempSync(join(tmpdir(), "gcx-bench-gpu-chromium-"));
  let context: BrowserContext | undefined;
  let server: Server | undefined;
  try {
    const vite = join(root, "node_modules", "vite", "bin", "vite.js");
    const page = join(root, "bench", "gpu-page");
    const viteArgs = [vite, "build", page, "--outDir", out, "--emptyOutDir", "--base", "./", "--target", "es2022"];
    await promisify(execFile)(process.execPath, [...viteArgs, "--logLevel", "warn"], { cwd: root });
    const served = await serveStatic(out);
    server = served.server;
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: exe,
      headless: true,
      args: WEBGPU_ARGS,
    });
    const tab = context.pages()[0] ?? (await context.newPage());
    const errors: string[] = [];
    tab.on("pageerror", (e) => errors.push(e.message));
    tab.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    await tab.goto(served.base);
    await tab.waitForFunction(() => "gcxBenchSmoke" in globalThis, null, { timeout: 60_000 });
    const r = await tab.evaluate(() =>
      (globalThis as unknown as { gcxBenchSmoke: { run(): Promise<BrowserSmoke> } }).gcxBenchSmoke.run(),
    );
    return { ...r, errors: [...r.errors, ...errors] };
  } finally {
    await context?.close();
    server?.close();
    rmSync(out, { recursive: true, force: true });
    rmSync(userDataDir, { recursive: true, force: true });
  }
}
