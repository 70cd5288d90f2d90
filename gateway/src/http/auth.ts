/**
 * Bearer-key authentication for every route except the explicit allow-list below (probes and scrapes).
 * Keys are compared in constant time.
 */
import { timingSafeEqual } from "node:crypto";
import type { FastifyRequest } from "fastify";
import { gatewayErrors } from "../errors.ts";

/** Routes reachable without a key. Anything not listed here requires one. */
export const PUBLIC_ROUTES: ReadonlySet<string> = new Set(["/health", "/ready", "/metrics"]);

export function createAuthHook(apiKeys: readonly string[]) {
  const keys = apiKeys.map((k) => Buffer.from(k));
  const matches = (presented: Buffer) => keys.some((k) => k.length === presented.length && timingSafeEqual(k, presented));
  return async (request: FastifyRequest): Promise<void> => {
    if (keys.length === 0 || PUBLIC_ROUTES.has(request.routeOptions.url ?? "")) return;
    const header = request.headers.authorization;
    if (!header) {
      throw gatewayErrors.create("invalid_api_key", {
        reason:
          "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
      });
    }
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (!match?.[1] || !matches(Buffer.from(match[1].trim()))) {
      throw gatewayErrors.create("invalid_api_key", { reason: "Incorrect API key provided." });
    }
  };
}
