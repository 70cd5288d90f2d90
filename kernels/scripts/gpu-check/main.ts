#!/usr/bin/env node
/**
 * scripts/gpu-check.sh's body: build with CUDA, describe the machine, plan (plan.ts), run each check under
 * `timeout` within the run's budget, print one table (report.ts). --dry-run builds only when no build
 * exists and prints the plan instead of running it. Every check's output goes to --out as <id>.log (and
 * vitest's JSON report as <id>.json); the table goes to report.txt there too.
 */
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseGpuCheckArgs, USAGE, UsageError } from "./args.ts";
import { describeMachine, nvidiaSmiGpus, probeMachine } from "./machine.ts";
import {
  BUILD_TIMEOUT_S,
  type Check,
  type Machine,
  type Planned,
  planChecks,
  prepareArgv,
  RUN_BUDGET_S,
  rooflineOf,
  shellLine,
  timed,
} from "./plan.ts";
import { exitStatus, formatReport, type Outcome, outcomeWithoutRun } from "./report.ts";
import { log, printTail, ROOT as root, run, runCheck, startPrepare } from "./runner.ts";

const BUILT = ["kernels/build/Release/expertmesh_kernels.node", "kernels/build/tests/test_ops", "kernels/build/tests/test_comm"];
/** The real run's build: setup (idempotent) with the CUDA backend required and every core compiling. */
const BUILD_ARGV = ["env", "EXPERTMESH_CUDA=ON", `CMAKE_BUILD_PARALLEL_LEVEL=${availableParallelism()}`, "bash", "scripts/setup.sh"];

function printPlan(plan: Planned[]): void {
  for (const p of plan) {
    if (p.state === "not-applicable") log(`  n/a  ${p.id}: ${p.reason}`);
    else {
      const c = p.check;
      const tag = p.state === "planned" ? "run " : "FAIL";
      log(`  ${tag} ${c.id}: ${c.title}${p.state === "blocked" ? `\n[gpu-check]         would fail, not run: ${p.reason}` : ""}`);
      log(
        `         ${shellLine(timed(c.argv, c.timeoutS))}${c.cwd ? ` (in ${c.cwd}/)` : ""}${c.needsPrepare ? " (after the checkpoint)" : ""}`,
      );
    }
  }
}

async function dryRun(out: string): Promise<number> {
  const missing = BUILT.filter((f) => !existsSync(join(root, f)));
  if (missing.length === 0) log(`build: present (${BUILT.join(", ")})`);
  else {
    log(`build: ${missing.join(", ")} missing: building (node kernels/scripts/build.ts)`);
    const r = await run([process.execPath, "kernels/scripts/build.ts"], undefined, join(out, "build.log"));
    if (r.code !== 0) {
      printTail(r.output);
      log("the build failed");
      return 1;
    }
  }
  const m = probeMachine(root);
  for (const line of describeMachine(m).split("\n")) log(line);
  const plan = planChecks(m, { out, roofline: rooflineOf(m.gpuNames) });
  log(`plan (dry run: nothing is run; a real run keeps within ${RUN_BUDGET_S} s and lowers these caps to what is left):`);
  log(`  run  build: ${shellLine(timed(BUILD_ARGV, BUILD_TIMEOUT_S))}`);
  log(`  bg   prepare: ${shellLine(prepareArgv())} (started before the build)`);
  printPlan(plan);
  const runs = plan.filter((p) => p.state === "planned").length;
  const blocked = plan.filter((p) => p.state === "blocked");
  log(`${runs} check(s) would run, ${plan.length - runs - blocked.length} not applicable, ${blocked.length} would fail unrun`);
  if (blocked.length > 0) log(`a real run here fails: ${blocked[0]?.state === "blocked" ? blocked[0].reason : ""}`);
  log(`logs would go to ${out}`);
  return 0;
}

async function realRun(out: string): Promise<number> {
  const started = performance.now();
  const elapsed = () => (performance.now() - started) / 1000;
  const finish = (outcomes: Outcome[]) => {
    const table = formatReport(outcomes);
    writeFileSync(join(out, "report.txt"), `${table}\n`);
    console.log(`\n${table}\n(logs: ${out})`);
    return exitStatus(outcomes);
  };
  const gpus = nvidiaSmiGpus();
  if (gpus.length === 0) return finish([{ id: "build", title: "build", status: "fail", detail: "not run: nvidia-smi shows no GPU here" }]);
  const prepare = startPrepare(out);
  const build: Check = {
    id: "build",
    title: "build with CUDA",
    argv: BUILD_ARGV,
    timeoutS: BUILD_TIMEOUT_S,
    judge: { kind: "output", mustMatch: [] },
  };
  const outcomes = [await runCheck(build, out, RUN_BUDGET_S)];
  try {
    if (outcomes[0]?.status !== "pass") return finish(outcomes);
    let m: Machine;
    try {
      m = probeMachine(root);
    } catch (err) {
      return finish([...outcomes, { id: "probe", title: "capabilities()", status: "fail", detail: (err as Error).message }]);
    }
    for (const line of describeMachine(m).split("\n")) log(line);
    for (const p of planChecks(m, { out, roofline: rooflineOf(m.gpuNames) })) {
      outcomes.push(p.state === "planned" ? await runCheck(p.check, out, RUN_BUDGET_S - elapsed(), prepare.done) : outcomeWithoutRun(p));
    }
    return finish(outcomes);
  } finally {
    if (prepare.child.exitCode === null) prepare.child.kill();
  }
}

async function main(argv: string[]): Promise<number> {
  let args: ReturnType<typeof parseGpuCheckArgs>;
  try {
    args = parseGpuCheckArgs(argv, process.env);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`gpu-check: ${err.message}\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    console.log(USAGE);
    return 0;
  }
  const out = resolve(args.out ?? mkdtempSync(join(tmpdir(), "expertmesh-gpu-check-")));
  mkdirSync(out, { recursive: true });
  return args.dryRun ? dryRun(out) : realRun(out);
}

process.exitCode = await main(process.argv.slice(2));
