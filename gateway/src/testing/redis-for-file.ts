/**
 * A real redis-server for the test file that calls this at its top level (vitest hooks): started before
 * its tests, stopped after them, with one client connected to it. Read both inside tests or hooks.
 */
import { type RedisServer, startRedisServer } from "@expertmesh/common/testing";
import { Redis } from "ioredis";
import { afterAll, beforeAll } from "vitest";

export interface FileRedis {
  readonly server: RedisServer;
  readonly client: Redis;
}

export function redisForFile(): FileRedis {
  let server: RedisServer | undefined;
  let client: Redis | undefined;
  beforeAll(async () => {
    server = await startRedisServer();
    client = new Redis(server.url);
  });
  afterAll(async () => {
    await client?.quit();
    await server?.stop();
  });
  const started = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error("redisForFile: read before its beforeAll ran");
    return v;
  };
  return {
    get server() {
      return started(server);
    },
    get client() {
      return started(client);
    },
  };
}
