import { Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { EventQueue, type Step } from "./generation-mux.ts";

const event = (n: number): Step => ({ event: { handle: n } as never });
const failure = (code: status): Step => ({
  error: Object.assign(new Error(status[code]), { code, details: "", metadata: new Metadata() }) as ServiceError,
});
const label = (s: Step) => ("event" in s ? `e${(s.event as { handle: number }).handle}` : "done" in s ? "done" : `err${s.error.code}`);

describe("EventQueue", () => {
  it("pulled, then piped: what was queued goes to the sink at once, later steps as they are put", async () => {
    const q = new EventQueue();
    q.put(event(1));
    expect(label(await q.next())).toBe("e1");
    q.put(event(2));
    q.put(event(3));
    const got: string[] = [];
    q.pipe((s) => got.push(label(s)));
    expect(got).toEqual(["e2", "e3"]);
    q.put(event(4));
    q.finish({ done: true });
    q.put(event(5)); // after the end: dropped
    expect(got).toEqual(["e2", "e3", "e4", "done"]);
    expect(q.finished).toBe(true);
  });

  it("a step put while the sink runs (a cancel from inside it) is handed over after it returns, in order", () => {
    const q = new EventQueue();
    const got: string[] = [];
    q.pipe((s) => {
      got.push(`in:${label(s)}`);
      if (label(s) === "e1") q.finish(failure(status.CANCELLED)); // e.g. a stop string aborts the generation
      got.push(`out:${label(s)}`);
    });
    q.put(event(1));
    expect(got).toEqual(["in:e1", "out:e1", `in:err${status.CANCELLED}`, `out:err${status.CANCELLED}`]);
  });

  it("the sink closing the queue (its reader gone) stops delivery of what is still queued", () => {
    const q = new EventQueue();
    q.put(event(1));
    q.put(event(2));
    const got: string[] = [];
    q.pipe((s) => {
      got.push(label(s));
      q.close();
    });
    q.put(event(3));
    expect(got).toEqual(["e1"]);
  });

  it("a sink that throws gets an INTERNAL error as its last step, and the queue closes", () => {
    const q = new EventQueue();
    const got: string[] = [];
    q.pipe((s) => {
      got.push(label(s));
      if ("event" in s) throw new Error("consumer bug");
    });
    q.put(event(1));
    q.put(event(2));
    expect(got).toEqual(["e1", `err${status.INTERNAL}`]);
    expect(q.finished).toBe(true);
  });

  it("piped after the end was queued: the sink gets it", () => {
    const q = new EventQueue();
    q.finish({ done: true });
    const got: string[] = [];
    q.pipe((s) => got.push(label(s)));
    expect(got).toEqual(["done"]);
  });
});
