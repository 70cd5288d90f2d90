import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ConfigError, loadConfig } from "./config.ts";

const spec = {
  service: "demo",
  fileEnv: "DEMO_CONFIG_FILE",
  schema: z.object({
    port: z.coerce.number().int().min(1).max(65535).default(8080),
    redis: z.object({ url: z.string().url().default("redis://127.0.0.1:6379") }).default({ url: "redis://127.0.0.1:6379" }),
    name: z.string().min(1).default("x"),
  }),
  env: { port: "DEMO_PORT", "redis.url": "DEMO_REDIS_URL" },
};

describe("loadConfig", () => {
  it("applies defaults, then the file, then env", () => {
    const dir = mkdtempSync(join(tmpdir(), "cfg-"));
    const file = join(dir, "c.yaml");
    writeFileSync(file, "port: 9000\nname: from-file\n");
    expect(loadConfig(spec, {})).toEqual({ port: 8080, redis: { url: "redis://127.0.0.1:6379" }, name: "x" });
    expect(loadConfig(spec, { DEMO_CONFIG_FILE: file })).toMatchObject({ port: 9000, name: "from-file" });
    expect(loadConfig(spec, { DEMO_CONFIG_FILE: file, DEMO_PORT: "9100", DEMO_REDIS_URL: "redis://h:1" })).toEqual({
      port: 9100,
      redis: { url: "redis://h:1" },
      name: "from-file",
    });
  });

  it("reports every problem at once, naming the env var", () => {
    try {
      loadConfig(spec, { DEMO_PORT: "70000", DEMO_REDIS_URL: "not a url" });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const issues = (err as ConfigError).issues;
      expect(issues).toHaveLength(2);
      expect(issues[0]).toMatch(/^port \(DEMO_PORT\): /);
      expect(issues[1]).toMatch(/^redis\.url \(DEMO_REDIS_URL\): /);
    }
  });

  it("rejects an unreadable or malformed file with its name", () => {
    expect(() => loadConfig(spec, { DEMO_CONFIG_FILE: "/nonexistent.yaml" })).toThrow(/DEMO_CONFIG_FILE=\/nonexistent\.yaml/);
    const dir = mkdtempSync(join(tmpdir(), "cfg-"));
    const file = join(dir, "c.yaml");
    writeFileSync(file, "- a list\n");
    expect(() => loadConfig(spec, { DEMO_CONFIG_FILE: file })).toThrow(/top level must be a mapping/);
  });
});
