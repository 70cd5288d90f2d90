/**
 * The credential a batch runner presents for one batch's lines: an ApiKeySource that knows the active
 * batches' tokens (kept, hashed, in the batch store), and the test the generation path uses to send
 * those lines at batch priority. A token stops working when its batch reaches a terminal status. Its
 * record has no request or token limits (batches have their own bound: the runners' concurrency).
 */
import type { RedisBatchStore } from "@expertmesh/orchestrator/batches";
import { type ApiKeyRecord, type ApiKeySource, hashKey } from "../api-keys.ts";

const TOKEN_PREFIX = "sk-em-batch-";

/** Records this module produced: identity, not an id convention, marks a batch line. */
const lineRecords = new WeakSet<ApiKeyRecord>();

export function isBatchLine(key: ApiKeyRecord | undefined): boolean {
  return key !== undefined && lineRecords.has(key);
}

export class BatchLineKeys implements ApiKeySource {
  readonly #store: Pick<RedisBatchStore, "byToken">;

  constructor(store: Pick<RedisBatchStore, "byToken">) {
    this.#store = store;
  }

  /** Batch credentials alone never turn authentication on. */
  get required(): boolean {
    return false;
  }

  async find(presented: string): Promise<ApiKeyRecord | undefined> {
    if (!presented.startsWith(TOKEN_PREFIX)) return undefined;
    const batchId = await this.#store.byToken(presented);
    if (!batchId) return undefined;
    const record: ApiKeyRecord = { id: `batch:${batchId}`, sha256: hashKey(presented), requests_per_minute: 0, tokens_per_minute: 0 };
    lineRecords.add(record);
    return record;
  }
}
