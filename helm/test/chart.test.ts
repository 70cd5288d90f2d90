/**
 * The chart (reliability R15): helm lint clean; helm template renders the defaults and every ci/ file;
 * every object validates against the Kubernetes / KEDA / prometheus-operator schemas; and the semantics
 * the cluster depends on: GPU limits on engine pods, probes, PDBs, preStop + grace period (R9), stable
 * rank identity, ConfigMap-mounted configs the services' own loaders accept, and KEDA triggers that read
 * metrics the code really exports.
 */
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadGatewayConfig } from "@expertmesh/gateway/config";
import { loadOrchestratorConfig } from "@expertmesh/orchestrator/config";
import { loadWorkerConfig } from "@expertmesh/worker/config";
import { beforeAll, describe, expect, it } from "vitest";
import { byKind, CHART, ciValuesFiles, find, helm, type K8sObject, NAMESPACE, RELEASE, ROOT, render } from "./helm.ts";
import { validateObject } from "./schemas.ts";

const FULL = `${RELEASE}-expertmesh`;
const VARIANTS = ["(defaults)", ...ciValuesFiles()];
const rendered = new Map<string, K8sObject[]>();

beforeAll(() => {
  for (const v of VARIANTS) rendered.set(v, render(v === "(defaults)" ? [] : [v]));
});

function objects(variant: string): K8sObject[] {
  const o = rendered.get(variant);
  if (!o) throw new Error(`not rendered: ${variant}`);
  return o;
}

interface Container {
  name: string;
  env?: Array<{
    name: string;
    value?: string;
    valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: { name: string; key: string } };
  }>;
  // biome-ignore lint/suspicious/noExplicitAny: probe and resource shapes are asserted field by field
  [key: string]: any;
}

function workloads(objs: K8sObject[]): K8sObject[] {
  return objs.filter((o) => o.kind === "Deployment" || o.kind === "StatefulSet");
}

function containers(o: K8sObject): Container[] {
  return o.spec.template.spec.containers as Container[];
}

function env(c: Container, name: string) {
  return c.env?.find((e) => e.name === name);
}

/** Placeholder values for env that a pod reads from Secrets or the downward API. */
const FROM_SECRET: Record<string, string> = { REDIS_URL: "redis://from-secret:6379", GATEWAY_API_KEYS: "sk-from-secret-0123456789" };

/**
 * The environment a workload's first container starts with: its plain env, Secret references as
 * placeholders, and its config file (from the mounted ConfigMap) written to a temporary path — what the
 * service's own loader sees in the pod.
 */
function configOf(objs: K8sObject[], w: K8sObject, fileEnv: string): { file: string; path: string; env: NodeJS.ProcessEnv } {
  const c = containers(w)[0] as Container;
  const path = env(c, fileEnv)?.value;
  expect(path, `${w.metadata.name}: ${fileEnv}`).toBeTruthy();
  const volume = (w.spec.template.spec.volumes as Array<{ name: string; configMap?: { name: string } }>).find((v) => v.name === "config");
  const cm = find(objs, "ConfigMap", volume?.configMap?.name ?? "");
  const key = (path as string).split("/").pop() as string;
  const text = cm.data[key] as string;
  expect(text, `${cm.metadata.name} has ${key}`).toBeTruthy();
  const dir = mkdtempSync(join(tmpdir(), "chart-config-"));
  const file = join(dir, key);
  writeFileSync(file, text);
  const podEnv: NodeJS.ProcessEnv = {};
  for (const e of c.env ?? []) {
    // A GPU pod names its own GPU (cuda:0), which the loader checks against the machine it runs on: this
    // one is not the pod and may have no GPU. WORKER_DEVICE is asserted as rendered in "the GPU pool".
    if (e.name === "WORKER_DEVICE" && e.value?.startsWith("cuda:")) continue;
    if (e.value !== undefined) podEnv[e.name] = e.value.replaceAll("$(POD_NAME)", "pod-0");
    else if (e.valueFrom?.secretKeyRef) podEnv[e.name] = FROM_SECRET[e.name] ?? "from-secret";
    else if (e.valueFrom?.fieldRef) podEnv[e.name] = "pod-0";
  }
  return { file, path: path as string, env: { ...podEnv, [fileEnv]: file } };
}

