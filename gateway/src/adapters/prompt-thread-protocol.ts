/** The messages between the gateway and its prompt-preparation threads. */
import type { HarmonyMessage, RenderOptions } from "../domain/harmony/types.ts";
import type { Path } from "./large-strings.ts";

interface JobBase {
  id: number;
  /** CPU time of the thread the job may spend (the thread runs at a lower priority, so it may wait). */
  budgetMs: number;
  maxTokens?: number;
  /** One Int32: non-zero asks the thread to stop this job. */
  cancel: SharedArrayBuffer;
  /** Strings taken out of the job (adapters/large-strings.ts), sent after it in slices: their paths and lengths. */
  large?: Array<{ path: Path; length: number }>;
}

/** After a job with `large`: the next slice of its strings, or word that the rest will not come (the client left). */
export type ThreadSlice = { id: number; slice: string } | { id: number; drop: true };

export type ThreadJob =
  | (JobBase & { kind: "render"; messages: readonly HarmonyMessage[]; options: RenderOptions })
  | (JobBase & { kind: "encode"; text: string });

/** What a thread was given at its start. */
export interface ThreadData {
  /** Its scheduling priority (nice, 0–19): below the event loop's and the engine's. */
  nice: number;
}

export type ThreadResult =
  | { id: number; ok: true; tokens: Int32Array }
  | { id: number; ok: false; reason: "budget" | "cancelled" | "too_long" | "error"; message: string; count?: number };
