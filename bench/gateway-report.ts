/**
 * bench/gateway's output: the results table and its details, the CPU time of a path's middle process
 * (read from /proc), and the --probe summary. It measures nothing itself.
 */
import { readdirSync, readFileSync } from "node:fs";

export interface Samples {
  ttft: number[];
  gaps: number[];
  streams: number;
  /** Answer tokens received over the whole run, warm-up included. */
  tokens?: number;
  /** The load client's CPU time (µs) over the measured part of the run, and the answer tokens it timed there. */
  clientCpuUs?: number;
  clientTokens?: number;
  /** Parent: the gateway's CPU time (µs) and the machine's CPU ticks by /proc/stat state over the run. */
  gatewayCpu?: { user: number; system: number };
  boxTicks?: number[];
  /** --probe: gaps longer than 1.8 intervals, as [wall-clock ms at their end, length ms]. */
  longGaps?: [number, number][];
}

/**
 * --probe: how many of the gateway path's long gaps overlap a gateway event-loop stall (and how many of
 * those the thread spent descheduled) or a GC pause.
 */
export function probeSummary(probeFile: string, longGaps: [number, number][]): string {
  const records = readFileSync(probeFile, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { probe: "gc" | "stall"; at: number; ms: number; cpuMs?: number });
  const overlaps = (end: number, len: number, r: { at: number; ms: number }) => r.at < end && r.at + r.ms > end - len;
  let stalled = 0;
  let descheduled = 0;
  let gc = 0;
  for (const [end, len] of longGaps) {
    const stalls = records.filter((r) => r.probe === "stall" && overlaps(end, len, r));
    if (stalls.length) stalled++;
    if (stalls.some((r) => (r.cpuMs ?? 0) < r.ms / 2)) descheduled++;
    if (records.some((r) => r.probe === "gc" && overlaps(end, len, r))) gc++;
  }
  const share = (k: number) => `${k} (${((100 * k) / Math.max(1, longGaps.length)).toFixed(0)} %)`;
  const stallCount = records.filter((r) => r.probe === "stall").length;
  const gcs = records.filter((r) => r.probe === "gc");
  return (
    `probe: ${longGaps.length} gaps over 1.8 intervals on the gateway path; overlapping a gateway event-loop stall ${share(stalled)}, ` +
    `a stall with the thread descheduled ${share(descheduled)}, a GC pause ${share(gc)}; ` +
    `${stallCount} stalls and ${gcs.length} GC pauses (longest ${Math.max(0, ...gcs.map((g) => g.ms)).toFixed(1)} ms) over the whole run`
  );
}

/** The machine's CPU time so far, by state (the first line of /proc/stat: user nice system idle iowait irq softirq steal). */
export function machineTicks(): number[] {
  return (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "").trim().split(/\s+/).slice(1, 9).map(Number);
}

/**
 * CPU time of a process and its child processes so far, in µs (Linux /proc; clock ticks of 10 ms): a
 * multi-process gateway's primary and its children (a child that exited is counted by no one: none do in
 * a bench run).
 */
export function cpuTicks(pid: number): { user: number; system: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  const tick = 1e6 / 100;
  const own = { user: Number(fields[11]) * tick, system: Number(fields[12]) * tick };
  for (const child of childPids(pid)) {
    const c = cpuTicks(child);
    own.user += c.user;
    own.system += c.system;
  }
  return own;
}

function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    const text = readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim();
    if (text) out.push(...text.split(" ").map(Number));
  }
  return out;
}

/** The results: one table (each path, then what the relay and the gateway add to the direct path), then details. */
/** One gateway measured: 1 process ("the gateway") or several ("the gateway, 2 processes"). */
export interface GatewayRun {
  processes: number;
  samples: Samples;
}

const gatewayName = (r: GatewayRun) => (r.processes === 1 ? "the gateway" : `the gateway, ${r.processes} processes`);

/**
 * The results: one table (each path, then what the relay and the gateways add to the direct path), then
 * details; with several gateways (--processes), their requests per second and its ratio to one process's.
 */
