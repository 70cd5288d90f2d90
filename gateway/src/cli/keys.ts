#!/usr/bin/env node
/**
 * The API key CLI for GATEWAY_API_KEYS_STORE=redis: add, revoke and list keys in the Redis the gateways
 * read (--redis-url, else the gateway config's redis_url / REDIS_URL). Prints JSON on stdout. `add` shows
 * the new key exactly once; nothing else ever prints a key or its digest (Redis only holds the digest).
 * Exit status: 0 ok, 1 failure (id taken, no such key, Redis unreachable), 2 usage error.
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { RedisApiKeys } from "../adapters/redis-api-keys.ts";
import { loadGatewayConfig } from "../config.ts";
import { type ApiKeyRecord, hashKey, newApiKey, SAFE_NAME } from "../domain/api-keys.ts";

const USAGE = `usage: keys <command> [--redis-url URL]
  add [--id ID] [--name NAME] [--project PROJECT] [--requests-per-minute N] [--tokens-per-minute N]
      creates a key and prints {id, name, key, ...}: the key is shown this once only; keys with the same
      --project share their stored responses, files and batches (without one a key shares nothing)
  revoke ID        deletes a key; gateways stop accepting it within GATEWAY_API_KEYS_CACHE_MS
  list             prints every key's id, name, project, limits and creation time (never the key)`;

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      "redis-url": { type: "string" },
      id: { type: "string" },
      name: { type: "string" },
      project: { type: "string" },
      "requests-per-minute": { type: "string" },
      "tokens-per-minute": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || !command) throw new UsageError("");
  const url = values["redis-url"] ?? loadGatewayConfig().redis_url;
  if (!url) throw new UsageError("no Redis: give --redis-url or set REDIS_URL");
  const redis = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true, retryStrategy: () => null });
  let lastError: Error | undefined;
  redis.on("error", (err: Error) => {
    lastError = err;
  });
  try {
    await redis.connect().catch((err: Error) => {
      // The host only: a redis:// URL may carry a password.
      throw new Error(`cannot reach Redis at ${URL.parse(url)?.host ?? "the given URL"}: ${(lastError ?? err).message}`);
    });
    const store = new RedisApiKeys(redis);
    switch (command) {
      case "add":
        return await add(store, values);
      case "revoke": {
        const id = rest[0];
        if (!id) throw new UsageError("revoke needs the key's id");
        if (!(await store.revoke(id))) {
          console.error(`no key with id '${id}'`);
          return 1;
        }
        console.log(JSON.stringify({ id, revoked: true }));
        return 0;
      }
      case "list":
        console.log(JSON.stringify(await store.list(), null, 2));
        return 0;
      default:
        throw new UsageError(`unknown command '${command}'`);
    }
  } finally {
    redis.disconnect();
  }
}

async function add(store: RedisApiKeys, values: Record<string, string | boolean | undefined>): Promise<number> {
  const id = typeof values.id === "string" ? values.id : `key-${randomBytes(6).toString("hex")}`;
  if (!SAFE_NAME.test(id)) throw new UsageError(`--id must match ${SAFE_NAME.source}`);
  const key = newApiKey();
  const record: ApiKeyRecord = { id, sha256: hashKey(key) };
  if (typeof values.name === "string") record.name = values.name;
  if (typeof values.project === "string") {
    if (!SAFE_NAME.test(values.project)) throw new UsageError(`--project must match ${SAFE_NAME.source}`);
    record.project = values.project;
  }
  const rpm = limit(values["requests-per-minute"], "--requests-per-minute");
  if (rpm !== undefined) record.requests_per_minute = rpm;
  const tpm = limit(values["tokens-per-minute"], "--tokens-per-minute");
  if (tpm !== undefined) record.tokens_per_minute = tpm;
  if (!(await store.add(record))) {
    console.error(`a key with id '${id}' already exists`);
    return 1;
  }
  const { sha256: _digest, ...shown } = record;
  console.log(JSON.stringify({ ...shown, key }));
  console.error("Store this key now: it is not shown again.");
  return 0;
}

function limit(v: string | boolean | undefined, flag: string): number | undefined {
  if (typeof v !== "string") return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`${flag} must be a non-negative integer`);
  return Number(v);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  const e = err as Error & { code?: string };
  if (e instanceof UsageError || e.code?.startsWith("ERR_PARSE_ARGS")) {
    if (e.message) console.error(e.message);
    console.error(USAGE);
    process.exitCode = 2;
  } else {
    console.error(`keys: ${e.message}`);
    process.exitCode = 1;
  }
}
