/**
 * API keys, hashed at rest: the gateway stores and compares SHA-256 digests, never the keys. The port is
 * ApiKeySource (find a presented key's record); sources: ApiKeys (a file of records plus, for local
 * development, GATEWAY_API_KEYS hashed at startup), the Redis store (adapters/redis-api-keys.ts), and
 * AnyApiKeys (the first source that knows the key). Nothing here ever logs or returns a key.
 */
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";

export interface ApiKeyRecord {
  id: string;
  sha256: string;
  /** A human label (Redis keys; the CLI's --name). */
  name?: string;
  /**
   * The project this key belongs to: keys with the same project share their stored objects (responses,
   * files, batches). Without one, the key is a tenant of its own (http/tenant.ts).
   */
  project?: string;
  /** Overrides limits.requests_per_minute for this key (0 = unlimited). */
  requests_per_minute?: number;
  /** Overrides limits.tokens_per_minute for this key (0 = unlimited). */
  tokens_per_minute?: number;
}

/**
 * Contract: `required` is false only when no key can ever be valid (no source configured): auth is then
 * off. find(presented) resolves the record of a valid key, or undefined; it never throws for an unknown
 * key (a store outage may reject).
 */
export interface ApiKeySource {
  readonly required: boolean;
  find(presented: string): Promise<ApiKeyRecord | undefined>;
}

export function hashKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

/** A new random key: `sk-em-` and 32 random bytes, base64url. */
export function newApiKey(): string {
  return `sk-em-${randomBytes(32).toString("base64url")}`;
}

const LIMIT_FIELDS = ["requests_per_minute", "tokens_per_minute"] as const;

/** The tenant of every request while auth is off (no keys: there is only one caller then). */
export const ANONYMOUS_TENANT = "anonymous";

/** What a project name (and a key id the CLI makes) may be: no ':' to confuse tenants (http/tenant.ts). */
export const SAFE_NAME = /^[A-Za-z0-9._-]{1,64}$/;

/** Keys fixed at startup: from GATEWAY_API_KEYS (plain) and GATEWAY_API_KEYS_FILE (hashed records). */
export class ApiKeys implements ApiKeySource {
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
        // The tenant of a key-without-project is its id: one shaped like a project's tenant could join it.
        if (r.id.startsWith("project:")) throw new Error(`${file}: key ${r.id}: an id may not start with 'project:'`);
        if (r.project !== undefined && !(typeof r.project === "string" && SAFE_NAME.test(r.project)))
          throw new Error(`${file}: key ${r.id}: project must match ${SAFE_NAME.source}`);
        for (const f of LIMIT_FIELDS)
          if (r[f] !== undefined && !(Number.isInteger(r[f]) && (r[f] as number) >= 0))
            throw new Error(`${file}: key ${r.id}: ${f} must be a non-negative integer`);
        records.push(r);
      }
    }
    return new ApiKeys(records);
  }

  get size(): number {
    return this.#byHash.size;
  }

  get required(): boolean {
    return this.#byHash.size > 0;
  }

  async find(presented: string): Promise<ApiKeyRecord | undefined> {
    return this.#byHash.get(hashKey(presented));
  }
}

/** Several sources at once (e.g. Redis keys plus a bootstrap key from the file): the first match wins. */
export class AnyApiKeys implements ApiKeySource {
  readonly #sources: readonly ApiKeySource[];

  constructor(sources: readonly ApiKeySource[]) {
    this.#sources = sources;
  }

  get required(): boolean {
    return this.#sources.some((s) => s.required);
  }

  async find(presented: string): Promise<ApiKeyRecord | undefined> {
    for (const s of this.#sources) {
      const r = await s.find(presented);
      if (r) return r;
    }
    return undefined;
  }
}
