/**
 * Describes this machine for the plan (plan.ts Machine): what the engine's build sees (capabilities(),
 * asked in a child process so this one never loads the addon, which the build may be rewriting),
 * nvidia-smi's GPUs, and where compute-sanitizer is. Reads only; starts nothing that stays.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Machine } from "./plan.ts";

const CAPABILITIES = `
import("./src/capabilities.ts").then(({ capabilities }) => {
  const c = capabilities();
  console.log(JSON.stringify({ compiled: c.cuda.compiled, gpus: c.cuda.deviceCount, nccl: c.nccl.loadable, ncclVersion: c.nccl.versionString }));
});`;

/** nvidia-smi's line per GPU ("NVIDIA H100 80GB HBM3, 81559 MiB, 570.86.15"); [] without a driver. */
export function nvidiaSmiGpus(): string[] {
  const r = spawnSync("nvidia-smi", ["--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"], { encoding: "utf8" });
  if (r.status !== 0 || !r.stdout) return [];
  return r.stdout
    .trim()
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
}

/** compute-sanitizer from PATH, $CUDA_HOME or the default toolkit prefix. */
export function findSanitizer(env: NodeJS.ProcessEnv): string | undefined {
  const onPath = spawnSync("sh", ["-c", "command -v compute-sanitizer"], { encoding: "utf8" }).stdout.trim();
  const candidates = [
    onPath,
    env.CUDA_HOME && join(env.CUDA_HOME, "bin/compute-sanitizer"),
    "/usr/local/cuda/bin/compute-sanitizer",
    "/usr/local/cuda/compute-sanitizer/compute-sanitizer",
  ];
  return candidates.find((c): c is string => Boolean(c) && existsSync(c as string));
}

/** The machine as the built engine sees it; throws when the addon cannot be loaded (no build). */
export function probeMachine(root: string, env: NodeJS.ProcessEnv = process.env): Machine {
  const r = spawnSync(process.execPath, ["-e", CAPABILITIES], { cwd: join(root, "kernels"), encoding: "utf8" });
  if (r.status !== 0) throw new Error(`capabilities() failed: ${r.stderr.trim().split("\n").slice(-3).join(" ")}`);
  const c = JSON.parse(r.stdout) as { compiled: boolean; gpus: number; nccl: boolean; ncclVersion: string };
  return {
    gpus: c.compiled ? c.gpus : 0,
    gpuNames: nvidiaSmiGpus(),
    cudaCompiled: c.compiled,
    ncclLoadable: c.nccl,
    ncclVersion: c.ncclVersion,
    sanitizer: findSanitizer(env),
  };
}

/** One line per fact, for the top of the output. */
export function describeMachine(m: Machine): string {
  return [
    `GPUs (nvidia-smi): ${m.gpuNames.length > 0 ? m.gpuNames.join("; ") : "none"}`,
    `engine build: CUDA ${m.cudaCompiled ? "compiled" : "not compiled"}, ${m.gpus} CUDA device(s) visible`,
    `NCCL: ${m.ncclLoadable ? `libnccl.so.2 ${m.ncclVersion}` : "not loadable"}`,
    `compute-sanitizer: ${m.sanitizer ?? "not found"}`,
  ].join("\n");
}
