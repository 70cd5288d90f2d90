/**
 * The port a batch runner sends one line through, and its adapter: an HTTP POST to a gateway, which
 * runs the line exactly as an online request (same validation, Harmony rendering and response body) at
 * batch priority, authenticated with the batch's own credential. The runner never renders prompts.
 */
import { context, propagation } from "@opentelemetry/api";

export interface LineRequest {
  url: string;
  body: Record<string, unknown>;
  /** Sent as x-request-id (the output line's response.request_id). */
  requestId: string;
  /** The batch's bearer credential. */
  credential: string;
}

export interface LineAnswer {
  status: number;
  requestId: string;
  body: unknown;
  /** When the answer says to come back (retry-after-ms, else retry-after in seconds); absent when it does not. */
  retryAfterMs?: number;
}

/** The wait an answer's headers ask for, in ms; undefined when they ask none (or nothing readable). */
export function retryAfterMs(headers: Headers): number | undefined {
  const ms = Number(headers.get("retry-after-ms") ?? Number.NaN);
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const seconds = Number(headers.get("retry-after") ?? Number.NaN);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined;
}

/** Resolves with any HTTP answer (2xx or not); rejects only when none came (network, abort, timeout). */
export interface LineExecutor {
  execute(line: LineRequest, signal: AbortSignal): Promise<LineAnswer>;
}

export class HttpLineExecutor implements LineExecutor {
  readonly #base: string;

  constructor(gatewayUrl: string) {
    this.#base = gatewayUrl.replace(/\/+$/, "");
  }

  async execute(line: LineRequest, signal: AbortSignal): Promise<LineAnswer> {
    const headers: Record<string, string> = {
      authorization: `Bearer ${line.credential}`,
      "content-type": "application/json",
      "x-request-id": line.requestId,
    };
    // The job's trace (carried through BullMQ by bullmq-otel) continues at the gateway and the worker.
    propagation.inject(context.active(), headers);
    const res = await fetch(`${this.#base}${line.url}`, {
      method: "POST",
      headers,
      body: JSON.stringify({ ...line.body, stream: false }),
      signal,
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: keep the text (a proxy's error page, say)
    }
    const wait = retryAfterMs(res.headers);
    return {
      status: res.status,
      requestId: res.headers.get("x-request-id") ?? line.requestId,
      body,
      ...(wait === undefined ? {} : { retryAfterMs: wait }),
    };
  }
}
