/** A small line chart (inline SVG) of a few series over time; its label says the latest values. */

export interface Series {
  name: string;
  /** [unix ms, value]; null: nothing was observed in that interval. */
  points: Array<[number, number | null]>;
  /** A class naming its colour in style.css. */
  tone: "a" | "b" | "c";
}

const W = 320;
const H = 120;

/** Intervals without an observation (no request in them) are skipped: the line joins the ones around them. */
function path(points: Array<[number, number | null]>, x: (t: number) => number, y: (v: number) => number): string {
  return points
    .filter((p): p is [number, number] => p[1] !== null)
    .map(([t, v], i) => `${i === 0 ? "M" : "L"}${x(t).toFixed(1)},${y(v).toFixed(1)}`)
    .join("");
}

export function Chart({ title, unit, series, digits = 2 }: { title: string; unit: string; series: Series[]; digits?: number }) {
  const all = series.flatMap((s) => s.points);
  const ts = all.map(([t]) => t);
  const values = all.map(([, v]) => v).filter((v): v is number => v !== null);
  const t0 = Math.min(...ts);
  const t1 = Math.max(...ts);
  const top = Math.max(...values, 1e-9) * 1.1;
  const x = (t: number) => (t1 > t0 ? ((t - t0) / (t1 - t0)) * W : W);
  const y = (v: number) => H - (v / top) * H;
  const latest = series.map((s) => {
    const v = [...s.points].reverse().find(([, p]) => p !== null)?.[1];
    return `${s.name} ${v === undefined || v === null ? "none" : `${v.toFixed(digits)} ${unit}`}`;
  });
  const label = `${title}: ${latest.join(", ")}`;
  return (
    <figure
      class="chart"
      data-testid={`chart-${title}`}
      data-points={String(series[0]?.points.length ?? 0)}
      data-peak={String(values.length ? Math.max(...values) : 0)}
    >
      <figcaption>
        {title}:{" "}
        {series.map((s, i) => (
          <span key={s.name} class={`key ${s.tone}`}>
            {latest[i]}
          </span>
        ))}
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={label} preserveAspectRatio="none">
        <line x1="0" y1={H} x2={W} y2={H} class="axis" />
        {series.map((s) => (
          <path key={s.name} d={path(s.points, x, y)} class={`line ${s.tone}`} />
        ))}
      </svg>
      <p class="scale">
        max {top.toFixed(digits)} {unit} · {all.length ? `${Math.round((t1 - t0) / 1000)} s` : "no data yet"}
      </p>
    </figure>
  );
}