describe("helm lint", () => {
  it.each(VARIANTS)("is clean for %s", (variant) => {
    const r = helm([
      "lint",
      "--strict",
      CHART,
      "--namespace",
      NAMESPACE,
      ...(variant === "(defaults)" ? [] : ["-f", join(CHART, variant)]),
    ]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/\[(WARNING|ERROR)\]/);
    expect(r.stdout).toContain("1 chart(s) linted, 0 chart(s) failed");
  });
});

describe("helm template", () => {
  it("finds every ci/ values file the issue asks for", () => {
    expect(ciValuesFiles()).toEqual(
      expect.arrayContaining([
        "ci/cpu-values.yaml",
        "ci/gpu-w8-values.yaml",
        "ci/external-redis-values.yaml",
        "ci/autoscaling-off-values.yaml",
      ]),
    );
  });

  it.each(VARIANTS)("renders %s into objects that all validate against their schemas", (variant) => {
    const objs = objects(variant);
    expect(objs.length).toBeGreaterThan(8);
    for (const o of objs) validateObject(o);
    const names = objs.map((o) => `${o.kind}/${o.metadata.name}`);
    expect(new Set(names).size, "no duplicate objects").toBe(names.length);
    for (const o of objs) expect(o.metadata.labels?.["app.kubernetes.io/instance"], `${o.kind}/${o.metadata.name}`).toBe(RELEASE);
  });

  it("renders the components of the default install", () => {
    const objs = objects("(defaults)");
    find(objs, "Deployment", `${FULL}-gateway`);
    find(objs, "Service", `${FULL}-gateway`);
    find(objs, "PodDisruptionBudget", `${FULL}-gateway`);
    find(objs, "Deployment", `${FULL}-orchestrator`);
    find(objs, "Deployment", `${FULL}-batch-runner`);
    find(objs, "StatefulSet", `${FULL}-engine-main`);
    find(objs, "StatefulSet", `${FULL}-redis`);
    find(objs, "PersistentVolumeClaim", `${FULL}-batch-files`);
    expect(
      byKind(objs, "ScaledObject")
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual([`${FULL}-batch-runner`, `${FULL}-engine-main`, `${FULL}-gateway`].sort());
    expect(byKind(objs, "HorizontalPodAutoscaler")).toEqual([]);
  });
});

describe("engine pools", () => {
  it.each(VARIANTS)("%s: GPU pods request nvidia.com/gpu, CPU pods none; node placement follows the mode", (variant) => {
    for (const sts of byKind(objects(variant), "StatefulSet").filter(
      (o) => o.metadata.labels?.["app.kubernetes.io/component"] === "engine",
    )) {
      const pod = sts.spec.template;
      const worker = containers(sts).find((c) => c.name === "worker") as Container;
      const mode = pod.metadata.labels["expertmesh.io/accelerator"];
      if (mode === "gpu") {
        expect(Number(worker.resources.limits["nvidia.com/gpu"]), sts.metadata.name).toBeGreaterThanOrEqual(1);
        expect(worker.resources.requests["nvidia.com/gpu"]).toBe(worker.resources.limits["nvidia.com/gpu"]);
        expect(pod.spec.tolerations).toEqual(expect.arrayContaining([expect.objectContaining({ key: "nvidia.com/gpu" })]));
        expect(pod.spec.nodeSelector).toBeTruthy();
        expect(pod.spec.volumes.find((v: { name: string }) => v.name === "dshm")?.emptyDir.medium).toBe("Memory");
      } else {
        expect(mode).toBe("cpu");
        expect(JSON.stringify(worker.resources)).not.toContain("nvidia.com/gpu");
        expect(pod.spec.tolerations ?? []).not.toEqual(expect.arrayContaining([expect.objectContaining({ key: "nvidia.com/gpu" })]));
      }
      // Topology spread selects this pool's pods.
      for (const t of pod.spec.topologySpreadConstraints ?? []) {
        for (const [k, v] of Object.entries(t.labelSelector.matchLabels)) expect(pod.metadata.labels[k], k).toBe(v);
      }
    }
  });

  it("the GPU pool: one nvidia.com/gpu per rank, WORKER_DEVICE cuda:0, GPU-node placement, a memory-backed /dev/shm for NCCL", () => {
    const values = {
      mode: "gpu",
      engine: {
        pools: [
          { name: "plain", model: "gpt-oss-20b", worldSize: 2 },
          {
            name: "tuned",
            model: "gpt-oss-120b",
            worldSize: 4,
            shmSizeLimit: "32Gi",
            nodeSelector: { "node.kubernetes.io/instance-type": "p5.48xlarge" },
            tolerations: [{ key: "dedicated", operator: "Equal", value: "llm", effect: "NoSchedule" }],
            config: { device: "cuda:1" },
          },
          { name: "side", model: "gpt-oss-20b", worldSize: 2, accelerator: "cpu" },
        ],
      },
    };
    const file = join(mkdtempSync(join(tmpdir(), "chart-gpu-")), "values.yaml");
    writeFileSync(file, JSON.stringify(values));
    const objs = render([file]);
    const pod = (pool: string) => find(objs, "StatefulSet", `${FULL}-engine-${pool}`).spec.template;
    const worker = (pool: string) => pod(pool).spec.containers.find((c: Container) => c.name === "worker") as Container;

    const plain = pod("plain");
    expect(worker("plain").resources).toEqual({
      requests: { cpu: "8", memory: "64Gi", "nvidia.com/gpu": 1 },
      limits: { memory: "128Gi", "nvidia.com/gpu": 1 },
    });
    expect(env(worker("plain"), "WORKER_DEVICE")).toEqual({ name: "WORKER_DEVICE", value: "cuda:0" });
    expect(plain.spec.nodeSelector).toEqual({ "nvidia.com/gpu.present": "true" });
    expect(plain.spec.tolerations).toEqual([{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }]);
    expect(plain.spec.volumes).toContainEqual({ name: "dshm", emptyDir: { medium: "Memory", sizeLimit: "16Gi" } });
    expect(worker("plain").volumeMounts).toContainEqual({ name: "dshm", mountPath: "/dev/shm" });

    // A pool's own keys win over engine.gpu's.
    const tuned = pod("tuned");
    expect(tuned.spec.volumes).toContainEqual({ name: "dshm", emptyDir: { medium: "Memory", sizeLimit: "32Gi" } });
    expect(tuned.spec.nodeSelector).toEqual({ "node.kubernetes.io/instance-type": "p5.48xlarge" });
    expect(tuned.spec.tolerations).toEqual([{ key: "dedicated", operator: "Equal", value: "llm", effect: "NoSchedule" }]);
    expect(env(worker("tuned"), "WORKER_DEVICE")?.value).toBe("cuda:1");
    expect(worker("tuned").resources.limits["nvidia.com/gpu"]).toBe(1);

    // A CPU pool in a GPU release: no GPU, no /dev/shm volume, and told to stay on the CPU.
    expect(env(worker("side"), "WORKER_DEVICE")?.value).toBe("cpu");
    expect(JSON.stringify(worker("side").resources)).not.toContain("nvidia.com/gpu");
    expect(pod("side").spec.volumes.map((v: { name: string }) => v.name)).not.toContain("dshm");
    for (const o of objs) validateObject(o); // throws naming the object that does not validate
  });

  it("GPU mode with W = 8: groups of 8 one-GPU ranks, the orchestrator forms groups of 8", () => {
    const objs = objects("ci/gpu-w8-values.yaml");
    const big = find(objs, "StatefulSet", `${FULL}-engine-big`);
    expect(big.spec.template.metadata.labels["expertmesh.io/world-size"]).toBe("8");
    expect(containers(big)[0]?.resources.limits["nvidia.com/gpu"]).toBe(1);
    const so = find(objs, "ScaledObject", `${FULL}-engine-big`);
    expect(so.spec.minReplicaCount).toBe(8);
    expect(so.spec.maxReplicaCount).toBe(32);
    expect(so.spec.idleReplicaCount).toBeUndefined();
    const orch = loadOrchestratorConfig(configOf(objs, find(objs, "Deployment", `${FULL}-orchestrator`), "ORCHESTRATOR_CONFIG_FILE").env);
    expect(orch.groups.world_size_by_model).toEqual({ "gpt-oss-120b": 8, "gpt-oss-20b": 1 });
    // The 120b checkpoint comes read-only from the PVC; the 20b one is downloaded into a per-rank volume.
    const worker = loadWorkerConfig(configOf(objs, big, "WORKER_CONFIG_FILE").env);
    expect(worker.model.path).toBe("/models/gpt-oss-120b");
    expect(big.spec.template.spec.volumes.find((v: { name: string }) => v.name === "models").persistentVolumeClaim).toEqual({
      claimName: "gpt-oss-120b-weights",
      readOnly: true,
    });
    const small = find(objs, "StatefulSet", `${FULL}-engine-small`);
    expect(small.spec.volumeClaimTemplates[0].metadata.name).toBe("models");
    expect(small.spec.template.spec.initContainers[0].env).toEqual(
      expect.arrayContaining([{ name: "HF_REPO", value: "openai/gpt-oss-20b" }, expect.objectContaining({ name: "HF_TOKEN" })]),
    );
  });

  it.each(VARIANTS)("%s: stable rank identity (pod name = worker id, headless DNS address, ordinal)", (variant) => {
    const objs = objects(variant);
    for (const sts of byKind(objs, "StatefulSet").filter((o) => o.metadata.labels?.["app.kubernetes.io/component"] === "engine")) {
      const svc = find(objs, "Service", sts.spec.serviceName);
      expect(svc.spec.clusterIP).toBe("None");
      expect(svc.spec.publishNotReadyAddresses).toBe(true);
      for (const [k, v] of Object.entries(svc.spec.selector)) expect(sts.spec.template.metadata.labels[k]).toBe(v);
      expect(sts.spec.podManagementPolicy).toBe("Parallel");
      const worker = containers(sts).find((c) => c.name === "worker") as Container;
      expect(env(worker, "POD_NAME")?.valueFrom?.fieldRef?.fieldPath).toBe("metadata.name");
      expect(env(worker, "WORKER_ID")?.value).toBe("$(POD_NAME)");
      expect(env(worker, "WORKER_ADVERTISE_ADDRESS")?.value).toBe(`$(POD_NAME).${svc.metadata.name}.${NAMESPACE}.svc:50051`);
      expect(env(worker, "EXPERTMESH_POD_INDEX")?.valueFrom?.fieldRef?.fieldPath).toBe("metadata.labels['apps.kubernetes.io/pod-index']");
      // POD_NAME is declared before the variables that expand it.
      const names = (worker.env ?? []).map((e) => e.name);
      expect(names.indexOf("POD_NAME")).toBeLessThan(names.indexOf("WORKER_ID"));
      const cfg = loadWorkerConfig(configOf(objs, sts, "WORKER_CONFIG_FILE").env);
      expect(cfg.worker_id).toBe("pod-0");
      expect(cfg.grpc.advertise_address).toBe(`pod-0.${svc.metadata.name}.${NAMESPACE}.svc:50051`);
      expect(cfg.group.mode).toBe("orchestrated");
      expect(cfg.orchestrator.address).toBe(`${FULL}-orchestrator:50050`);
      expect(cfg.grpc.host).toBe("0.0.0.0");
      expect(cfg.metrics.host).toBe("0.0.0.0");
    }
  });

  it("without KEDA a pool runs groups x W replicas; with KEDA the ScaledObject owns replicas", () => {
    const off = find(objects("ci/autoscaling-off-values.yaml"), "StatefulSet", `${FULL}-engine-main`);
    expect(off.spec.replicas).toBe(4);
    const keda = find(objects("(defaults)"), "StatefulSet", `${FULL}-engine-main`);
    expect(keda.spec.replicas).toBeUndefined();
  });
});

describe("probes, drain and disruption budgets", () => {
  it.each(VARIANTS)("%s: every container has startup/readiness/liveness probes of the right kind", (variant) => {
    for (const w of workloads(objects(variant))) {
      for (const c of containers(w)) {
        const where = `${w.metadata.name}/${c.name}`;
        expect(c.readinessProbe ?? c.startupProbe, `${where} readiness or startup`).toBeTruthy();
        expect(c.livenessProbe, `${where} liveness`).toBeTruthy();
        const component = w.metadata.labels?.["app.kubernetes.io/component"];
        if (component === "engine") {
          expect(c.startupProbe.grpc).toEqual({ port: 50051, service: "" });
          expect(c.startupProbe.failureThreshold * c.startupProbe.periodSeconds).toBeGreaterThanOrEqual(600);
          expect(c.readinessProbe.grpc).toEqual({ port: 50051, service: "expertmesh.worker.v1.Worker" });
          expect(c.livenessProbe.tcpSocket).toBeTruthy();
        }
        if (component === "gateway") {
          expect(c.readinessProbe.httpGet.path).toBe("/ready");
          expect(c.livenessProbe.httpGet.path).toBe("/health");
          expect(c.startupProbe.httpGet.path).toBe("/health");
        }
        if (component === "orchestrator") expect(c.readinessProbe.grpc.service).toBe("expertmesh.cluster.v1.Membership");
      }
    }
  });

  it.each(VARIANTS)("%s: preStop sleep, then SIGTERM and drain, all within the grace period (R9)", (variant) => {
    const objs = objects(variant);
    for (const w of workloads(objs)) {
      const component = w.metadata.labels?.["app.kubernetes.io/component"];
      if (component === "redis") continue;
      const grace = w.spec.template.spec.terminationGracePeriodSeconds as number;
      const c = containers(w)[0] as Container;
      const [cmd, seconds] = c.lifecycle?.preStop?.exec?.command ?? [];
      expect(cmd, `${w.metadata.name} preStop`).toBe("sleep");
      expect(Number(seconds)).toBeGreaterThanOrEqual(5);
      const fileEnv = { gateway: "GATEWAY_CONFIG_FILE", engine: "WORKER_CONFIG_FILE" }[component as string] ?? "ORCHESTRATOR_CONFIG_FILE";
      const { env: podEnv } = configOf(objs, w, fileEnv);
      const drainMs =
        component === "gateway"
          ? loadGatewayConfig(podEnv).shutdown_grace_ms
          : component === "engine"
            ? loadWorkerConfig(podEnv).shutdown_grace_ms
            : loadOrchestratorConfig(podEnv).shutdown_grace_ms;
      expect(Number(seconds) + drainMs / 1000, `${w.metadata.name}: preStop + drain within grace`).toBeLessThanOrEqual(grace);
    }
  });

  it.each(VARIANTS)("%s: PDBs select the gateway and each engine pool", (variant) => {
    const objs = objects(variant);
    const pdbs = byKind(objs, "PodDisruptionBudget");
    const gateway = find(objs, "Deployment", `${FULL}-gateway`);
    const gpdb = find(objs, "PodDisruptionBudget", `${FULL}-gateway`);
    expect(gpdb.spec.selector.matchLabels).toEqual(gateway.spec.selector.matchLabels);
    expect(gpdb.spec.minAvailable).toBeGreaterThanOrEqual(1);
    for (const sts of byKind(objs, "StatefulSet").filter((o) => o.metadata.labels?.["app.kubernetes.io/component"] === "engine")) {
      const pdb = pdbs.find((p) => p.metadata.name === sts.metadata.name);
      expect(pdb?.spec.selector.matchLabels, sts.metadata.name).toEqual(sts.spec.selector.matchLabels);
      expect(pdb?.spec.maxUnavailable).toBe(1);
    }
  });
});

describe("configuration and secrets", () => {
  it.each(VARIANTS)("%s: every mounted config file passes its service's schema", (variant) => {
    const objs = objects(variant);
    const gw = find(objs, "Deployment", `${FULL}-gateway`);
    const g = loadGatewayConfig(configOf(objs, gw, "GATEWAY_CONFIG_FILE").env);
    expect(g.http.host).toBe("0.0.0.0");
    expect(g.orchestrator.address).toBe(`${FULL}-orchestrator:50050`);
    const pools = byKind(objs, "ConfigMap")
      .filter((c) => c.data["worker.yaml"])
      .map((c) => loadWorkerConfig(configOf(objs, find(objs, "StatefulSet", c.metadata.name), "WORKER_CONFIG_FILE").env));
    // The gateways park requests for every pool's model (scale from zero).
    expect([...g.parking.models].sort()).toEqual([...new Set(pools.map((p) => p.model.name))].sort());
    const o = loadOrchestratorConfig(configOf(objs, find(objs, "Deployment", `${FULL}-orchestrator`), "ORCHESTRATOR_CONFIG_FILE").env);
    expect(o.grpc.host).toBe("0.0.0.0");
    expect(o.batch.gateway_url).toBe(`http://${FULL}-gateway:80`);
  });

  it("CPU mode serves the synthetic checkpoint with the pool's own worker settings", () => {
    const objs = objects("ci/cpu-values.yaml");
    const sts = find(objs, "StatefulSet", `${FULL}-engine-tiny`);
    expect(sts.spec.template.spec.initContainers[0].command.slice(0, 4)).toEqual([
      "node",
      "kernels/src/cli/main.ts",
      "make-checkpoint",
      "--shape",
    ]);
    const cfg = loadWorkerConfig(configOf(objs, sts, "WORKER_CONFIG_FILE").env);
    expect(cfg.model).toEqual({
      path: "/models/tiny-synthetic",
      name: "gpt-oss-synthetic",
      precision: "default",
      dense_weights: "bf16",
      resident_weights: true,
    });
    expect(cfg.kv.num_blocks).toBe(512);
    expect(cfg.scheduler.max_num_seqs).toBe(8);
    expect(
      byKind(objs, "ServiceMonitor")
        .map((s) => s.metadata.name)
        .sort(),
    ).toEqual([`${FULL}-engine`, `${FULL}-gateway`, `${FULL}-orchestrator`].sort());
  });

  it("API keys come from a Secret; TLS terminates at the Ingress with its Secret", () => {
    const cpu = objects("ci/cpu-values.yaml");
    const secret = find(cpu, "Secret", `${FULL}-api-keys`);
    expect(secret.stringData["api-keys"]).toBe("sk-ci-cpu-0123456789");
    const gw = containers(find(cpu, "Deployment", `${FULL}-gateway`))[0] as Container;
    expect(env(gw, "GATEWAY_API_KEYS")?.valueFrom?.secretKeyRef).toEqual({ name: `${FULL}-api-keys`, key: "api-keys" });
    const gpu = objects("ci/gpu-w8-values.yaml");
    expect(byKind(gpu, "Secret")).toEqual([]);
    const gw8 = containers(find(gpu, "Deployment", `${FULL}-gateway`))[0] as Container;
    expect(env(gw8, "GATEWAY_API_KEYS")?.valueFrom?.secretKeyRef?.name).toBe("expertmesh-api-keys");
    expect(find(gpu, "Ingress", `${FULL}-gateway`).spec.tls).toEqual([{ hosts: ["llm.example.com"], secretName: "expertmesh-tls" }]);
  });

  it("Redis: an AOF StatefulSet with a PVC by default; an external URL from a Secret otherwise", () => {
    const def = objects("(defaults)");
    const redis = find(def, "StatefulSet", `${FULL}-redis`);
    expect(containers(redis)[0]?.args.join(" ")).toContain("--appendonly yes --appendfsync everysec --maxmemory-policy noeviction");
    expect(redis.spec.volumeClaimTemplates[0].spec.accessModes).toEqual(["ReadWriteOnce"]);
    for (const w of workloads(def).filter((o) =>
      ["gateway", "orchestrator", "batch-runner"].includes(o.metadata.labels?.["app.kubernetes.io/component"] ?? ""),
    ))
      expect(env(containers(w)[0] as Container, "REDIS_URL")?.value).toBe(`redis://${FULL}-redis:6379`);
    const ext = objects("ci/external-redis-values.yaml");
    expect(byKind(ext, "StatefulSet").map((s) => s.metadata.name)).not.toContain(`${FULL}-redis`);
    expect(find(ext, "Secret", `${FULL}-redis-url`).stringData["redis-url"]).toMatch(/^rediss:\/\//);
    for (const w of workloads(ext).filter((o) => o.metadata.labels?.["app.kubernetes.io/component"] !== "engine"))
      expect(env(containers(w)[0] as Container, "REDIS_URL")?.valueFrom?.secretKeyRef).toEqual({
        name: `${FULL}-redis-url`,
        key: "redis-url",
      });
  });
});

/** Every metric name registered in the services' sources (prom-client `name: "..."`), tests excluded. */
function exportedMetrics(): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string) => {
    for (const f of readdirSync(dir)) {
      const p = join(dir, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (f.endsWith(".ts") && !f.endsWith(".test.ts")) {
        for (const m of readFileSync(p, "utf8").matchAll(/name:\s*"((?:vllm:|expertmesh_)[A-Za-z0-9_:]+)"/g)) names.add(m[1] as string);
      }
    }
  };
  for (const s of ["gateway/src", "worker/src", "orchestrator/src"]) walk(join(ROOT, s));
  return names;
}

/** Metric names a PromQL query reads (identifiers followed by a label matcher). */
function metricsRead(query: string): string[] {
  return [...query.matchAll(/([A-Za-z_:][A-Za-z0-9_:]*)\{/g)].map((m) => m[1] as string);
}

describe("autoscaling", () => {
  it.each(VARIANTS)("%s: KEDA triggers read only metrics the code exports", (variant) => {
    const exported = exportedMetrics();
    expect(exported.has("vllm:num_requests_waiting")).toBe(true);
    for (const so of byKind(objects(variant), "ScaledObject")) {
      expect(so.spec.triggers.length).toBeGreaterThan(0);
      for (const t of so.spec.triggers) {
        expect(t.type).toBe("prometheus");
        expect(t.metricType).toBe("AverageValue");
        const read = metricsRead(t.metadata.query);
        expect(read.length, `${so.metadata.name}/${t.name} reads a metric`).toBeGreaterThan(0);
        for (const name of read) {
          const base = name.replace(/_(count|sum|bucket)$/, "");
          expect(exported.has(name) || exported.has(base), `${so.metadata.name}/${t.name}: ${name} is exported by the code`).toBe(true);
        }
        expect(t.metadata.query).toContain(`namespace="${NAMESPACE}"`);
      }
    }
  });

  it("engine pools scale in whole groups, from zero on the gateways' parked-request demand", () => {
    const objs = objects("ci/cpu-values.yaml");
    const so = find(objs, "ScaledObject", `${FULL}-engine-tiny`);
    expect(so.spec.scaleTargetRef).toEqual({ apiVersion: "apps/v1", kind: "StatefulSet", name: `${FULL}-engine-tiny` });
    expect(so.spec.idleReplicaCount).toBe(0);
    expect(so.spec.minReplicaCount).toBe(2);
    expect(so.spec.maxReplicaCount).toBe(6);
    expect(so.spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.policies).toEqual([
      { type: "Pods", value: 2, periodSeconds: 60 },
    ]);
    const load = so.spec.triggers.find((t: { name: string }) => t.name === "load");
    expect(load.metadata.query).toMatch(/^2 \* ceil\(/);
    expect(metricsRead(load.metadata.query)).toEqual([
      "vllm:num_requests_running",
      "vllm:num_requests_waiting",
      "expertmesh_gateway_requests_parked",
    ]);
    expect(load.metadata.query).toContain('model_name="gpt-oss-synthetic"');
    expect(load.metadata.threshold).toBe("1");
    expect(so.spec.triggers.map((t: { name: string }) => t.name)).toEqual(["load", "kv-cache"]);
    const runners = find(objects("(defaults)"), "ScaledObject", `${FULL}-batch-runner`);
    expect(metricsRead(runners.spec.triggers[0].metadata.query)).toEqual(["expertmesh_batch_requests_waiting"]);
    expect(runners.spec.minReplicaCount).toBe(0);
  });

  it("falls back to CPU HPAs without KEDA, and renders neither with autoscaling off", () => {
    const hpa = objects("ci/hpa-fallback-values.yaml");
    expect(byKind(hpa, "ScaledObject")).toEqual([]);
    expect(byKind(hpa, "HorizontalPodAutoscaler").map((h) => h.spec.scaleTargetRef.name)).toEqual([`${FULL}-gateway`]);
    expect(find(hpa, "StatefulSet", `${FULL}-engine-main`).spec.replicas).toBe(1);
    const off = objects("ci/autoscaling-off-values.yaml");
    expect(byKind(off, "ScaledObject")).toEqual([]);
    expect(byKind(off, "HorizontalPodAutoscaler")).toEqual([]);
    expect(find(off, "Deployment", `${FULL}-gateway`).spec.replicas).toBe(3);
    expect(find(off, "Deployment", `${FULL}-batch-runner`).spec.replicas).toBe(1);
  });
});
