import { createConnection } from "node:net";
import { describe, expect, it } from "vitest";
import { startRedisServer } from "./redis-server.ts";

function ping(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ port, host: "127.0.0.1" }, () => s.write("PING\r\n"));
    s.on("data", (d) => {
      resolve(d.toString().trim());
      s.end();
    });
    s.on("error", reject);
  });
}

describe("startRedisServer", () => {
  it("starts a real redis-server on a random loopback port and stops it", async () => {
    const redis = await startRedisServer();
    expect(await ping(redis.port)).toBe("+PONG");
    await redis.stop();
    expect(redis.process.exitCode !== null || redis.process.signalCode !== null).toBe(true);
    await expect(ping(redis.port)).rejects.toThrow();
  });

  it("survives kill -9 and restarts on the same port and data: the AOF keeps what was written >1 s before", async () => {
    const redis = await startRedisServer();
    const cmd = (line: string) =>
      new Promise<string>((resolve, reject) => {
        const s = createConnection({ port: redis.port, host: "127.0.0.1" }, () => s.write(`${line}\r\n`));
        s.on("data", (d) => {
          resolve(d.toString().trim());
          s.end();
        });
        s.on("error", reject);
      });
    expect(await cmd("SET durable yes")).toBe("+OK");
    await new Promise((r) => setTimeout(r, 1_500)); // appendfsync everysec
    await redis.crash();
    await expect(ping(redis.port)).rejects.toThrow();
    await redis.restart();
    expect(await cmd("GET durable")).toContain("yes");
    await redis.stop();
  });
});
