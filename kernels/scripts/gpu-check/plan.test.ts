import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { BUILD_TIMEOUT_S, type Check, type Machine, type Planned, planChecks, RUN_BUDGET_S, rooflineOf, shellLine, timed } from "./plan.ts";

const H100 = "NVIDIA H100 80GB HBM3, 81559 MiB, 570.86.15";
const machine = (m: Partial<Machine>): Machine => ({
  gpus: 1,
  gpuNames: [H100],
  cudaCompiled: true,
  ncclLoadable: true,
  ncclVersion: "2.21.5",
  sanitizer: "/usr/local/cuda/bin/compute-sanitizer",
  ...m,
});
const ctx = { out: "/tmp/gpu-check-out" };

const idOf = (p: Planned) => (p.state === "not-applicable" ? p.id : p.check.id);
const ids = (plan: Planned[], state: Planned["state"]) => plan.filter((p) => p.state === state).map(idOf);
const reasonOf = (plan: Planned[], id: string) => {
  const p = plan.find((x) => idOf(x) === id);
  return p && p.state !== "planned" ? p.reason : undefined;
};
const checkOf = (plan: Planned[], id: string) => {
  const p = plan.find((x) => idOf(x) === id);
  if (!p || p.state === "not-applicable") throw new Error(`${id} is not planned`);
  return p.check;
};

const SANITIZERS = ["sanitizer-memcheck", "sanitizer-racecheck", "sanitizer-synccheck"];
const CORE = ["ops", "golden", "decode-graphs", "cuda-vs-cpu-20b"];