export function printResults(setup: string, d: Samples, m: Samples | null, gateways: GatewayRun[], seconds: number): void {
  const row = (name: string, s: Samples) =>
    `| ${name} | ${s.streams} | ${pct(s.ttft, 0.5).toFixed(2)} | ${pct(s.ttft, 0.99).toFixed(2)} | ${pct(s.gaps, 0.5).toFixed(2)} | ${pct(s.gaps, 0.99).toFixed(2)} |`;
  const added = (name: string, s: Samples) =>
    `| added by ${name} | | ${(pct(s.ttft, 0.5) - pct(d.ttft, 0.5)).toFixed(2)} | ${(pct(s.ttft, 0.99) - pct(d.ttft, 0.99)).toFixed(2)} | ` +
    `${(pct(s.gaps, 0.5) - pct(d.gaps, 0.5)).toFixed(2)} | ${(pct(s.gaps, 0.99) - pct(d.gaps, 0.99)).toFixed(2)} |`;
  const paths: [string, Samples][] = [
    ["direct", d],
    ...(m ? [["the minimal relay", m] as [string, Samples]] : []),
    ...gateways.map((r) => [gatewayName(r), r.samples] as [string, Samples]),
  ];
  const lines = [
    `bench/gateway — ${setup}, ${new Date().toISOString()}`,
    "| path | streams done | TTFT p50 ms | TTFT p99 ms | inter-token p50 ms | inter-token p99 ms |",
    "|---|---|---|---|---|---|",
    row("direct gRPC (baseline)", d),
    ...(m ? [row("through the minimal relay (floor)", m)] : []),
    ...gateways.map((r) => row(`through ${gatewayName(r)}`, r.samples)),
    ...(m ? [added("the minimal relay", m)] : []),
    ...gateways.map((r) => added(gatewayName(r), r.samples)),
  ];
  const cpu = (name: string, s: Samples) => {
    const c = s.gatewayCpu;
    if (!c || !s.tokens) return null;
    const t = s.tokens;
    return `${name} CPU per streamed token (request handling included): ${((c.user + c.system) / t).toFixed(1)} µs (user ${(c.user / t).toFixed(1)}, system ${(c.system / t).toFixed(1)}) over ${t} tokens`;
  };
  if (m) lines.push(cpu("minimal relay", m) ?? "");
  for (const r of gateways) {
    lines.push(cpu(r.processes === 1 ? "gateway" : `gateway (${r.processes} processes, all together)`, r.samples) ?? "");
    const per = (s: Samples) => ((s.gatewayCpu?.user ?? 0) + (s.gatewayCpu?.system ?? 0)) / (s.tokens || 1);
    if (m?.tokens) lines.push(`${gatewayName(r)} CPU per token / the minimal relay's: ${(per(r.samples) / per(m)).toFixed(2)}×`);
  }
  lines.push(...throughput(gateways, seconds));
  const tail = (xs: number[]) => [0.9, 0.95, 0.98, 0.99, 0.995, 0.999].map((q) => pct(xs, q).toFixed(2)).join(" / ");
  lines.push(`inter-token p90 / p95 / p98 / p99 / p99.5 / p99.9 ms: ${paths.map(([n, s]) => `${n} ${tail(s.gaps)}`).join("; ")}`);
  // Of the machine's CPU time over a path's runs, the share in the given /proc/stat states (NaN: not run).
  const share = (s: Samples, ...states: number[]) => {
    const t = s.boxTicks ?? [];
    const total = t.reduce((a, v) => a + v, 0);
    return (100 * states.reduce((a, k) => a + (t[k] ?? 0), 0)) / total;
  };
  // busy: user+nice+system+irq+softirq; stolen: by the hypervisor.
  const box = (s: Samples) =>
    s.boxTicks?.length ? `${share(s, 0, 1, 2, 5, 6).toFixed(0)} % busy, ${share(s, 7).toFixed(1)} % stolen` : "-";
  lines.push(`machine CPU over the run: ${paths.map(([n, s]) => `${n} ${box(s)}`).join("; ")}`);
  const worst = Math.max(0, ...paths.filter(([, s]) => s.boxTicks?.length).map(([, s]) => share(s, 7)));
  if (worst > 5)
    lines.push(
      `note: a path lost ${worst.toFixed(1)} % of the machine's CPU time to the hypervisor (steal); on a VM that throttles, ` +
        "the tails then measure the VM as much as the path (docs/PERFORMANCE.md, runs 5 and 6)",
    );
  const perToken = (s: Samples) => (s.clientTokens ? `${((s.clientCpuUs ?? 0) / s.clientTokens).toFixed(1)} µs` : "-");
  lines.push(`load client CPU per timed token (measured part): ${paths.map(([n, s]) => `${n} ${perToken(s)}`).join(", ")}`);
  process.stdout.write(`${lines.filter(Boolean).join("\n")}\n`);
}

/** Requests (streams completed in the measured part) per second of each gateway, and each against one process's. */
function throughput(gateways: GatewayRun[], seconds: number): string[] {
  const rps = (r: GatewayRun) => r.samples.streams / seconds;
  const one = gateways.find((r) => r.processes === 1);
  return gateways.map(
    (r) =>
      `requests/s through ${gatewayName(r)}: ${rps(r).toFixed(1)}` +
      (one && r !== one ? ` (${(rps(r) / rps(one)).toFixed(2)}× one process's ${rps(one).toFixed(1)})` : ""),
  );
}

export const pct = (xs: number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))] ?? Number.NaN;
