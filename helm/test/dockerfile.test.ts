/**
 * The Dockerfile, checked without building it (this CI has no Docker daemon, and hadolint is in neither
 * Debian's nor npm's registry): parsed into stages and instructions, it must have the CPU and CUDA
 * targets built from their own build stages, pinned base images (no `latest`, no untagged image), a
 * non-root numeric USER, a HEALTHCHECK on the gateway's readiness endpoint and exec-form commands; the
 * tags its documented build commands produce must be the ones the chart pulls by default and in CPU
 * mode; the healthcheck script is run against a real HTTP server.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { CHART, type K8sObject, ROOT, render } from "./helm.ts";

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  name: string;
  from: string;
  body: Instruction[];
}

/** Instructions (continuation lines joined, comments dropped), the global ARGs and the stages. */
function parseDockerfile(text: string): { args: Map<string, string>; stages: Stage[]; comments: string[] } {
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  const comments: string[] = [];
  const logical = text.replace(/\\\n\s*/g, " ").split("\n");
  for (const line of logical.map((l) => l.trim())) {
    if (line.startsWith("#")) comments.push(line);
    if (line === "" || line.startsWith("#")) continue;
    const [, op = "", rest = ""] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const ins = { op: op.toUpperCase(), args: rest };
    if (ins.op === "FROM") {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
      stages.push({ name: m?.[2] ?? String(stages.length), from: m?.[1] ?? "", body: [] });
    } else if (stages.length === 0 && ins.op === "ARG") {
      const [name = "", value = ""] = rest.split("=");
      args.set(name, value);
    } else stages.at(-1)?.body.push(ins);
  }
  return { args, stages, comments };
}

const dockerfile = parseDockerfile(readFileSync(join(ROOT, "Dockerfile"), "utf8"));
const stage = (name: string) => {
  const s = dockerfile.stages.find((x) => x.name === name);
  if (!s) throw new Error(`no stage ${name}`);
  return s;
};
const all = (s: Stage, op: string) => s.body.filter((i) => i.op === op);
const expand = (image: string) => image.replace(/\$\{(\w+)\}/g, (_, v: string) => dockerfile.args.get(v) ?? `<unset ${v}>`);
const chart = parse(readFileSync(join(CHART, "Chart.yaml"), "utf8")) as { appVersion: string };
const values = parse(readFileSync(join(CHART, "values.yaml"), "utf8")) as { image: { repository: string; flavor: string } };
const TARGETS = ["cpu", "cuda"] as const;

