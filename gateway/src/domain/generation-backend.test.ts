import { describe, expect, it } from "vitest";
import { consume, type EventSink, type PipeableIterator, relay } from "./generation-backend.ts";

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

/** A source that pushes: pipe() hands the sink over; the test then calls emit()/end() as a receipt would. */
function pushSource() {
  let sink: EventSink<number> | null = null;
  let pulled = 0;
  let closed = false;
  const it: PipeableIterator<number> = {
    next: async () => ({ done: false, value: pulled++ }),
    pipe: (s) => {
      sink = s;
    },
    return: async () => {
      closed = true;
      sink = null;
      return { done: true, value: undefined };
    },
  };
  return {
    it,
    emit: (e: number) => sink?.event(e),
    end: (err?: unknown) => sink?.end(err),
    piped: () => sink !== null,
    closed: () => closed,
  };
}

describe("pipe and consume", () => {
  it("stacked relays hand a pushed event to the consumer synchronously, with every layer's hook run, and end once", async () => {
    const src = pushSource();
    const hooks: string[] = [];
    const layer = (name: string, inner: () => PipeableIterator<number>) =>
      relay(inner, { onEvent: (e) => hooks.push(`${name}${e}`), onEnd: (err) => hooks.push(`${name}:end:${String(err)}`) });
    const outer = layer("a", () => layer("b", () => src.it)[Symbol.asyncIterator]())[Symbol.asyncIterator]();
    const first = await outer.next();
    const seen: number[] = [];
    const done = consume(outer, first, (e) => {
      seen.push(e);
      return true;
    });
    expect(src.piped()).toBe(true);
    src.emit(41);
    expect(seen).toEqual([0, 41]); // no await between the receipt and the consumer
    src.emit(42);
    src.end(undefined);
    await done;
    expect(seen).toEqual([0, 41, 42]);
    expect(hooks).toEqual(["b0", "a0", "b41", "a41", "b42", "a42", "b:end:undefined", "a:end:undefined"]);
  });

  it("stopping early (onEvent returns false) closes the source and ends the layers once", async () => {
    const src = pushSource();
    const ends: unknown[] = [];
    const it = relay(() => src.it, { onEnd: (err) => ends.push(err) })[Symbol.asyncIterator]();
    const done = consume(it, await it.next(), (e) => e < 2);
    src.emit(1);
    src.emit(2);
    await done;
    expect(src.closed()).toBe(true);
    src.emit(3); // nothing reaches a stopped consumer
    src.end(undefined);
    expect(ends).toEqual([undefined]);
  });

  it("the source's error ends the layers with it and rejects consume", async () => {
    const src = pushSource();
    const ends: unknown[] = [];
    const it = relay(() => src.it, { onEnd: (err) => ends.push(err) })[Symbol.asyncIterator]();
    const done = consume(it, await it.next(), () => true);
    src.end(new Error("worker gone"));
    await expect(done).rejects.toThrow("worker gone");
    expect((ends[0] as Error).message).toBe("worker gone");
  });

  it("what onEvent throws rejects consume and closes the stream", async () => {
    const src = pushSource();
    const it = relay(() => src.it, {})[Symbol.asyncIterator]();
    const done = consume(it, await it.next(), (e) => {
      if (e === 7) throw new Error("bad event");
      return true;
    });
    src.emit(7);
    await expect(done).rejects.toThrow("bad event");
    expect(src.closed()).toBe(true);
  });

  it("a source without pipe() is pulled: events, early stop and errors as with a pushing one", async () => {
    const seen: number[] = [];
    const it = relay(() => source(5), {})[Symbol.asyncIterator]();
    await consume(it, await it.next(), (e) => {
      seen.push(e);
      return e < 3;
    });
    expect(seen).toEqual([0, 1, 2, 3]);
    const failing = relay(() => source(5, 2), {})[Symbol.asyncIterator]();
    await expect(consume(failing, await failing.next(), () => true)).rejects.toThrow("failed at 2");
  });

  it("a stream whose first result is the end resolves without piping", async () => {
    const src = pushSource();
    await consume(src.it, { done: true, value: undefined }, () => true);
    expect(src.piped()).toBe(false);
  });
});
