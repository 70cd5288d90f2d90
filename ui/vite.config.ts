/** Two pages, one build: index.html (the playground) and dashboard.html, with hashed assets under assets/. */
import { defineConfig } from "vite";

export default defineConfig({
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    // The gateway's CSP allows no inline script: no preload polyfill (every target browser has modulepreload).
    modulePreload: { polyfill: false },
    rolldownOptions: { input: { playground: "index.html", dashboard: "dashboard.html" } },
  },
});
