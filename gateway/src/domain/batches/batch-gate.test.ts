/** BatchGate: batch lines yield to online generations, and run freely once online traffic is quiet. */
import { describe, expect, it } from "vitest";
import { BatchGate } from "./batch-gate.ts";

const tick = () => new Promise((r) => setTimeout(r, 5));

describe("BatchGate", () => {
  it("runs batch freely without online traffic", async () => {
    const gate = new BatchGate(1, 50);
    const signal = new AbortController().signal;
    await Promise.all([gate.enterBatch(signal), gate.enterBatch(signal), gate.enterBatch(signal)]);
    expect(gate.batch).toBe(3);
  });

  it("holds batch to maxWhileOnline while online runs and for quietMs after, then lets it through", async () => {
    const gate = new BatchGate(1, 60);
    const signal = new AbortController().signal;
    const endOnline = gate.enterOnline();
    const first = await gate.enterBatch(signal);
    let second: (() => void) | undefined;
    void gate.enterBatch(signal).then((r) => {
      second = r;
    });
    await tick();
    expect(second).toBeUndefined();
    endOnline();
    await tick();
    expect(second).toBeUndefined(); // still inside the quiet period
    await new Promise((r) => setTimeout(r, 80));
    expect(second).toBeDefined();
    expect(gate.batch).toBe(2);
    first();
    second?.();
    expect(gate.batch).toBe(0);
  });

  it("lets a waiting line in when a batch slot frees, and gives up when its signal aborts", async () => {
    const gate = new BatchGate(1, 1_000);
    const endOnline = gate.enterOnline();
    const first = await gate.enterBatch(new AbortController().signal);
    const waiting = gate.enterBatch(new AbortController().signal);
    const ac = new AbortController();
    const aborted = gate.enterBatch(ac.signal);
    ac.abort(new Error("client went away"));
    await expect(aborted).rejects.toThrow("client went away");
    first();
    const release = await waiting;
    expect(gate.batch).toBe(1);
    release();
    endOnline();
  });
});
