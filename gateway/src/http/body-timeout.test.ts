/**
 * Slow bodies time out (#20 item 5): raw sockets send a request's headers and then its body a byte
 * every 100 ms (under the idle limit, over the total one) or part of it and then nothing; each gets an
 * OpenAI-shaped 408 and a closed connection within a tick of its limit, while a normal request on
 * another connection is answered meanwhile, and the timeouts show in /metrics.
 */
import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "../testing/test-gateway.ts";

const TOTAL_MS = 1_500;
const IDLE_MS = 600;
let gateway: TestGateway;
let port: number;

beforeAll(async () => {
  // No worker is needed: the bodies never complete, so no generation starts.
  gateway = await startTestGateway({
    address: "127.0.0.1:1",
    model: "m",
    config: { http: { body_timeout_ms: TOTAL_MS, body_idle_timeout_ms: IDLE_MS } },
  });
  port = Number(new URL(gateway.base).port);
}, 30_000);

afterAll(async () => {
  gateway?.app.server.closeAllConnections();
  await gateway?.close();
});

interface Outcome {
  /** Everything the gateway sent before closing. */
  text: string;
  /** ms from the end of the headers to the close. */
  closedAfterMs: number;
}

/** Sends headers for a `length`-byte JSON body, then `trickle(socket)` decides what of it to send. */
function slowRequest(length: number, trickle: (s: Socket) => NodeJS.Timeout | undefined): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1");
    let text = "";
    let sentAt = 0;
    let timer: NodeJS.Timeout | undefined;
    s.on("connect", () => {
      s.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${length}\r\n\r\n`);
      sentAt = Date.now();
      timer = trickle(s);
    });
    s.on("data", (d) => {
      text += d.toString();
    });
    s.on("error", () => {}); // a write racing the close
    s.on("close", () => {
      clearInterval(timer);
      resolve({ text, closedAfterMs: Date.now() - sentAt });
    });
    setTimeout(() => reject(new Error(`still open after 10 s; got ${JSON.stringify(text)}`)), 10_000).unref();
  });
}

function expect408(o: Outcome, detail: string): void {
  const [head, body] = o.text.split("\r\n\r\n");
  expect(head).toMatch(/^HTTP\/1\.1 408 /);
  expect(head?.toLowerCase()).toContain("connection: close");
  expect(JSON.parse(body ?? "")).toEqual({
    error: { message: expect.stringContaining(detail), type: "invalid_request_error", param: null, code: "request_timeout" },
  });
}

describe("request bodies are received in bounded time (#20 item 5)", () => {
  it("a body sent a byte every 100 ms gets 408 and a closed connection at the total deadline; /health answers meanwhile", async () => {
    const slow = slowRequest(10_000, (s) => setInterval(() => s.writable && s.write("{"), 100));
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    const health = await fetch(`${gateway.base}/health`);
    expect(health.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(1_000);
    const o = await slow;
    expect408(o, `over ${TOTAL_MS} ms in all`);
    expect(o.closedAfterMs).toBeGreaterThanOrEqual(TOTAL_MS - 50);
    expect(o.closedAfterMs).toBeLessThan(TOTAL_MS + 1_500);
  });

  it("a body that stops arriving gets 408 at the idle limit", async () => {
    const o = await slowRequest(100, (s) => {
      s.write('{"model":');
      return undefined;
    });
    expect408(o, `no byte for ${IDLE_MS} ms`);
    expect(o.closedAfterMs).toBeGreaterThanOrEqual(IDLE_MS - 50);
    expect(o.closedAfterMs).toBeLessThan(TOTAL_MS);
  });

  it("counts the timeouts by kind in /metrics; nothing is left receiving", async () => {
    const metrics = await (await fetch(`${gateway.base}/metrics`)).text();
    expect(metrics).toMatch(/expertmesh_gateway_body_timeouts_total\{kind="total"[^}]*\} 1\n/);
    expect(metrics).toMatch(/expertmesh_gateway_body_timeouts_total\{kind="idle"[^}]*\} 1\n/);
    expect(metrics).toMatch(/expertmesh_gateway_bodies_receiving\{[^}]*\} 0\n/);
  });
});
