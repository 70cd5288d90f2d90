import { describe, expect, it } from "vitest";
import type { Judge } from "./plan.ts";
import { exitStatus, formatReport, judgeRun, type Outcome, outcomeWithoutRun, type RunResult, skipReason } from "./report.ts";

const ok = (output: string, extra: Partial<RunResult> = {}): RunResult => ({ code: 0, timedOut: false, output, seconds: 3, ...extra });
const OPS: Judge = { kind: "output", mustMatch: [/^cuda: \d+ device\(s\), running/m, /^ops: \d+ passed, 0 failed$/m] };

// vitest's verbose line for a test that skipped itself (ANSI colours as vitest prints them to a pipe with FORCE_COLOR).
const SKIPPED_LINE =
  " \x1b[2m\x1b[90m↓\x1b[39m\x1b[22m src/communicator.test.ts\x1b[2m > \x1b[22mcommunicator (NCCL)\x1b[2m > \x1b[22mjoins GPU ranks through the rendezvous (rank 0 publishes the unique id)\x1b[32m 1\x1b[2mms\x1b[22m\x1b[39m\x1b[2m\x1b[90m [needs libnccl.so.2 and a CUDA device (nccl loadable: false, CUDA devices: 0)]\x1b[39m\x1b[22m";
const NCCL_JOIN: Judge = { kind: "vitest", select: /^communicator \(NCCL\) > joins GPU ranks/, report: "/unused" };
const assertion = (title: string, status: string, failureMessages: string[] = []) => ({
  ancestorTitles: ["communicator (NCCL)"],
  title,
  status,
  failureMessages,
});
const reportOf = (...a: ReturnType<typeof assertion>[]) =>
  JSON.stringify({
    testResults: [{ assertionResults: [assertion("connectOn: ranks on cpu or cuda-emu meet over Gloo", "skipped"), ...a] }],
  });
const RDZV = "joins GPU ranks through the rendezvous (rank 0 publishes the unique id)";
const UID = "joins GPU ranks through the unique id and runs the collectives";

describe("gpu-check judge", () => {
  it("output checks: pass quoting the matched lines; fail on exit status, a missing line, a timeout, a signal", () => {
    const out = "cpu: SIMD path avx512\ncuda: 1 device(s), running the nvcc-built op set on device 0\nops: 412 passed, 0 failed\n";
    expect(judgeRun(OPS, ok(out))).toEqual({
      status: "pass",
      detail: "cuda: 1 device(s), running the nvcc-built op set on device 0; ops: 412 passed, 0 failed",
    });
    expect(judgeRun(OPS, ok(`${out}FAIL rope/x\n`, { code: 1 }))).toEqual({ status: "fail", detail: "exit status 1: FAIL rope/x" });
    const skipped = "SKIP cuda: no CUDA device visible (no driver)\nops: 300 passed, 0 failed\n";
    expect(judgeRun(OPS, ok(skipped))).toEqual({ status: "fail", detail: "output lacks /^cuda: \\d+ device\\(s\\), running/m" });
    expect(judgeRun(OPS, ok(out, { code: 124, timedOut: true, seconds: 180.2 }))).toEqual({
      status: "fail",
      detail: "timed out after 180 s",
    });
    expect(judgeRun(OPS, ok("cuda: 1 device(s)\n", { code: 139, signal: "SIGSEGV" }))).toEqual({
      status: "fail",
      detail: "killed by SIGSEGV: cuda: 1 device(s)",
    });
  });

  it("vitest checks: every selected test passed → pass; the tests outside the selection do not count", () => {
    const r = judgeRun(NCCL_JOIN, ok("", { vitestReport: reportOf(assertion(RDZV, "passed"), assertion(UID, "passed")) }));
    expect(r).toEqual({ status: "pass", detail: "2 test(s) passed" });
  });

  it("a selected test that skipped itself is a skip with the reason vitest printed, not a pass", () => {
    const r = judgeRun(
      NCCL_JOIN,
      ok(`${SKIPPED_LINE}\n`, { vitestReport: reportOf(assertion(RDZV, "skipped"), assertion(UID, "passed")) }),
    );
    expect(r).toEqual({
      status: "skip",
      detail: "1 of 2 skipped, expected to run: needs libnccl.so.2 and a CUDA device (nccl loadable: false, CUDA devices: 0)",
    });
    expect(skipReason("no such line", RDZV)).toBeUndefined();
  });

  it("vitest failures: a failed test (first message line), no selected test, no report, a nonzero exit", () => {
    const failed = reportOf(
      assertion(RDZV, "failed", ["AssertionError: expected 'gloo' to be 'nccl'\n    at …"]),
      assertion(UID, "passed"),
    );
    expect(judgeRun(NCCL_JOIN, ok("", { code: 1, vitestReport: failed }))).toEqual({
      status: "fail",
      detail: `1 of 2 failed: ${RDZV}: AssertionError: expected 'gloo' to be 'nccl'`,
    });
    expect(judgeRun(NCCL_JOIN, ok("", { vitestReport: reportOf() }))).toEqual({
      status: "fail",
      detail: "no test matches /^communicator \\(NCCL\\) > joins GPU ranks/",
    });
    expect(judgeRun(NCCL_JOIN, ok("", { code: 1 }))).toEqual({ status: "fail", detail: "vitest wrote no report (exit 1)" });
    const passed = reportOf(assertion(RDZV, "passed"));
    expect(judgeRun(NCCL_JOIN, ok("", { code: 1, vitestReport: passed })).status).toBe("fail");
  });
});

