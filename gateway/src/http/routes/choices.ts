/**
 * n > 1: one worker generation per choice, started together. Choice i samples with seed + i when the
 * client gave a seed (so choices differ but the response is reproducible). If any choice cannot start,
 * the ones that did are cancelled and the first error is the HTTP error.
 */
import type { FastifyReply } from "fastify";
import type { GenerationBackend } from "../../domain/generation-backend.ts";
import { type GenerationStart, type StartedGeneration, startGeneration } from "./generation.ts";

/** The most choices one request may ask for (n). */
export const MAX_CHOICES = 8;

export async function startChoices(
  backend: GenerationBackend,
  reply: FastifyReply,
  n: number,
  g: GenerationStart,
): Promise<StartedGeneration[]> {
  const settled = await Promise.allSettled(
    Array.from({ length: n }, (_, i) =>
      startGeneration(backend, reply, {
        ...g,
        id: n === 1 ? g.id : `${g.id}-${i}`,
        sampling: g.sampling.seed === undefined ? g.sampling : { ...g.sampling, seed: (g.sampling.seed + i) >>> 0 },
      }),
    ),
  );
  const failed = settled.find((s) => s.status === "rejected");
  if (failed) {
    for (const s of settled) if (s.status === "fulfilled") s.value.controller.abort();
    throw failed.reason;
  }
  return settled.map((s) => (s as PromiseFulfilledResult<StartedGeneration>).value);
}
