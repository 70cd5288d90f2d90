/**
 * The pages (@expertmesh/ui, built by `vite build` into static files): the playground at /, the dashboard
 * at /dashboard and their hashed assets under /assets/. They are public (the page must load to ask for a
 * key) and hold no secret: every call they make goes to the API with the key the user typed, from the
 * browser's localStorage. A strict CSP keeps them to this origin.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance, FastifyReply } from "fastify";

/** Routes of the pages: public, as /health is (http/auth.ts). */
export const UI_ROUTES = ["/", "/dashboard", "/assets/*"] as const;

const CSP =
  "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/** False (and a warning logged) when the pages were not built: the API is served without them. */
export function registerUiPages(app: FastifyInstance, distDir: string): boolean {
  if (!existsSync(join(distDir, "index.html"))) {
    app.log.warn({ distDir }, "the UI is not built (npm run build -w @expertmesh/ui): / and /dashboard are not served");
    return false;
  }
  app.register(fastifyStatic, {
    root: join(distDir, "assets"),
    prefix: "/assets/",
    // Vite names assets by content hash: a name never changes meaning.
    immutable: true,
    maxAge: "365d",
  });
  const page = (file: string) => async (_request: unknown, reply: FastifyReply) =>
    reply
      .header("content-security-policy", CSP)
      .header("x-content-type-options", "nosniff")
      .header("referrer-policy", "no-referrer")
      .header("cache-control", "no-cache")
      .sendFile(file, distDir, { cacheControl: false });
  app.get("/", page("index.html"));
  // One document for both: its script picks the page by path.
  app.get("/dashboard", page("index.html"));
  return true;
}
