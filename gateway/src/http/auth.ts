/**
 * Bearer-key authentication and per-key request limits for every route except the explicit allow-list
 * (probes and scrapes). Keys are compared as SHA-256 digests; limits answer 429 with x-ratelimit-* headers
 * and retry-after, OpenAI-shaped. Token limits need the prompt, so they are applied where generations
 * start (domain/token-limits.ts), not here.
 */
import { AppError } from "@expertmesh/common";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { ApiKeyRecord, ApiKeySource } from "../domain/api-keys.ts";
import type { RateLimiter } from "../domain/rate-limiter.ts";
import { gatewayErrors } from "../errors.ts";
import { setRateLimitHeaders } from "./rate-limit-headers.ts";
import { UI_ROUTES } from "./routes/ui.ts";

/**
 * Routes reachable without a key: probes, scrapes, and the static pages (which ask the user for a key and
 * send it with every call they make). Anything not listed here requires one.
 */
export const PUBLIC_ROUTES: ReadonlySet<string> = new Set(["/health", "/ready", "/metrics", ...UI_ROUTES]);

declare module "fastify" {
  interface FastifyRequest {
    apiKey?: ApiKeyRecord;
  }
}

export interface AuthOptions {
  keys: ApiKeySource;
  limiter: RateLimiter;
  /** Default requests per minute per key (0 = unlimited); a key record may override it. */
  requestsPerMinute: number;
}

export function createAuthHook(o: AuthOptions) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!o.keys.required || PUBLIC_ROUTES.has(request.routeOptions.url ?? "")) return;
    const header = request.headers.authorization;
    if (!header) {
      throw gatewayErrors.create("invalid_api_key", {
        reason:
          "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
      });
    }
    const match = /^Bearer\s+(.+)$/i.exec(header);
    const record = match?.[1] ? await find(o.keys, match[1].trim(), request) : undefined;
    if (!record) throw gatewayErrors.create("invalid_api_key", { reason: "Incorrect API key provided." });
    request.apiKey = record;
    const limit = record.requests_per_minute ?? o.requestsPerMinute;
    if (limit > 0) {
      const d = await o.limiter.hit(`rpm:${record.id}`, limit, 60_000);
      setRateLimitHeaders(reply, "requests", d);
      if (!d.allowed) {
        throw gatewayErrors.create(
          "rate_limit_exceeded",
          { key: record.id, unit: "requests", limit: d.limit },
          { retryAfterMs: d.resetMs },
        );
      }
    }
  };
}

/** A key store that cannot answer is a 503, never a 401 (the key may well be valid) nor a 500. */
async function find(keys: ApiKeySource, presented: string, request: FastifyRequest): Promise<ApiKeyRecord | undefined> {
  try {
    return await keys.find(presented);
  } catch (err) {
    if (err instanceof AppError) throw err;
    request.log.error({ err }, "API key lookup failed");
    throw gatewayErrors.create("service_unavailable", { reason: "The API key store is unavailable; retry shortly." });
  }
}
