import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { TrafficHistory } from "./traffic.ts";

/** An exposition with `ok` 200s and `bad` 400s on the chat route, `scrapes` on /metrics, and TTFTs all in (0.1, 0.25]. */
function exposition(ok: number, bad: number, scrapes: number): string {
  const req = (route: string, status: number, n: number) =>
    `expertmesh_gateway_http_request_duration_seconds_count{method="POST",route="${route}",status="${status}"} ${n}`;
  const ttft = (le: string, n: number) => `gen_ai_server_time_to_first_token_seconds_bucket{le="${le}",gen_ai_operation_name="chat"} ${n}`;
  return [
    req("/v1/chat/completions", 200, ok),
    req("/v1/chat/completions", 400, bad),
    req("/metrics", 200, scrapes),
    ttft("0.1", 0),
    ttft("0.25", ok),
    ttft("+Inf", ok),
  ].join("\n");
}

describe("the dashboard's traffic history", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("charts the differences between readings of /metrics while watched, and stops when nobody watches", async () => {
    const counts = { ok: 0, bad: 0, scrapes: 0 };
    const reads = { n: 0 };
    const traffic = new TrafficHistory({
      metrics: async () => {
        reads.n++;
        return exposition(counts.ok, counts.bad, counts.scrapes);
      },
      members: () => [],
      sampleMs: 1000,
      keepMs: 3000,
      idleMs: 5000,
      onError: (err) => {
        throw err;
      },
    });
    await traffic.watch();
    expect(traffic.points()).toEqual([]);
    counts.ok = 4;
    counts.bad = 2;
    counts.scrapes = 100;
    await vi.advanceTimersByTimeAsync(1000);
    const [p] = traffic.points();
    // Over 1 s: 6 API answers (the scrapes are not API traffic), 2 of them 400s; every TTFT in (0.1, 0.25].
    expect(p?.requestsPerS).toBe(6);
    expect(p?.errorsPerS).toEqual({ 400: 2 });
    expect(p?.ttftP50).toBeCloseTo(0.1 + 0.15 * 0.5, 9);
    expect(p?.interTokenP50).toBeNull();
    await vi.advanceTimersByTimeAsync(3000);
    // keepMs: readings older than 3 s are dropped (4 readings kept: 3 points).
    expect(traffic.points()).toHaveLength(3);
    expect(traffic.points().at(-1)?.requestsPerS).toBe(0);
    // Nobody watched for idleMs: no more readings, and the history starts afresh.
    await vi.advanceTimersByTimeAsync(5000);
    const stoppedAt = reads.n;
    await vi.advanceTimersByTimeAsync(5000);
    expect(reads.n).toBe(stoppedAt);
    expect(traffic.points()).toEqual([]);
    traffic.close();
  });
});
