/**
 * Reads the Prometheus text exposition the gateway's GET /metrics answers, so that the dashboard charts
 * the very numbers a scrape sees (one source of truth, also across the processes of a multi-process
 * gateway, whose /metrics is every child's registry summed). Only samples are read: comments and types
 * are not needed to chart counters and histogram buckets.
 */

export interface Sample {
  name: string;
  labels: Readonly<Record<string, string>>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parsePromText(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = LINE.exec(line);
    if (!m?.[1] || m[3] === undefined) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(LABEL))
      labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

/** Cumulative bucket counts by upper bound (`le`), summed over every other label. */
export function bucketsOf(samples: readonly Sample[], histogram: string): Map<number, number> {
  const out = new Map<number, number>();
  const name = `${histogram}_bucket`;
  for (const s of samples) {
    if (s.name !== name || s.labels.le === undefined) continue;
    const le = s.labels.le === "+Inf" ? Number.POSITIVE_INFINITY : Number(s.labels.le);
    out.set(le, (out.get(le) ?? 0) + s.value);
  }
  return out;
}

/**
 * The q-quantile of the observations made between two readings of a histogram's cumulative buckets,
 * interpolated linearly inside the bucket as PromQL's histogram_quantile does; null when none was made.
 */
export function quantileBetween(before: ReadonlyMap<number, number>, after: ReadonlyMap<number, number>, q: number): number | null {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const delta = bounds.map((le) => Math.max(0, (after.get(le) ?? 0) - (before.get(le) ?? 0)));
  const total = delta.at(-1) ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [i, le] of bounds.entries()) {
    const cum = delta[i] as number;
    if (cum >= rank) {
      if (le === Number.POSITIVE_INFINITY) return lower;
      return cum === below ? le : lower + ((le - lower) * (rank - below)) / (cum - below);
    }
    lower = le;
    below = cum;
  }
  return lower;
}
