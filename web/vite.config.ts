/**
 * Vite config of the playground: `npm run web` serves it (dev), `npm run build:web` writes static files to
 * web/dist. Relative asset paths (the page's and the worker's), so dist/ can be served from any sub-path of a
 * static host; everything is bundled (no CDN), so it works offline.
 */
import { defineConfig } from "vite";

const webDir = new URL(".", import.meta.url).pathname;
const repoDir = new URL("..", import.meta.url).pathname;

export default defineConfig({
  root: webDir,
  base: "./",
  publicDir: false,
  // The library lives in ../src and the wasm kernels in ../dist/wasm: let the dev server read them.
  server: { host: "127.0.0.1", port: 5173, fs: { allow: [repoDir] } },
  preview: { host: "127.0.0.1", port: 4173 },
  build: { outDir: "dist", emptyOutDir: true, target: "es2022" },
  // The trainer runs in a module worker (the library uses top-level await), bundled beside the page.
  worker: { format: "es" },
  clearScreen: false,
});
