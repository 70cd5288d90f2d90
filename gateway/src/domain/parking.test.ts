import { AppError } from "@expertmesh/common";
import { FinishReason, type GenerateRequest, GenerateResponse } from "@expertmesh/proto/worker";
import { describe, expect, it } from "vitest";
import type { GenerationBackend } from "./generation-backend.ts";
import { ParkingBackend, type ParkingOptions, type ParkOutcome } from "./parking.ts";

/** An engine pool whose ready models the test sets; each generation yields one finished event. */
class FakeEngines implements GenerationBackend {
  ready: string[] = [];
  calls: string[] = [];
  async *generate(model: string): AsyncIterable<GenerateResponse> {
    this.calls.push(model);
    yield GenerateResponse.fromPartial({ finished: { reason: FinishReason.FINISH_REASON_STOP } });
  }
  models(): string[] {
    return this.ready;
  }
}

const request = (deadlineUnixMs = 0) => ({ deadlineUnixMs }) as GenerateRequest;
const options = (o: Partial<ParkingOptions> = {}): ParkingOptions => ({
  maxParked: 4,
  timeoutMs: 5_000,
  pollMs: 10,
  retryAfterMs: 1_000,
  models: ["m"],
  ...o,
});

async function drain(it: AsyncIterable<GenerateResponse>): Promise<number> {
  let n = 0;
  for await (const _ of it) n++;
  return n;
}

function setup(o: Partial<ParkingOptions> = {}, known: string[] = []) {
  const engines = new FakeEngines();
  const outcomes: Array<[string, ParkOutcome]> = [];
  const parking = new ParkingBackend(engines, options(o), () => known, { onOutcome: (m, r) => outcomes.push([m, r]) });
  return { engines, parking, outcomes };
}

describe("ParkingBackend", () => {
  it("passes straight through when a group of the model is ready", async () => {
    const { engines, parking, outcomes } = setup();
    engines.ready = ["m"];
    expect(await drain(parking.generate("m", request(), new AbortController().signal))).toBe(1);
    expect(outcomes).toEqual([]);
  });

  it("parks until the model's group is ready, then runs in arrival order", async () => {
    const { engines, parking, outcomes } = setup();
    const runs = [
      drain(parking.generate("m", request(), new AbortController().signal)),
      drain(parking.generate("m", request(), new AbortController().signal)),
    ];
    await new Promise((r) => setTimeout(r, 50));
    expect(parking.parked().get("m")).toBe(2);
    expect(engines.calls).toEqual([]);
    engines.ready = ["m"];
    expect(await Promise.all(runs)).toEqual([1, 1]);
    expect(parking.parked().get("m")).toBe(0);
    expect(outcomes).toEqual([
      ["m", "served"],
      ["m", "served"],
    ]);
  });

  it("does not park a model nobody serves (the pool answers model_not_found)", async () => {
    const { engines, parking } = setup();
    expect(await drain(parking.generate("other", request(), new AbortController().signal))).toBe(1);
    expect(engines.calls).toEqual(["other"]);
  });

  it("parks a model a live member lists (its group is forming)", async () => {
    const { engines, parking } = setup({ models: [] }, ["forming"]);
    const run = drain(parking.generate("forming", request(), new AbortController().signal));
    await new Promise((r) => setTimeout(r, 30));
    expect(parking.parked().get("forming")).toBe(1);
    engines.ready = ["forming"];
    expect(await run).toBe(1);
  });

  it("refuses with 503 + retry-after when the park is full", async () => {
    const { parking, outcomes } = setup({ maxParked: 1 });
    const first = new AbortController();
    const parked = drain(parking.generate("m", request(), first.signal)).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 20));
    const err = await drain(parking.generate("m", request(), new AbortController().signal)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).http).toBe(503);
    expect((err as AppError).retryAfterMs).toBe(1_000);
    first.abort(new Error("client gone"));
    expect(((await parked) as Error).message).toBe("client gone");
    expect(outcomes.map(([, o]) => o).sort()).toEqual(["cancelled", "rejected"]);
    expect(parking.parked().get("m")).toBe(0);
  });

  it("times out with 503 after timeoutMs, or earlier at the request's own deadline", async () => {
    const { parking, outcomes } = setup({ timeoutMs: 60 });
    let t0 = Date.now();
    const err = await drain(parking.generate("m", request(), new AbortController().signal)).catch((e: unknown) => e);
    expect((err as AppError).http).toBe(503);
    expect((err as AppError).message).toContain("within 60 ms");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(55);
    t0 = Date.now();
    const { parking: long } = setup({ timeoutMs: 10_000 });
    const early = await drain(long.generate("m", request(Date.now() + 50), new AbortController().signal)).catch((e: unknown) => e);
    expect((early as AppError).http).toBe(503);
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(outcomes).toEqual([["m", "timeout"]]);
  });

  it("is off with maxParked 0", async () => {
    const { engines, parking } = setup({ maxParked: 0 });
    expect(await drain(parking.generate("m", request(), new AbortController().signal))).toBe(1);
    expect(engines.calls).toEqual(["m"]);
  });
});
