/**
 * The Responses store port: what previous_response_id, GET/DELETE /v1/responses/{id} and its input_items
 * need. A stored response keeps the OpenAI object returned to the client, the request's input items, and
 * the conversation as Harmony messages (user turns, reasoning, calls, tool outputs, answers), so a
 * follow-up renders exactly what the model saw. Every record belongs to the tenant that created it
 * (http/tenant.ts): reads and deletes name the tenant, and another tenant's record is "not found" (R22).
 */
import { ANONYMOUS_TENANT } from "../api-keys.ts";
import type { HarmonyMessage } from "../harmony/types.ts";
import type { InputItemObject } from "./input-items.ts";

export interface StoredResponse {
  /**
   * The tenant that created it. Records written before tenancy have none: they count as the anonymous
   * tenant's, the only caller there was when auth was off, and with auth on nobody's (their creator is
   * unknown, and showing them to every key would keep the leak open until they expire).
   */
  owner?: string;
  /** The response object as returned by POST /v1/responses. */
  response: Record<string, unknown> & { id: string };
  /** The request's input as OpenAI items with ids (GET …/input_items); absent in records written before it. */
  input_items?: InputItemObject[];
  /** The conversation after this turn, without the system/developer messages (rebuilt per request). */
  history: HarmonyMessage[];
  /** call_id → function name, for every call in the conversation. */
  calls: Record<string, string>;
}

/**
 * Contract (every adapter): put stores `r` under r.response.id for r.owner; get and delete find a record
 * only for the tenant that owns it (visibleTo) — for any other tenant the record does not exist.
 */
export interface ResponseStore {
  put(r: StoredResponse & { owner: string }): Promise<void>;
  /**
   * Replaces the record stored under r.response.id only while its response's `status` is one of `from`
   * (a background response's transitions: queued → in_progress → completed, or → cancelled), atomically:
   * of a cancel and a completion racing, one wins and the other finds nothing to replace. false: not
   * replaced (no record, or another status).
   */
  putIf(r: StoredResponse & { owner: string }, from: readonly string[]): Promise<boolean>;
  get(id: string, tenant: string): Promise<StoredResponse | null>;
  /** true if it existed and belonged to `tenant` (then it is gone). */
  delete(id: string, tenant: string): Promise<boolean>;
}

/** Whether `tenant` may read or delete `r`. */
export function visibleTo(r: StoredResponse, tenant: string): boolean {
  return (r.owner ?? ANONYMOUS_TENANT) === tenant;
}

/** In-process store (one gateway, no Redis): bounded, oldest evicted first. */
export class MemoryResponseStore implements ResponseStore {
  readonly #items = new Map<string, StoredResponse>();
  readonly #max: number;

  constructor(max = 10_000) {
    this.#max = max;
  }

  async put(r: StoredResponse & { owner: string }): Promise<void> {
    this.#items.set(r.response.id, structuredClone(r));
    while (this.#items.size > this.#max) this.#items.delete(this.#items.keys().next().value as string);
  }

  async putIf(r: StoredResponse & { owner: string }, from: readonly string[]): Promise<boolean> {
    const now = this.#items.get(r.response.id);
    if (!now || !from.includes(String(now.response.status))) return false;
    this.#items.set(r.response.id, structuredClone(r));
    return true;
  }

  async get(id: string, tenant: string): Promise<StoredResponse | null> {
    const r = this.#items.get(id);
    return r && visibleTo(r, tenant) ? structuredClone(r) : null;
  }

  async delete(id: string, tenant: string): Promise<boolean> {
    const r = this.#items.get(id);
    return r !== undefined && visibleTo(r, tenant) && this.#items.delete(id);
  }
}
