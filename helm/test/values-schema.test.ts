/**
 * values.schema.json (and the few cross-field checks templates make) reject bad values with a message
 * naming the value, before anything reaches a cluster; good values (defaults, ci/) pass.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { tryRender } from "./helm.ts";

const dir = mkdtempSync(join(tmpdir(), "chart-values-"));
let n = 0;
function valuesFile(values: unknown): string {
  const file = join(dir, `values-${n++}.yaml`);
  writeFileSync(file, stringify(values));
  return file;
}

const pool = (extra: Record<string, unknown> = {}) => ({ name: "main", model: "gpt-oss-20b", ...extra });

const REJECTED: Array<[string, unknown, RegExp]> = [
  ["an unknown accelerator mode", { mode: "tpu" }, /\/mode/],
  ["an unknown top-level key", { replicas: 3 }, /additional properties 'replicas'/],
  ["a misspelled nested key", { gateway: { replica: 2 } }, /additional properties 'replica'/],
  ["world size 0", { engine: { pools: [pool({ worldSize: 0 })] } }, /worldSize/],
  ["a pool name that is not a DNS label", { engine: { pools: [pool({ name: "Big_Pool" })] } }, /\/engine\/pools\/0\/name/],
  ["a pool without a model", { engine: { pools: [{ name: "main" }] } }, /model/],
  ["no pools at all", { engine: { pools: [] } }, /\/engine\/pools/],
  ["an unknown checkpoint source", { engine: { pools: [pool({ checkpoint: { source: "s3" } })] } }, /checkpoint\/source/],
  ["a KV target above 1", { engine: { pools: [pool({ autoscaling: { kvCacheTarget: 1.5 } })] } }, /kvCacheTarget/],
  ["negative min groups", { engine: { pools: [pool({ autoscaling: { minGroups: -1 } })] } }, /minGroups/],
  ["a non-Redis external URL", { redis: { enabled: false, external: { url: "http://redis:6379" } } }, /\/redis\/external\/url/],
  ["an API key shorter than 8 characters", { apiKeys: { keys: ["short"] } }, /\/apiKeys\/keys\/0/],
  ["an unknown API key store", { apiKeys: { store: "vault" } }, /\/apiKeys\/store/],
  ["zero gateway replicas", { gateway: { replicas: 0 } }, /\/gateway\/replicas/],
  ["a string where a number belongs", { gateway: { parking: { maxParked: "many" } } }, /maxParked/],
  ["a gateway minimum of zero replicas (nobody would park requests)", { autoscaling: { gateway: { minReplicas: 0 } } }, /minReplicas/],
  [
    "min groups above max groups",
    { engine: { pools: [pool({ autoscaling: { minGroups: 5, maxGroups: 2 } })] } },
    /minGroups must not exceed maxGroups/,
  ],
  ["a PVC checkpoint without a claim", { engine: { pools: [pool({ checkpoint: { source: "pvc" } })] } }, /needs checkpoint.claimName/],
  ["two pools with one name", { engine: { pools: [pool(), pool({ model: "gpt-oss-120b" })] } }, /used twice/],
  [
    "one model in two pools with different W",
    { engine: { pools: [pool(), pool({ name: "other", worldSize: 4 })] } },
    /must share one worldSize/,
  ],
  ["a /dev/shm size that is not a quantity", { engine: { gpu: { shmSizeLimit: "lots" } } }, /\/engine\/gpu\/shmSizeLimit/],
  [
    "a pool's /dev/shm size that is not a quantity",
    { engine: { pools: [pool({ shmSizeLimit: "16 GB" })] } },
    /\/engine\/pools\/0\/shmSizeLimit/,
  ],
  ["a GPU pool without GPUs", { engine: { pools: [pool({ gpusPerRank: 0 })] } }, /a GPU pool needs gpusPerRank >= 1/],
  ["no Redis at all", { redis: { enabled: false } }, /set redis.external.url or redis.external.existingSecret/],
  [
    "a grace period shorter than preStop + drain",
    { drain: { terminationGracePeriodSeconds: 30 } },
    /terminationGracePeriodSeconds must be at least/,
  ],
  ["TLS without a certificate", { tls: { enabled: true } }, /tls.existingSecret, or tls.cert and tls.key/],
  ["KEDA without a Prometheus address", { autoscaling: { keda: { prometheusAddress: "" } } }, /prometheusAddress/],
];

describe("values.schema.json and template checks", () => {
  it.each(REJECTED)("rejects %s", (_what, values, message) => {
    const r = tryRender([valuesFile(values)]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(message);
  });

  it("accepts a minimal override (pool keys merge over poolDefaults)", () => {
    const r = tryRender([valuesFile({ mode: "cpu", engine: { pools: [pool({ worldSize: 2, checkpoint: { source: "synthetic" } })] } })]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("accepts the GPU pool's settings: a /dev/shm quantity per pool or for all, a CPU pool without GPUs", () => {
    const r = tryRender([
      valuesFile({
        engine: {
          gpu: { shmSizeLimit: "24Gi" },
          pools: [pool({ shmSizeLimit: "8.5Gi" }), pool({ name: "side", accelerator: "cpu", gpusPerRank: 0 })],
        },
      }),
    ]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });
});
