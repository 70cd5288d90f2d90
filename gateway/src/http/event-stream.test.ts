/**
 * The SSE writer frames HTTP chunks itself and writes them to the response's socket. These cases check
 * the framing with raw TCP clients where Node's own response writer must take over: pipelined requests
 * (the second response waits for the first; its socket is not its own yet) and HTTP/1.0 (no chunked
 * encoding). Each answer must arrive whole, in order, with [DONE]. And the point of framing them here:
 * one socket write per tick of events (Node's chunked writer made one per piece: 29 writes for 9 tokens).
 */
import { connect } from "node:net";
import { HarmonyTokenizer } from "@expertmesh/grammar/tokenizer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ScriptedWorker, startScriptedWorker } from "../testing/scripted-worker.ts";
import { startTestGateway, type TestGateway } from "../testing/test-gateway.ts";

const tok = new HarmonyTokenizer();
const ANSWER = " one two three four";
let worker: ScriptedWorker;
let gateway: TestGateway;
/** socket.write calls made while answering each request, by x-request-id. */
const socketWrites = new Map<string, number>();

beforeAll(async () => {
  const tokens = tok.encodeWithSpecials(`<|channel|>final<|message|>${ANSWER}<|return|>`);
  worker = await startScriptedWorker([], { tokenIntervalMs: 2, fallback: tokens });
  gateway = await startTestGateway({
    address: worker.address,
    model: "m",
    beforeListen: (app) =>
      app.addHook("onRequest", async (request) => {
        const socket = request.raw.socket;
        const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
        socketWrites.set(request.id, 0);
        socket.write = ((...args: unknown[]) => {
          socketWrites.set(request.id, (socketWrites.get(request.id) ?? 0) + 1);
          return write(...args);
        }) as typeof socket.write;
      }),
  });
});

afterAll(async () => {
  await gateway?.close();
  await worker?.close();
});

function request(version: "1.0" | "1.1", body: object): string {
  const json = JSON.stringify(body);
  return `POST /v1/chat/completions HTTP/${version}\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\n\r\n${json}`;
}

/** Sends raw bytes, reads until the server closes or `complete` says the responses are all in. */
function exchange(port: number, bytes: string, complete: (raw: Buffer) => boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = connect(port, "127.0.0.1", () => s.write(bytes));
    const done = () => {
      s.destroy();
      resolve(Buffer.concat(chunks));
    };
    s.on("data", (d) => {
      chunks.push(d);
      if (complete(Buffer.concat(chunks))) done();
    });
    s.on("end", done);
    s.on("error", reject);
  });
}

interface Parsed {
  status: number;
  headers: Record<string, string>;
  body: string;
  rest: Buffer;
}

/** One HTTP/1.x response from the front of `raw` (chunked, or to the end of the bytes); null if incomplete. */
function parseResponse(raw: Buffer): Parsed | null {
  const headEnd = raw.indexOf("\r\n\r\n");
  if (headEnd < 0) return null;
  const [statusLine, ...lines] = raw.subarray(0, headEnd).toString("latin1").split("\r\n");
  const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
  let at = headEnd + 4;
  if (headers["transfer-encoding"] !== "chunked")
    return { status: Number(statusLine?.split(" ")[1]), headers, body: raw.subarray(at).toString("utf8"), rest: Buffer.alloc(0) };
  const parts: Buffer[] = [];
  for (;;) {
    const lineEnd = raw.indexOf("\r\n", at);
    if (lineEnd < 0) return null;
    const size = Number.parseInt(raw.subarray(at, lineEnd).toString("latin1"), 16);
    if (raw.length < lineEnd + 2 + size + 2) return null;
    parts.push(raw.subarray(lineEnd + 2, lineEnd + 2 + size));
    expect(raw.subarray(lineEnd + 2 + size, lineEnd + 4 + size).toString("latin1")).toBe("\r\n");
    at = lineEnd + 4 + size;
    if (size === 0) break;
  }
  return { status: Number(statusLine?.split(" ")[1]), headers, body: Buffer.concat(parts).toString("utf8"), rest: raw.subarray(at) };
}

function parseAll(raw: Buffer, n: number): Parsed[] | null {
  const out: Parsed[] = [];
  let rest = raw;
  while (out.length < n) {
    const r = parseResponse(rest);
    if (!r) return null;
    out.push(r);
    rest = r.rest;
  }
  return out;
}

/** The answer text the events of one SSE body carry, and whether it ended with [DONE]. */
function answerOf(body: string): { text: string; done: boolean } {
  const events = body.split("\n\n").filter(Boolean);
  const text = events
    .filter((e) => e.startsWith("data: {"))
    .map((e) => JSON.parse(e.slice(6)).choices?.[0]?.delta?.content ?? "")
    .join("");
  return { text, done: events.at(-1) === "data: [DONE]" };
}

describe("SSE framing", () => {
  const body = { model: "m", messages: [{ role: "user", content: "Hi" }], stream: true };

  it("pipelined streaming requests on one connection: both answers whole, in order", async () => {
    const port = Number(new URL(gateway.base).port);
    const raw = await exchange(port, request("1.1", body) + request("1.1", { ...body, n: 2 }), (r) => parseAll(r, 2) !== null);
    const [first, second] = parseAll(raw, 2) ?? [];
    expect(first?.status).toBe(200);
    expect(second?.status).toBe(200);
    expect(answerOf(first?.body ?? "")).toEqual({ text: ANSWER, done: true });
    const secondEvents = (second?.body ?? "").split("\n\n").filter((e) => e.startsWith("data: {"));
    const byChoice = [0, 1].map((i) =>
      secondEvents
        .map((e) => JSON.parse(e.slice(6)).choices?.[0])
        .filter((c) => c?.index === i)
        .map((c) => c.delta?.content ?? "")
        .join(""),
    );
    expect(byChoice).toEqual([ANSWER, ANSWER]);
    expect(second?.body.endsWith("data: [DONE]\n\n")).toBe(true);
  });

  it("one socket write per tick of events (headers and the end aside), not one per chunk piece", async () => {
    const res = await fetch(`${gateway.base}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "writes-per-event" },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    expect(answerOf(text)).toEqual({ text: ANSWER, done: true });
    const tokens = tok.encodeWithSpecials(`<|channel|>final<|message|>${ANSWER}<|return|>`).length;
    const events = text.split("\n\n").filter(Boolean).length;
    expect(events).toBeGreaterThan(4);
    // The scripted worker sends each token in a tick of its own: at most one write per token, plus the
    // headers, the last events with [DONE] and the terminating chunk. Node's own chunked writer made four.
    expect(socketWrites.get("writes-per-event")).toBeLessThanOrEqual(tokens + 3);
  });

  it("an HTTP/1.0 client gets the stream unchunked, to the end of the connection", async () => {
    const port = Number(new URL(gateway.base).port);
    const raw = await exchange(port, request("1.0", body), () => false);
    const r = parseResponse(raw);
    expect(r?.status).toBe(200);
    expect(r?.headers["transfer-encoding"]).toBeUndefined();
    expect(answerOf(r?.body ?? "")).toEqual({ text: ANSWER, done: true });
  });
});