describe("Dockerfile", () => {
  it("has a CPU and a CUDA target, each from its own build stage, the CUDA one last (the default target)", () => {
    expect(dockerfile.stages.map((s) => s.name)).toEqual(["node", "build-cpu", "build-cuda", "cpu", "cuda"]);
    for (const t of TARGETS) {
      const copies = all(stage(t), "COPY").map((c) => /--from=(\S+)/.exec(c.args)?.[1]);
      expect(copies).toContain(`build-${t}`);
      expect(copies).not.toContain(`build-${t === "cpu" ? "cuda" : "cpu"}`);
    }
    expect(stage("build-cpu").from).toBe("node");
    expect(stage("cpu").from).toBe("node");
    expect(stage("build-cuda").from).toMatch(/^nvidia\/cuda:.*-devel-/);
    expect(stage("cuda").from).toMatch(/^nvidia\/cuda:.*-runtime-/);
  });

  it("builds the native addon in the image, with the CUDA backend off in the CPU build and on in the CUDA build", () => {
    for (const [t, cuda] of [
      ["cpu", "OFF"],
      ["cuda", "ON"],
    ] as const) {
      const body = stage(`build-${t}`).body;
      expect(body).toContainEqual({ op: "ENV", args: `EXPERTMESH_CUDA=${cuda}` });
      expect(body.at(-1)).toEqual({ op: "RUN", args: "expertmesh-image-build build" });
    }
    const script = readFileSync(join(ROOT, "scripts/image/build.sh"), "utf8");
    expect(script).toContain("npm run build -w @expertmesh/kernels");
    const kernels = JSON.parse(readFileSync(join(ROOT, "kernels/package.json"), "utf8"));
    expect(kernels.scripts.build).toBe("node scripts/build.ts");
    expect(readFileSync(join(ROOT, "kernels/scripts/build.ts"), "utf8")).toContain("cmake-js");
  });

  it("pins every base image: a tag on each, never `latest`", () => {
    const names = new Set(dockerfile.stages.map((s) => s.name));
    for (const s of dockerfile.stages) {
      if (names.has(s.from)) continue;
      const image = expand(s.from);
      expect(image, s.from).toMatch(/^[\w./-]+:[\w.-]+$/);
      expect(image.split(":")[1]).not.toMatch(/latest/);
    }
    expect(expand(stage("node").from)).toMatch(/^node:\d+\.\d+\.\d+-/);
  });

  it("runs as a non-root numeric user, with a HEALTHCHECK on /ready and exec-form commands", () => {
    for (const t of TARGETS) {
      const s = stage(t);
      const user = all(s, "USER").at(-1)?.args ?? "";
      expect(user, t).toMatch(/^[1-9]\d*(:\d+)?$/);
      const health = all(s, "HEALTHCHECK");
      expect(health, t).toHaveLength(1);
      expect(health[0]?.args).toMatch(/ CMD \["node", "scripts\/image\/healthcheck\.ts"\]$/);
      const cmd = all(s, "CMD").at(-1)?.args ?? "";
      expect(JSON.parse(cmd)).toEqual(["node", "gateway/src/main.ts"]);
      expect(
        all(s, "ENV")
          .map((e) => e.args)
          .join(" "),
      ).toMatch(/EXPERTMESH_GIT_COMMIT=\$\{GIT_COMMIT\}/);
    }
    expect(readFileSync(join(ROOT, "scripts/image/healthcheck.ts"), "utf8")).toContain("/ready");
  });

  it("keeps installed and built artefacts out of the build context", () => {
    const ignored = readFileSync(join(ROOT, ".dockerignore"), "utf8").split("\n");
    for (const p of ["**/node_modules", "**/build", "proto/generated", ".git", ".run"]) expect(ignored).toContain(p);
  });
});

describe("the chart's default image is what the Dockerfile builds", () => {
  /** repository:tag of each documented `docker build --target T ... -t IMAGE .` line. */
  const documented = new Map(
    dockerfile.comments.flatMap((c) => {
      const m = /docker build --target (\S+) .* -t (\S+) \.$/.exec(c);
      return m ? [[m[1] as string, m[2] as string]] : [];
    }),
  );
  const images = (objects: K8sObject[]) =>
    new Set(
      objects.flatMap((o) => {
        const pod = o.spec?.template?.spec;
        return [...(pod?.initContainers ?? []), ...(pod?.containers ?? [])]
          .map((c: { image: string }) => c.image)
          .filter((i: string) => i.startsWith(values.image.repository));
      }),
    );

  it("documents a build command per target, tagged <appVersion>-<target> in the chart's repository", () => {
    expect([...documented.keys()].sort()).toEqual([...TARGETS]);
    for (const t of TARGETS) expect(documented.get(t)).toBe(`${values.image.repository}:${chart.appVersion}-${t}`);
  });

  it("GPU mode (the default) pulls the CUDA image; CPU mode (ci/cpu-values.yaml) the CPU image", () => {
    expect(values.image.flavor).toBe("cuda");
    expect([...images(render())]).toEqual([documented.get("cuda")]);
    expect([...images(render(["ci/cpu-values.yaml"]))]).toEqual([documented.get("cpu")]);
    // An explicit tag is used as given.
    expect([...images(render([], ["image.tag=custom"]))]).toEqual([`${values.image.repository}:custom`]);
  });
});

describe("the image's healthcheck script", () => {
  async function check(status: number | null): Promise<number | null> {
    const server = createServer((req, res) => {
      res.statusCode = req.url === "/ready" ? (status ?? 500) : 404;
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    if (status === null) await new Promise((resolve) => server.close(resolve)); // nothing listening
    const child = spawn(process.execPath, [join(ROOT, "scripts/image/healthcheck.ts")], {
      env: { ...process.env, GATEWAY_PORT: String(port), EXPERTMESH_HEALTHCHECK_URL: "" },
      stdio: "ignore",
    });
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    if (status !== null) server.close();
    return code;
  }

  it("exits 0 when /ready answers 200, 1 when it answers 503 or nothing listens", async () => {
    expect(await check(200)).toBe(0);
    expect(await check(503)).toBe(1);
    expect(await check(null)).toBe(1);
  });
});
