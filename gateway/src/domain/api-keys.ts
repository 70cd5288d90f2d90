/**
 * API keys, hashed at rest: the gateway stores and compares SHA-256 digests, never the keys. Keys come
 * from a file of records (id, sha256, optional per-key limits) and, for local development, from
 * GATEWAY_API_KEYS (hashed at startup).
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";

export interface ApiKeyRecord {
  id: string;
  sha256: string;
  requests_per_minute?: number;
}

export function hashKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

export class ApiKeys {
  readonly #byHash = new Map<string, ApiKeyRecord>();

  constructor(records: ApiKeyRecord[]) {
    for (const r of records) this.#byHash.set(r.sha256.toLowerCase(), r);
  }

  static load(plain: readonly string[], file: string): ApiKeys {
    const records: ApiKeyRecord[] = plain.map((k, i) => ({ id: `env-${i}`, sha256: hashKey(k) }));
    if (file) {
      const parsed = parseYaml(readFileSync(file, "utf8")) as { keys?: ApiKeyRecord[] } | null;
      for (const r of parsed?.keys ?? []) {
        if (typeof r.id !== "string" || !/^[0-9a-f]{64}$/i.test(r.sha256 ?? "")) {
          throw new Error(`${file}: every key needs an id and a 64-hex sha256`);
        }
        records.push(r);
      }
    }
    return new ApiKeys(records);
  }

  get size(): number {
    return this.#byHash.size;
  }

  /** The record of a presented key, or undefined. */
  find(presented: string): ApiKeyRecord | undefined {
    return this.#byHash.get(hashKey(presented));
  }
}
