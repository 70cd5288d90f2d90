/**
 * Loaded into the gateway by `bench/gateway.ts --probe` (node --import): records when the gateway's
 * event loop stalls (a 1 ms timer firing more than 4 ms late) with the thread's CPU time over the stall
 * (CPU well under the stall's length: the thread was descheduled, not busy), and every GC pause. One
 * JSON line per record, appended to BENCH_PROBE_FILE; times are wall-clock ms (performance.timeOrigin
 * based), comparable across the bench's processes.
 */
import { appendFileSync } from "node:fs";
import { PerformanceObserver } from "node:perf_hooks";

const file = process.env.BENCH_PROBE_FILE;
if (file) {
  const lines: string[] = [];
  const flush = () => {
    if (lines.length) appendFileSync(file, lines.splice(0).join(""));
  };
  const record = (r: object) => lines.push(`${JSON.stringify(r)}\n`);
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) record({ probe: "gc", at: performance.timeOrigin + e.startTime, ms: e.duration });
  }).observe({ entryTypes: ["gc"] });
  const cpuMs = () => {
    const c = process.threadCpuUsage();
    return (c.user + c.system) / 1000;
  };
  let last = performance.now();
  let lastCpu = cpuMs();
  setInterval(() => {
    const now = performance.now();
    const cpu = cpuMs();
    if (now - last > 4) record({ probe: "stall", at: performance.timeOrigin + last, ms: now - last, cpuMs: cpu - lastCpu });
    last = now;
    lastCpu = cpu;
  }, 1).unref();
  setInterval(flush, 500).unref();
  process.once("exit", flush);
}
