/**
 * ToolLoops: the tool loops this gateway started, so their next turn goes where their KV is pinned. A
 * generation that ended in a tool call (the worker pinned its blocks: Finished.pinned_blocks) is keyed
 * by the hash of its prompt's last complete block on the group that ran it. The next turn of that
 * conversation — whether it names the calls by tool_call_id (chat) or by previous_response_id /
 * call_id (Responses) — is rendered as the same prompt plus the call and its result, so its hash chain
 * contains that key: the match needs neither the API's ids nor the route that built the prompt. Entries
 * end with the pin's TTL, when the follow-up is routed, or oldest first past `maxEntries`.
 */

export interface ToolLoop {
  /** The request id of the turn that pinned (the worker's pin key). */
  requestId: string;
  /** The group (its leader's address) holding the pin. */
  address: string;
}

export class ToolLoops {
  readonly #byKey = new Map<string, ToolLoop & { until: number }>(); // insertion order: oldest first
  readonly #maxEntries: number;

  constructor(maxEntries = 100_000) {
    this.#maxEntries = maxEntries;
  }

  get size(): number {
    return this.#byKey.size;
  }

  /** Records a pinned turn under `key` until `until` (the caller's clock). */
  add(key: string, loop: ToolLoop, until: number): void {
    this.#byKey.delete(key);
    this.#byKey.set(key, { ...loop, until });
    for (const k of this.#byKey.keys()) {
      if (this.#byKey.size <= this.#maxEntries) break;
      this.#byKey.delete(k);
    }
  }

  /**
   * The live loop whose key lies furthest along `chain` (the latest turn this prompt continues), taken
   * out of the table: a loop has one follow-up; `blocks` is how many leading blocks of `chain` its holder
   * keeps pinned (up to the key). Expired entries met on the way are dropped.
   */
  take(chain: readonly string[], now: number): (ToolLoop & { blocks: number }) | undefined {
    for (let i = chain.length - 1; i >= 0; i--) {
      const key = chain[i] as string;
      const loop = this.#byKey.get(key);
      if (!loop) continue;
      this.#byKey.delete(key);
      if (loop.until > now) return { requestId: loop.requestId, address: loop.address, blocks: i + 1 };
    }
    return undefined;
  }
}
