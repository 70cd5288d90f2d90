/**
 * The credential a batch runner presents for one batch's lines: an ApiKeySource that knows the active
 * batches' tokens (kept, hashed, in the batch store), and the test the generation path uses to send
 * those lines at batch priority. A token stops working when its batch reaches a terminal status. Its
 * record has no request or token limits (batches have their own bound: the runners' concurrency). A line
 * acts for its batch's owner: what it stores (a response) is the owner's, and it may continue the owner's
 * responses (batchLineTenant; R22).
 */
import type { RedisBatchStore } from "@expertmesh/orchestrator/batches";
import { type ApiKeyRecord, type ApiKeySource, hashKey } from "../api-keys.ts";

const TOKEN_PREFIX = "sk-em-batch-";

/** Records this module produced, with their batch's owner: identity, not an id convention, marks a batch line. */
const lineOwners = new WeakMap<ApiKeyRecord, string>();

export function isBatchLine(key: ApiKeyRecord | undefined): boolean {
  return key !== undefined && lineOwners.has(key);
}

/** The tenant a batch line's record acts for (its batch's owner); undefined for any other record. */
export function batchLineTenant(key: ApiKeyRecord): string | undefined {
  return lineOwners.get(key);
}

export class BatchLineKeys implements ApiKeySource {
  readonly #store: Pick<RedisBatchStore, "byToken" | "get">;

  constructor(store: Pick<RedisBatchStore, "byToken" | "get">) {
    this.#store = store;
  }

  /** Batch credentials alone never turn authentication on. */
  get required(): boolean {
    return false;
  }

  async find(presented: string): Promise<ApiKeyRecord | undefined> {
    if (!presented.startsWith(TOKEN_PREFIX)) return undefined;
    const batchId = await this.#store.byToken(presented);
    const owner = batchId ? (await this.#store.get(batchId))?.owner : undefined;
    if (!batchId || owner === undefined) return undefined;
    const record: ApiKeyRecord = { id: `batch:${batchId}`, sha256: hashKey(presented), requests_per_minute: 0, tokens_per_minute: 0 };
    lineOwners.set(record, owner);
    return record;
  }
}
