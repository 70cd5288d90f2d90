/**
 * What the primary keeps for its children when there is no Redis: one rate limiter and one response
 * store for all of them, reached over the IPC channel (primary-channel.ts) by PrimaryRateLimiter and
 * PrimaryResponseStore. The op names here and in those adapters are the whole protocol.
 */
import type { RateLimiter } from "../domain/rate-limiter.ts";
import type { ResponseStore, StoredResponse } from "../domain/responses/store.ts";
import type { Handlers } from "./primary-channel.ts";

export function sharedStateHandlers(limiter: RateLimiter, responses: ResponseStore): Handlers {
  return {
    "limiter.hit": (key: string, limit: number, windowMs: number) => limiter.hit(key, limit, windowMs),
    "limiter.reserve": (key: string, amount: number, limit: number, windowMs: number) => limiter.reserve(key, amount, limit, windowMs),
    "limiter.charge": (key: string, amount: number, windowMs: number) => limiter.charge(key, amount, windowMs),
    "responses.put": (r: StoredResponse & { owner: string }) => responses.put(r),
    "responses.putIf": (r: StoredResponse & { owner: string }, from: string[]) => responses.putIf(r, from),
    "responses.get": (id: string, tenant: string) => responses.get(id, tenant),
    "responses.delete": (id: string, tenant: string) => responses.delete(id, tenant),
  };
}
