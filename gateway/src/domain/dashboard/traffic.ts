/**
 * The gateway's traffic over the last minutes, for the dashboard's charts: readings of the same Prometheus
 * exposition GET /metrics answers (prom-text.ts), taken every sampleMs while someone watches (a dashboard
 * read in the last idleMs) and kept for keepMs. Each point is the difference between two readings: API
 * requests/s, errors/s by HTTP status, TTFT and inter-token latency p50/p99 (the GenAI histograms).
 * The groups' generated tokens are read from the roster at the same instants, for their tokens/s.
 */
import type { Member } from "@expertmesh/proto/cluster";
import type { TrafficPoint } from "@expertmesh/ui/dashboard-state";
import { groupTokens } from "./groups.ts";
import { bucketsOf, parsePromText, quantileBetween, type Sample } from "./prom-text.ts";

export interface TrafficOptions {
  /** The exposition text, as GET /metrics answers it. */
  metrics: () => Promise<string>;
  members: () => readonly Member[];
  sampleMs: number;
  keepMs: number;
  idleMs: number;
  onError: (err: unknown) => void;
}

interface Reading {
  t: number;
  /** Answers of API routes (/v1/…) by status, since the start. */
  requests: Map<string, number>;
  ttft: Map<number, number>;
  interToken: Map<number, number>;
  tokens: Map<string, number>;
}

const REQUESTS = "expertmesh_gateway_http_request_duration_seconds_count";
const TTFT = "gen_ai_server_time_to_first_token_seconds";
const INTER_TOKEN = "gen_ai_server_time_per_output_token_seconds";

function apiRequests(samples: readonly Sample[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of samples) {
    const status = s.labels.status;
    if (s.name !== REQUESTS || !status || !s.labels.route?.startsWith("/v1/")) continue;
    out.set(status, (out.get(status) ?? 0) + s.value);
  }
  return out;
}

function pointBetween(a: Reading, b: Reading): TrafficPoint {
  const seconds = Math.max((b.t - a.t) / 1000, 1e-3);
  let requests = 0;
  const errorsPerS: Record<string, number> = {};
  for (const [status, n] of b.requests) {
    const d = Math.max(0, n - (a.requests.get(status) ?? 0));
    requests += d;
    if (Number(status) >= 400 && d > 0) errorsPerS[status] = d / seconds;
  }
  return {
    t: b.t,
    requestsPerS: requests / seconds,
    errorsPerS,
    ttftP50: quantileBetween(a.ttft, b.ttft, 0.5),
    ttftP99: quantileBetween(a.ttft, b.ttft, 0.99),
    interTokenP50: quantileBetween(a.interToken, b.interToken, 0.5),
    interTokenP99: quantileBetween(a.interToken, b.interToken, 0.99),
  };
}

export class TrafficHistory {
  readonly #o: TrafficOptions;
  #readings: Reading[] = [];
  #lastWatch = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(o: TrafficOptions) {
    this.#o = o;
  }

  /** A dashboard is reading: sampling starts (with a first reading now) or goes on. */
  async watch(): Promise<void> {
    this.#lastWatch = Date.now();
    if (this.#timer || this.#closed) return;
    this.#schedule();
    await this.#read();
  }

  points(): TrafficPoint[] {
    return this.#readings.slice(1).map((b, i) => pointBetween(this.#readings[i] as Reading, b));
  }

  /** A group's generated tokens per second between the last two readings; null before two readings. */
  tokensPerS(group: string): number | null {
    const [a, b] = this.#readings.slice(-2);
    const before = a?.tokens.get(group);
    const after = b?.tokens.get(group);
    if (!a || !b || before === undefined || after === undefined) return null;
    return Math.max(0, after - before) / Math.max((b.t - a.t) / 1000, 1e-3);
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  #schedule(): void {
    this.#timer = setTimeout(async () => {
      // Nobody watched for idleMs: stop, and start afresh next time (a gap would chart as a flat line).
      if (Date.now() - this.#lastWatch > this.#o.idleMs) {
        this.#timer = undefined;
        this.#readings = [];
        return;
      }
      await this.#read();
      if (!this.#closed) this.#schedule();
    }, this.#o.sampleMs);
    this.#timer.unref();
  }

  async #read(): Promise<void> {
    try {
      const t = Date.now();
      const samples = parsePromText(await this.#o.metrics());
      this.#readings.push({
        t,
        requests: apiRequests(samples),
        ttft: bucketsOf(samples, TTFT),
        interToken: bucketsOf(samples, INTER_TOKEN),
        tokens: groupTokens(this.#o.members()),
      });
      const oldest = t - this.#o.keepMs;
      while ((this.#readings[0]?.t ?? t) < oldest) this.#readings.shift();
    } catch (err) {
      this.#o.onError(err);
    }
  }
}