describe("gpu-check plan", () => {
  it.each<[string, Partial<Machine>, string[], string[]]>([
    ["1 GPU, NCCL, sanitizer", {}, [...CORE, "nccl-join", "nccl-native", ...SANITIZERS, "bench"], ["nccl-absent", "nccl-w2"]],
    ["2 GPUs, NCCL, sanitizer", { gpus: 2 }, [...CORE, "nccl-join", "nccl-native", "nccl-w2", ...SANITIZERS, "bench"], ["nccl-absent"]],
    [
      "2 GPUs, NCCL, no sanitizer",
      { gpus: 2, sanitizer: undefined },
      [...CORE, "nccl-join", "nccl-native", "nccl-w2", "bench"],
      ["nccl-absent", ...SANITIZERS],
    ],
    [
      "1 GPU, no NCCL, sanitizer",
      { ncclLoadable: false, ncclVersion: "" },
      [...CORE, "nccl-absent", ...SANITIZERS, "bench"],
      ["nccl-join", "nccl-native", "nccl-w2"],
    ],
    [
      "2 GPUs, no NCCL",
      { gpus: 2, ncclLoadable: false, ncclVersion: "" },
      [...CORE, "nccl-absent", ...SANITIZERS, "bench"],
      ["nccl-join", "nccl-native", "nccl-w2"],
    ],
  ])("%s: runs what the machine has, says why the rest does not apply", (_name, m, run, notApplicable) => {
    const plan = planChecks(machine(m), ctx);
    expect(ids(plan, "planned")).toEqual(run);
    expect(ids(plan, "not-applicable").sort()).toEqual([...notApplicable].sort());
    expect(ids(plan, "blocked")).toEqual([]);
  });

  it("the reasons name what is missing", () => {
    const one = planChecks(machine({}), ctx);
    expect(reasonOf(one, "nccl-w2")).toBe("needs 2 CUDA devices, this machine has 1");
    expect(reasonOf(one, "nccl-absent")).toBe("NCCL 2.21.5 is loadable (the path needs a host without it)");
    const bare = planChecks(machine({ ncclLoadable: false, ncclVersion: "", sanitizer: undefined }), ctx);
    expect(reasonOf(bare, "nccl-join")).toBe("libnccl.so.2 cannot be loaded here");
    expect(reasonOf(bare, "sanitizer-racecheck")).toBe("the CUDA toolkit here has no compute-sanitizer");
  });

  it.each<[string, Partial<Machine>, string]>([
    ["no GPU", { gpus: 0, gpuNames: [], ncclLoadable: false, sanitizer: undefined }, "no CUDA device visible to the engine"],
    ["a build without CUDA", { gpus: 0, cudaCompiled: false }, "the kernels were built without the CUDA backend (nvcc not found?)"],
  ])("%s: every check that needs the device is blocked (a failure), none planned", (_name, m, reason) => {
    const plan = planChecks(machine(m), ctx);
    expect(ids(plan, "planned")).toEqual([]);
    expect(ids(plan, "blocked")).toEqual(expect.arrayContaining([...CORE, "bench"]));
    for (const id of ids(plan, "blocked")) expect(reasonOf(plan, id)).toBe(reason);
  });

  it("commands: test_ops and test_comm from the build, the sanitizers on the tiny model, bench on cuda:0 after the checkpoint", () => {
    const plan = planChecks(machine({ gpus: 2 }), { ...ctx, roofline: "h100" });
    expect(checkOf(plan, "ops").argv).toEqual(["kernels/build/tests/test_ops"]);
    expect(checkOf(plan, "nccl-native").argv).toEqual(["kernels/build/tests/test_comm"]);
    const memcheck = checkOf(plan, "sanitizer-memcheck").argv;
    expect(memcheck.slice(0, 5)).toEqual(["/usr/local/cuda/bin/compute-sanitizer", "--tool", "memcheck", "--error-exitcode", "1"]);
    expect(shellLine(memcheck)).toContain("node kernels/src/cli/main.ts generate --model test/fixtures/golden/g1-tiny");
    expect(shellLine(memcheck)).toContain("--device cuda:0");
    const bench = checkOf(plan, "bench");
    expect(shellLine(bench.argv)).toBe(
      "node bench/engine.ts --device cuda:0 --shape 20b --steps 8 --batches 1,16,64 --prefill 2048 --probe-gib 0.5 --roofline h100 --json",
    );
    expect(bench.needsPrepare).toBe(true);
    const golden = checkOf(plan, "golden");
    expect(golden.cwd).toBe("kernels");
    expect(golden.argv).toContain("--outputFile.json=/tmp/gpu-check-out/golden.json");
    expect(golden.judge).toMatchObject({ kind: "vitest", report: "/tmp/gpu-check-out/golden.json" });
  });

  it("fits the issue's 12 minutes: the run's budget leaves 30 s, and no single cap exceeds it", () => {
    expect(RUN_BUDGET_S + 30).toBeLessThanOrEqual(12 * 60);
    const plan = planChecks(machine({ gpus: 2 }), ctx);
    for (const p of plan) if (p.state !== "not-applicable") expect(p.check.timeoutS).toBeLessThan(RUN_BUDGET_S);
    expect(BUILD_TIMEOUT_S).toBeLessThan(RUN_BUDGET_S);
  });

  it("each vitest check selects at least one test of its file (vitest list: the names as vitest matches them)", {
    timeout: 120_000,
  }, async () => {
    const vitests = planChecks(machine({ gpus: 2 }), ctx)
      .concat(planChecks(machine({ gpus: 2, ncclLoadable: false }), ctx))
      .flatMap((p): Check[] => (p.state === "planned" && p.check.judge.kind === "vitest" ? [p.check] : []));
    const files = [...new Set(vitests.map((c) => c.argv[3] as string))];
    const kernels = new URL("../../", import.meta.url).pathname;
    const { stdout } = await promisify(execFile)("npx", ["vitest", "list", ...files, "--json"], { cwd: kernels });
    const names = (JSON.parse(stdout) as Array<{ name: string; file: string }>).map((t) => ({ name: t.name, file: t.file }));
    expect(new Set(vitests.map((c) => c.id))).toEqual(
      new Set(["golden", "decode-graphs", "cuda-vs-cpu-20b", "nccl-join", "nccl-absent", "nccl-w2"]),
    );
    for (const c of vitests) {
      const judge = c.judge as Extract<Check["judge"], { kind: "vitest" }>;
      const selected = names.filter((t) => t.file.endsWith(c.argv[3] as string) && judge.select.test(t.name));
      expect(selected.length, `${c.id}: ${judge.select}`).toBeGreaterThan(0);
    }
  });

  it("rooflineOf names bench/gpu-model's device from nvidia-smi's first GPU", () => {
    expect(rooflineOf([H100])).toBe("h100");
    expect(rooflineOf(["NVIDIA H200, 143771 MiB, 570.86.15"])).toBe("h200");
    expect(rooflineOf(["NVIDIA A100-SXM4-80GB, 81920 MiB, 550.54"])).toBeUndefined();
    expect(rooflineOf([])).toBeUndefined();
  });

  it("timed wraps a command in timeout with a kill grace; shellLine quotes what a shell would split", () => {
    expect(timed(["a", "b"], 60)).toEqual(["timeout", "-k", "10", "60", "a", "b"]);
    expect(shellLine(["npx", "vitest", "-t", "^x \\(y\\) > z", "it's", "--out=/a/b"])).toBe(
      `npx vitest -t '^x \\(y\\) > z' 'it'\\''s' --out=/a/b`,
    );
  });
});
