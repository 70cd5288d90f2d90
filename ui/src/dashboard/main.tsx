/**
 * The dashboard (/dashboard): engine groups, the batch queue and the gateway's traffic, polled from
 * GET /dashboard/api/state (EventSource cannot send the Bearer key; polling can) every sample period.
 */
import "../style.css";
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { apiJson } from "../shared/api.ts";
import { ErrorBox, Header } from "../shared/components.tsx";
import { Chart, type Series } from "./chart.tsx";
import type { BatchView, DashboardState, GroupView, TrafficPoint } from "./state.ts";

function Group({ g }: { g: GroupView }) {
  return (
    <li class="card" data-testid="group" data-state={g.state}>
      <h3>
        {g.model} <span class={`badge ${g.state}`}>{g.state}</span>
      </h3>
      <dl>
        <dt>Group</dt>
        <dd>{g.id}</dd>
        <dt>Device</dt>
        <dd>{g.device}</dd>
        <dt>Ranks</dt>
        <dd data-testid="ranks">
          {g.ranks.length} of {g.worldSize}: {g.ranks.map((r) => `${r.rank} ${r.workerId} (${r.state})`).join(", ")}
        </dd>
        <dt>Running / waiting</dt>
        <dd>
          {g.load.running} / {g.load.waiting}
        </dd>
        <dt>KV cache</dt>
        <dd>{(g.load.kvCacheUsage * 100).toFixed(0)} %</dd>
        <dt>Tokens/s</dt>
        <dd>{g.load.tokensPerS === null ? "–" : g.load.tokensPerS.toFixed(1)}</dd>
      </dl>
    </li>
  );
}

function Batch({ b }: { b: BatchView }) {
  const done = b.completed + b.failed;
  return (
    <li class="card" data-testid="batch" data-id={b.id} data-status={b.status} data-done={String(done)} data-total={String(b.total)}>
      <h3>
        {b.id} <span class="badge">{b.status}</span>
      </h3>
      <progress max={Math.max(b.total, 1)} value={done} aria-label={`${b.id} progress`} />
      <p>
        {done} of {b.total} lines ({b.failed} failed) · {b.linesPerS === null ? "–" : b.linesPerS.toFixed(2)} lines/s
      </p>
    </li>
  );
}

const series = (points: TrafficPoint[], name: string, tone: Series["tone"], f: (p: TrafficPoint) => number | null): Series => ({
  name,
  tone,
  points: points.map((p) => [p.t, f(p)]),
});

function Traffic({ points }: { points: TrafficPoint[] }) {
  const codes = [...new Set(points.flatMap((p) => Object.keys(p.errorsPerS)))].sort();
  const tones: Series["tone"][] = ["a", "b", "c"];
  return (
    <div class="charts">
      <Chart title="Requests" unit="req/s" series={[series(points, "requests", "a", (p) => p.requestsPerS)]} />
      <Chart
        title="Time to first token"
        unit="s"
        digits={3}
        series={[series(points, "p50", "a", (p) => p.ttftP50), series(points, "p99", "b", (p) => p.ttftP99)]}
      />
      <Chart
        title="Inter-token latency"
        unit="s"
        digits={4}
        series={[series(points, "p50", "a", (p) => p.interTokenP50), series(points, "p99", "b", (p) => p.interTokenP99)]}
      />
      <Chart
        title="Errors"
        unit="/s"
        series={
          codes.length
            ? codes.map((c, i) => series(points, `HTTP ${c}`, tones[i % 3] as Series["tone"], (p) => p.errorsPerS[c] ?? 0))
            : [series(points, "errors", "c", () => 0)]
        }
      />
    </div>
  );
}

function summary(batches: BatchView[]): string {
  const by = new Map<string, number>();
  for (const b of batches) by.set(b.status, (by.get(b.status) ?? 0) + 1);
  return [...by.entries()].map(([s, n]) => `${n} ${s}`).join(" · ") || "no batches";
}

function Dashboard() {
  const [state, setState] = useState<DashboardState>();
  const [error, setError] = useState<Error>();
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let live = true;
    const poll = async () => {
      let wait = 2000;
      try {
        const s = await apiJson<DashboardState>("/dashboard/api/state");
        setState(s);
        setError(undefined);
        wait = s.sampleMs;
      } catch (e) {
        setError(e as Error);
      }
      if (live) timer = setTimeout(poll, wait);
    };
    poll();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [tick]);
  return (
    <>
      <Header title="ExpertMesh dashboard" other={{ href: "/", label: "Playground" }} onKey={() => setTick((t) => t + 1)} />
      <main class="dashboard">
        {error ? <ErrorBox error={error} /> : null}
        <section aria-labelledby="groups-title">
          <h2 id="groups-title">Engine groups</h2>
          {state && !state.discoveryHealthy ? <p class="warn">The orchestrator is not answering: the last roster is shown.</p> : null}
          <ul class="cards">
            {state?.groups.map((g) => (
              <Group key={g.id} g={g} />
            ))}
          </ul>
          {state && state.groups.length === 0 ? <p>No engine group yet.</p> : null}
        </section>
        <section aria-labelledby="batches-title">
          <h2 id="batches-title">Batch queue</h2>
          {state?.batches ? (
            <>
              <p data-testid="batch-summary">{summary(state.batches)}</p>
              <ul class="cards">
                {state.batches.map((b) => (
                  <Batch key={b.id} b={b} />
                ))}
              </ul>
            </>
          ) : (
            <p>Batches need Redis (REDIS_URL): not configured.</p>
          )}
        </section>
        <section aria-labelledby="traffic-title">
          <h2 id="traffic-title">Gateway traffic</h2>
          <Traffic points={state?.traffic ?? []} />
        </section>
      </main>
    </>
  );
}

render(<Dashboard />, document.getElementById("app") as HTMLElement);
