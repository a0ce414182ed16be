/**
 * A static file server for the browser tests: serves dir at `subPath` of 127.0.0.1 on a free port (a secure
 * context, as WebGPU and module workers need); anything outside subPath is a 404, paths escaping dir a 403, and
 * /favicon.ico an empty 204 (so the browser's automatic request logs no error).
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { extname, join, normalize, sep } from "node:path";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".css": "text/css",
  ".wasm": "application/wasm",
  ".svg": "image/svg+xml",
  ".png": "image/png",
};

/** Starts the server; `base` is the URL of subPath (ending in "/"). */
export async function serveStatic(dir: string, subPath = "/"): Promise<{ server: Server; base: string }> {
  const server = createServer((req, res) => {
    const full = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    if (full === "/favicon.ico") {
      res.writeHead(204).end();
      return;
    }
    if (!full.startsWith(subPath)) {
      res.writeHead(404).end("not found");
      return;
    }
    const path = full.slice(subPath.length - 1);
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
  return { server, base: `http://127.0.0.1:${addr.port}${subPath}` };
}
