/**
 * Typed service configuration, validated once at startup. Sources, later wins:
 *   1. defaults in the zod schema (units are in the key names: *_ms, *_bytes),
 *   2. a YAML or JSON file named by `<PREFIX>CONFIG_FILE` (the Helm chart mounts one),
 *   3. environment variables, each named explicitly in the service's env table (no guessing).
 * Every problem is reported at once in one ConfigError; a service never starts half-configured.
 */
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";

/** A boolean setting that also reads env text: "true"/"1" and "false"/"0". */
export const flag = z.preprocess((v) => (v === "false" || v === "0" ? false : v === "true" || v === "1" ? true : v), z.boolean());

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly issues: string[];
  constructor(service: string, issues: string[]) {
    super(`invalid ${service} configuration:\n  - ${issues.join("\n  - ")}`);
    this.issues = issues;
  }
}

export interface ConfigSpec<S extends z.ZodType> {
  service: string;
  schema: S;
  /** Name of the env var holding a config file path, e.g. GATEWAY_CONFIG_FILE. */
  fileEnv: string;
  /** Dotted config path -> env var name. */
  env: Record<string, string>;
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split(".");
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== "object" || next === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1] as string] = value;
}

export function loadConfig<S extends z.ZodType>(spec: ConfigSpec<S>, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  let raw: Record<string, unknown> = {};
  const file = env[spec.fileEnv];
  if (file) {
    try {
      const text = readFileSync(file, "utf8");
      const parsed: unknown = file.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
      if (parsed !== null && parsed !== undefined) {
        if (typeof parsed !== "object" || Array.isArray(parsed)) {
          throw new Error("the top level must be a mapping");
        }
        raw = parsed as Record<string, unknown>;
      }
    } catch (err) {
      throw new ConfigError(spec.service, [`${spec.fileEnv}=${file}: ${(err as Error).message}`]);
    }
  }
  for (const [path, name] of Object.entries(spec.env)) {
    const value = env[name];
    if (value !== undefined && value !== "") setPath(raw, path, value);
  }
  const result = spec.schema.safeParse(raw);
  if (!result.success) {
    const byPath = new Map(Object.entries(spec.env));
    throw new ConfigError(
      spec.service,
      result.error.issues.map((i) => {
        const path = i.path.join(".");
        const envName = byPath.get(path);
        return `${path || "(root)"}${envName ? ` (${envName})` : ""}: ${i.message}`;
      }),
    );
  }
  return result.data;
}
