/**
 * What the gateway imports from this package: where `vite build` put the pages (index.html, the
 * document of both pages, and assets/ with their hashed scripts and styles).
 */
import { fileURLToPath } from "node:url";

export const UI_DIST_DIR = fileURLToPath(new URL("./dist/", import.meta.url));
