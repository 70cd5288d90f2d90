/** The messages between the gateway and its prompt-preparation threads. */
import type { HarmonyMessage, RenderOptions } from "../domain/harmony/types.ts";

interface JobBase {
  id: number;
  budgetMs: number;
  /** One Int32: non-zero asks the thread to stop this job. */
  cancel: SharedArrayBuffer;
}

export type ThreadJob =
  | (JobBase & { kind: "render"; messages: readonly HarmonyMessage[]; options: RenderOptions })
  | (JobBase & { kind: "encode"; text: string });

export type ThreadResult =
  | { id: number; ok: true; text: string; tokens: Int32Array }
  | { id: number; ok: false; reason: "budget" | "cancelled" | "error"; message: string };
