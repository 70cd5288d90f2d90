/**
 * The Responses store port: what previous_response_id and GET/DELETE /v1/responses/{id} need. A stored
 * response keeps the OpenAI object returned to the client and the conversation as Harmony messages
 * (user turns, reasoning, calls, tool outputs, answers), so a follow-up renders exactly what the model saw.
 */
import type { HarmonyMessage } from "../harmony/types.ts";

export interface StoredResponse {
  /** The response object as returned by POST /v1/responses. */
  response: Record<string, unknown> & { id: string };
  /** The conversation after this turn, without the system/developer messages (rebuilt per request). */
  history: HarmonyMessage[];
  /** call_id → function name, for every call in the conversation. */
  calls: Record<string, string>;
}

export interface ResponseStore {
  put(r: StoredResponse): Promise<void>;
  get(id: string): Promise<StoredResponse | null>;
  /** true if it existed. */
  delete(id: string): Promise<boolean>;
}

/** In-process store (one gateway, no Redis): bounded, oldest evicted first. */
export class MemoryResponseStore implements ResponseStore {
  readonly #items = new Map<string, StoredResponse>();
  readonly #max: number;

  constructor(max = 10_000) {
    this.#max = max;
  }

  async put(r: StoredResponse): Promise<void> {
    this.#items.set(r.response.id, structuredClone(r));
    while (this.#items.size > this.#max) this.#items.delete(this.#items.keys().next().value as string);
  }

  async get(id: string): Promise<StoredResponse | null> {
    const r = this.#items.get(id);
    return r ? structuredClone(r) : null;
  }

  async delete(id: string): Promise<boolean> {
    return this.#items.delete(id);
  }
}
