/**
 * scripts/gpu-check.sh for real on this machine: the dry run TEST runs (exit 0, the machine described,
 * every check listed with its command or its reason), usage errors, and the runner on real processes —
 * a vitest check through `timeout` judged from its JSON report, a timeout, a crash. What a GPU machine
 * adds (the checks passing) is the script's own real run there.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { capabilities } from "../../src/capabilities.ts";
import { benchCheck, type Check, planChecks } from "./plan.ts";
import { ROOT, runCheck } from "./runner.ts";

const IDS = [
  "ops",
  "golden",
  "cuda-vs-cpu-20b",
  "nccl-join",
  "nccl-native",
  "nccl-absent",
  "nccl-w2",
  "sanitizer-memcheck",
  "sanitizer-racecheck",
  "sanitizer-synccheck",
  "bench",
];
const script = (...args: string[]) =>
  spawnSync("bash", [join(ROOT, "scripts/gpu-check.sh"), ...args], { encoding: "utf8", timeout: 300_000 });
const caps = capabilities();
const gpu = caps.devices.includes("cuda:0");

describe("scripts/gpu-check.sh", () => {
  it("--dry-run: exit 0, describes the machine, lists every check with its command under timeout or why it does not apply, runs nothing", {
    timeout: 300_000,
  }, () => {
    const out = mkdtempSync(join(tmpdir(), "gpu-check-dry-"));
    const r = script("--dry-run", "--out", out);
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^\[gpu-check\] build: (present|.* missing: building)/m);
    expect(r.stdout).toMatch(/^\[gpu-check\] engine build: CUDA (not )?compiled, \d+ CUDA device\(s\) visible$/m);
    expect(r.stdout).toMatch(/^\[gpu-check\] NCCL: /m);
    expect(r.stdout).toMatch(/^\[gpu-check\] compute-sanitizer: /m);
    expect(r.stdout).toMatch(/^\[gpu-check\] {3}run {2}build: timeout -k 10 \d+ env EXPERTMESH_CUDA=ON /m);
    for (const id of IDS) expect(r.stdout, id).toMatch(new RegExp(`^\\[gpu-check\\] {3}(run |FAIL|n/a ) ${id}: `, "m"));
    expect(r.stdout).toMatch(/^\[gpu-check\] {10}timeout -k 10 \d+ kernels\/build\/tests\/test_ops$/m);
    expect(r.stdout).toMatch(/^\[gpu-check\] \d+ check\(s\) would run, \d+ not applicable, \d+ would fail unrun$/m);
    if (!gpu) expect(r.stdout).toMatch(/^\[gpu-check\] a real run here fails: (no CUDA device visible|the kernels were built without)/m);
    // Nothing ran: no logs, no reports.
    expect(readdirSync(out).filter((f) => f !== "build.log")).toEqual([]);
  });

  it("--help prints the usage (exit 0); an unknown option prints it to stderr with exit 2", () => {
    const help = script("--help");
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage: bash scripts\/gpu-check.sh \[--dry-run\] \[--out DIR\] \[--help\]/);
    const bad = script("--dryrun");
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^gpu-check: Unknown option '--dryrun'/);
    expect(bad.stderr).toContain("usage: bash scripts/gpu-check.sh");
    expect(bad.stdout).toBe("");
  });
});

describe("gpu-check runner (real processes)", () => {
  const out = mkdtempSync(join(tmpdir(), "gpu-check-run-"));
  const machine = {
    gpus: caps.cuda.deviceCount,
    gpuNames: [],
    cudaCompiled: caps.cuda.compiled,
    ncclLoadable: caps.nccl.loadable,
    ncclVersion: "",
  };

  it("a vitest check runs its selection under timeout and is judged from the JSON report: a self-skip is not a pass", {
    timeout: 120_000,
  }, async () => {
    // nccl-join as it would be planned on a GPU machine with NCCL, run here whatever this machine has.
    const plan = planChecks({ ...machine, gpus: 1, cudaCompiled: true, ncclLoadable: true }, { out });
    const join_ = plan.find((p) => p.state === "planned" && p.check.id === "nccl-join");
    const outcome = await runCheck((join_ as { check: Check }).check, out, 600);
    if (caps.nccl.loadable && gpu) expect(outcome).toMatchObject({ status: "pass", detail: "2 test(s) passed" });
    else
      expect(outcome).toMatchObject({
        status: "skip",
        detail: expect.stringMatching(/^2 of 2 skipped, expected to run: needs libnccl.so.2 and a CUDA device \(nccl loadable: /),
      });
    expect(readdirSync(out)).toEqual(expect.arrayContaining(["nccl-join.log", "nccl-join.json"]));
  });

  it("the bench check's judge reads bench/engine's real table (run on the CPU with the tiny shape, same batches and prompt)", {
    timeout: 180_000,
  }, async () => {
    const check = benchCheck({ out, roofline: "h100" });
    // The planned command with the device, shape, steps and probe swapped for the CPU and the tiny model.
    const swap: Record<string, string> = { "--device": "cpu", "--shape": "tiny", "--steps": "1", "--probe-gib": "0.01" };
    const argv = [...check.argv.map((a, i) => swap[check.argv[i - 1] as string] ?? a), "--dir", join(out, "tiny")];
    expect(argv.slice(argv.indexOf("--batches"), argv.indexOf("--probe-gib"))).toEqual(["--batches", "1,16,64", "--prefill", "2048"]);
    const outcome = await runCheck({ ...check, argv, needsPrepare: false }, out, 600);
    expect(outcome).toMatchObject({
      status: "pass",
      detail: expect.stringMatching(/^\| decode tok\/s, batch 1 \| [\d.]+ \|; .*batch-1 decode % of bandwidth roofline \| [\d.]+ % \|$/),
    });
  });

  it("a check that outlives its limit fails as timed out; one that crashes fails naming the signal", { timeout: 60_000 }, async () => {
    const judge = { kind: "output" as const, mustMatch: [] };
    const slow = await runCheck({ id: "slow", title: "sleeps", argv: ["sleep", "600"], timeoutS: 1, judge }, out, 600);
    expect(slow).toMatchObject({ status: "fail", detail: expect.stringMatching(/^timed out after \d+ s$/) });
    const crash = await runCheck(
      { id: "crash", title: "segfaults", argv: ["sh", "-c", "echo about to crash; kill -SEGV $$"], timeoutS: 30, judge },
      out,
      600,
    );
    expect(crash).toMatchObject({ status: "fail", detail: "killed by SIGSEGV: about to crash" });
  });

  it("a check is not started when less than 15 s of the run's budget is left", async () => {
    const check = { id: "late", title: "late", argv: ["true"], timeoutS: 30, judge: { kind: "output" as const, mustMatch: [] } };
    expect(await runCheck(check, out, 10)).toMatchObject({ status: "fail", detail: "not run: the run's 690 s budget is spent" });
  });
});
