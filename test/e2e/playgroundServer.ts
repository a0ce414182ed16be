/**
 * What the playground's end-to-end tests share: the Vite build of web/ into web/dist and a static server that
 * serves it from a sub-path of 127.0.0.1 (as a static host would; the app's URLs must be relative).
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

/** Debian's Chromium, or the binary GCX_CHROMIUM names. */
export const CHROMIUM = process.env.GCX_CHROMIUM ?? "/usr/bin/chromium";
// dist/test/e2e/*.js → the repository root
export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
export const WEB_DIST = join(ROOT, "web", "dist");
/** The app is served from here, not from the root: its URLs must be relative. */
export const SUB_PATH = "/static/gcx/";
export const run = promisify(execFile);

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".css": "text/css",
  ".wasm": "application/wasm",
  ".svg": "image/svg+xml",
  ".png": "image/png",
};

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

/** A static file server for dir at SUB_PATH on 127.0.0.1 (a free port); anything outside SUB_PATH is a 404. */
export async function serve(dir: string): Promise<{ server: Server; base: string }> {
  const server = createServer((req, res) => {
    const full = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    if (!full.startsWith(SUB_PATH)) {
      res.writeHead(404).end("not found");
      return;
    }
    const path = full.slice(SUB_PATH.length - 1);
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
  return { server, base: `http://127.0.0.1:${addr.port}${SUB_PATH}` };
}
