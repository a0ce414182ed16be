/**
 * What the playground's end-to-end tests share: the Vite build of web/ into web/dist, served from a sub-path of
 * 127.0.0.1 (as a static host would; the app's URLs must be relative) by test/e2e/staticServer.ts.
 */
import { execFile } from "node:child_process";
import type { Server } from "node:http";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { serveStatic } from "./staticServer.js";

/** Debian's Chromium, or the binary GCX_CHROMIUM names. */
export const CHROMIUM = process.env.GCX_CHROMIUM ?? "/usr/bin/chromium";
// dist/test/e2e/*.js → the repository root
export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
export const WEB_DIST = join(ROOT, "web", "dist");
/** The app is served from here, not from the root: its URLs must be relative. */
export const SUB_PATH = "/static/gcx/";
export const run = promisify(execFile);

/** Builds the playground (web/) into web/dist with Vite; returns the seconds it took. */
export async function buildPlayground(): Promise<number> {
  const t0 = performance.now();
  await run(
    process.execPath,
    [
      join(ROOT, "node_modules", "vite", "bin", "vite.js"),
      "build",
      "--config",
      "web/vite.config.ts",
      "--logLevel",
      "warn",
    ],
    { cwd: ROOT },
  );
  return (performance.now() - t0) / 1000;
}

/** Serves dir (web/dist) at SUB_PATH of 127.0.0.1 on a free port. */
export function serve(dir: string): Promise<{ server: Server; base: string }> {
  return serveStatic(dir, SUB_PATH);
}
