/**
 * The x-ratelimit-* response headers as OpenAI sends them: limit, remaining and reset (e.g. "17s") for
 * requests and for tokens. Set on the reply; openEventStream carries them onto an SSE response too.
 */
import type { FastifyReply } from "fastify";
import type { RateDecision } from "../domain/rate-limiter.ts";

export function setRateLimitHeaders(reply: FastifyReply, unit: "requests" | "tokens", d: RateDecision): void {
  reply.header(`x-ratelimit-limit-${unit}`, String(d.limit));
  reply.header(`x-ratelimit-remaining-${unit}`, String(d.remaining));
  reply.header(`x-ratelimit-reset-${unit}`, `${Math.ceil(d.resetMs / 1000)}s`);
}
