/**
 * Work budgets (#20 item 2): a deadline on a given clock, and the thread CPU clock prompt threads use,
 * which counts a thread's work but not the time it waits for a core (or sleeps).
 */
import { describe, expect, it } from "vitest";
import { deadlineBudget, threadCpuClock } from "./budget.ts";

describe("deadlineBudget", () => {
  it("throws the caller's error once its clock passes the deadline, the signal's reason once aborted", () => {
    let now = 100;
    const over = new Error("over");
    const budget = deadlineBudget(
      50,
      () => over,
      undefined,
      () => now,
    );
    now = 150;
    expect(() => budget.check()).not.toThrow();
    now = 151;
    expect(() => budget.check()).toThrow(over);

    const controller = new AbortController();
    const cancelled = deadlineBudget(
      1_000,
      () => over,
      controller.signal,
      () => 0,
    );
    expect(() => cancelled.check()).not.toThrow();
    controller.abort(new Error("client gone"));
    expect(() => cancelled.check()).toThrow("client gone");
  });
});

describe("threadCpuClock", () => {
  it("does not advance while the thread sleeps", () => {
    const t0 = threadCpuClock();
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
    expect(threadCpuClock() - t0).toBeLessThan(100);
  });

  it("advances while the thread works", () => {
    const t0 = threadCpuClock();
    const wall = performance.now();
    let x = 0;
    // Spins until 30 ms of CPU are counted; the wall-clock cap only guards a broken clock.
    while (threadCpuClock() - t0 < 30 && performance.now() - wall < 20_000) x += Math.sqrt(x + 1);
    expect(threadCpuClock() - t0).toBeGreaterThanOrEqual(30);
    expect(x).toBeGreaterThan(0);
  });
});
