/** One document (index.html) for both pages, with hashed assets under assets/: a chunk per page. */
import { defineConfig } from "vite";

export default defineConfig({
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    // The gateway's CSP allows no inline script: no preload polyfill (every target browser has modulepreload).
    modulePreload: { polyfill: false },
  },
});
