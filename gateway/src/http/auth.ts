/**
 * Bearer-key authentication and per-key request limits for every route except the explicit allow-list
 * (probes and scrapes). Keys are compared as SHA-256 digests; limits answer 429 with x-ratelimit-* headers
 * and retry-after, OpenAI-shaped.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { ApiKeyRecord, ApiKeys } from "../domain/api-keys.ts";
import type { RateLimiter } from "../domain/rate-limiter.ts";
import { gatewayErrors } from "../errors.ts";

/** Routes reachable without a key. Anything not listed here requires one. */
export const PUBLIC_ROUTES: ReadonlySet<string> = new Set(["/health", "/ready", "/metrics"]);

declare module "fastify" {
  interface FastifyRequest {
    apiKey?: ApiKeyRecord;
  }
}

export interface AuthOptions {
  keys: ApiKeys;
  limiter: RateLimiter;
  /** Default requests per minute per key (0 = unlimited); a key record may override it. */
  requestsPerMinute: number;
}

export function createAuthHook(o: AuthOptions) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (o.keys.size === 0 || PUBLIC_ROUTES.has(request.routeOptions.url ?? "")) return;
    const header = request.headers.authorization;
    if (!header) {
      throw gatewayErrors.create("invalid_api_key", {
        reason:
          "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
      });
    }
    const match = /^Bearer\s+(.+)$/i.exec(header);
    const record = match?.[1] ? o.keys.find(match[1].trim()) : undefined;
    if (!record) throw gatewayErrors.create("invalid_api_key", { reason: "Incorrect API key provided." });
    request.apiKey = record;
    const limit = record.requests_per_minute ?? o.requestsPerMinute;
    if (limit > 0) {
      const d = await o.limiter.hit(`rpm:${record.id}`, limit, 60_000);
      reply.header("x-ratelimit-limit-requests", String(d.limit));
      reply.header("x-ratelimit-remaining-requests", String(d.remaining));
      reply.header("x-ratelimit-reset-requests", `${Math.ceil(d.resetMs / 1000)}s`);
      if (!d.allowed) {
        throw gatewayErrors.create("rate_limit_exceeded", { limit: d.limit, key: record.id }, { retryAfterMs: d.resetMs });
      }
    }
  };
}