describe("gpu-check report", () => {
  const outcomes: Outcome[] = [
    { id: "build", title: "build", status: "pass", detail: "", seconds: 201.4 },
    { id: "ops", title: "ops", status: "pass", detail: "ops: 412 passed, 0 failed", seconds: 40 },
    { id: "nccl-w2", title: "w2", status: "n/a", detail: "needs 2 CUDA devices, this machine has 1" },
  ];

  it("exit status 0 only when every applicable check passed; a skip or a failure makes it 1, and so does nothing at all", () => {
    expect(exitStatus(outcomes)).toBe(0);
    expect(exitStatus([...outcomes, { id: "golden", title: "", status: "skip", detail: "" }])).toBe(1);
    expect(exitStatus([...outcomes, { id: "bench", title: "", status: "fail", detail: "" }])).toBe(1);
    expect(exitStatus([outcomes[2] as Outcome])).toBe(1);
  });

  it("outcomes without a run: not applicable keeps its reason; blocked is a failure saying why it did not run", () => {
    expect(outcomeWithoutRun({ state: "not-applicable", id: "nccl-w2", title: "w2", reason: "needs 2" })).toEqual({
      id: "nccl-w2",
      title: "w2",
      status: "n/a",
      detail: "needs 2",
    });
    const check = { id: "ops", title: "ops", argv: ["x"], timeoutS: 1, judge: OPS };
    expect(outcomeWithoutRun({ state: "blocked", check, reason: "no CUDA device visible to the engine" })).toMatchObject({
      status: "fail",
      detail: "not run: no CUDA device visible to the engine",
    });
  });

  it("one table: a row per check (result, id, time, detail) and the verdict with the counts", () => {
    const table = formatReport([
      ...outcomes,
      { id: "golden", title: "", status: "skip", detail: "1 of 3 skipped, expected to run: needs a CUDA device" },
    ]);
    expect(table.split("\n")).toEqual([
      "| result | check   | time  | detail                                               |",
      "| ------ | ------- | ----- | ---------------------------------------------------- |",
      "| PASS   | build   | 201 s |                                                      |",
      "| PASS   | ops     | 40 s  | ops: 412 passed, 0 failed                            |",
      "| N/A    | nccl-w2 |       | needs 2 CUDA devices, this machine has 1             |",
      "| SKIP   | golden  |       | 1 of 3 skipped, expected to run: needs a CUDA device |",
      "GPU CHECK FAIL: 2 passed, 0 failed, 1 skipped (expected to run), 1 not applicable",
    ]);
  });
});
