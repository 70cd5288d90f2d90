import { describe, expect, it } from "vitest";
import { relay } from "./generation-backend.ts";

async function* source(n: number, failAt = -1): AsyncGenerator<number> {
  for (let i = 0; i < n; i++) {
    if (i === failAt) throw new Error(`failed at ${i}`);
    yield i;
  }
}

function recorded(open: () => AsyncIterator<number> | Promise<AsyncIterator<number>>) {
  const events: number[] = [];
  const ends: unknown[] = [];
  let opened = 0;
  const stream = relay(
    () => {
      opened++;
      return open();
    },
    { onEvent: (e) => events.push(e), onEnd: (err) => ends.push(err) },
  );
  return { stream, events, ends, opened: () => opened };
}

describe("relay", () => {
  it("passes every event through, calls onEvent for each and onEnd once when the source finishes", async () => {
    const r = recorded(() => source(3));
    const seen: number[] = [];
    for await (const e of r.stream) seen.push(e);
    expect(seen).toEqual([0, 1, 2]);
    expect(r.events).toEqual([0, 1, 2]);
    expect(r.ends).toEqual([undefined]);
  });

  it("opens lazily and only once", async () => {
    const r = recorded(async () => source(2));
    expect(r.opened()).toBe(0);
    const it = r.stream[Symbol.asyncIterator]();
    await it.next();
    await it.next();
    expect(r.opened()).toBe(1);
  });

  it("hands the source's error to onEnd and to the consumer", async () => {
    const r = recorded(() => source(5, 2));
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const e of r.stream) seen.push(e);
      })(),
    ).rejects.toThrow("failed at 2");
    expect(seen).toEqual([0, 1]);
    expect(r.ends).toHaveLength(1);
    expect((r.ends[0] as Error).message).toBe("failed at 2");
  });

  it("an opening that fails ends the stream with its error", async () => {
    const r = recorded(async () => {
      throw new Error("no slot");
    });
    await expect(r.stream[Symbol.asyncIterator]().next()).rejects.toThrow("no slot");
    expect((r.ends[0] as Error).message).toBe("no slot");
  });

  it("a consumer that stops early closes the source (its finally runs) and ends once", async () => {
    let cleaned = false;
    async function* guarded() {
      try {
        yield* source(10);
      } finally {
        cleaned = true;
      }
    }
    const r = recorded(() => guarded());
    for await (const e of r.stream) if (e === 1) break;
    expect(cleaned).toBe(true);
    expect(r.ends).toEqual([undefined]);
    const it = r.stream[Symbol.asyncIterator]();
    await it.return?.();
    expect(r.opened()).toBe(1); // closing a stream that never started opens nothing
  });

  it("closed while still opening: waits for the open, so that onEnd sees what opening set up, and closes the source", async () => {
    let held = false;
    let finishOpen: () => void = () => {};
    const gate = new Promise<void>((r) => {
      finishOpen = r;
    });
    let sourceClosed = false;
    const endsWith: boolean[] = [];
    const it = relay(
      async () => {
        await gate;
        held = true; // e.g. an admission slot
        const s = source(3);
        return {
          next: () => s.next(),
          return: async () => {
            sourceClosed = true;
            return { done: true as const, value: undefined };
          },
        };
      },
      { onEnd: () => endsWith.push(held) },
    )[Symbol.asyncIterator]();
    const first = it.next();
    const closed = it.return?.();
    finishOpen();
    await closed;
    await first.catch(() => {});
    expect(endsWith).toEqual([true]);
    expect(sourceClosed).toBe(true);
  });
});
