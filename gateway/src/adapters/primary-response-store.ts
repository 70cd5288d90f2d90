/**
 * The Responses store port for a gateway child without Redis: records live in the primary process's
 * MemoryResponseStore (cluster/primary.ts), so a follow-up (previous_response_id, GET/DELETE) finds its
 * record whichever process the connection landed on. Records cross the channel by structured clone
 * (cluster serialization "advanced"), as MemoryResponseStore copies them anyway.
 */
import type { PrimaryChannel } from "../cluster/primary-channel.ts";
import type { ResponseStore, StoredResponse } from "../domain/responses/store.ts";

export class PrimaryResponseStore implements ResponseStore {
  readonly #channel: PrimaryChannel;

  constructor(channel: PrimaryChannel) {
    this.#channel = channel;
  }

  async put(r: StoredResponse & { owner: string }): Promise<void> {
    await this.#channel.call("responses.put", r);
  }

  putIf(r: StoredResponse & { owner: string }, from: readonly string[]): Promise<boolean> {
    return this.#channel.call("responses.putIf", r, from);
  }

  get(id: string, tenant: string): Promise<StoredResponse | null> {
    return this.#channel.call("responses.get", id, tenant);
  }

  delete(id: string, tenant: string): Promise<boolean> {
    return this.#channel.call("responses.delete", id, tenant);
  }
}
