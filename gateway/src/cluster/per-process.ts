/**
 * What one of N gateway processes (http.processes) enforces on its own. Admission, parking, the render
 * threads and the batch gate live in each process's memory, and node:cluster spreads connections (not
 * requests) round-robin, so each process gets its share of every such limit: ceil(limit / N), which
 * keeps a limit of 1 at 1 and never turns a positive limit into 0. The sum over the processes may exceed
 * the configured limit by at most N − 1. Rate limits and stored responses are not divided: they are
 * shared, through Redis or through the primary process (cluster/primary.ts).
 */
import type { GatewayConfig } from "../config.ts";

const share = (limit: number, n: number) => Math.ceil(limit / n);

/** The config a child of `config.http.processes` processes runs with (the config itself when 1). */
export function perProcessConfig(config: GatewayConfig): GatewayConfig {
  const n = config.http.processes;
  if (n <= 1) return config;
  return {
    ...config,
    admission: {
      ...config.admission,
      max_concurrent: share(config.admission.max_concurrent, n),
      max_queued: share(config.admission.max_queued, n),
    },
    parking: { ...config.parking, max_parked: share(config.parking.max_parked, n) },
    render_threads: share(config.render_threads, n),
    render_max_queued: share(config.render_max_queued, n),
    batches: { ...config.batches, max_inflight_while_online: share(config.batches.max_inflight_while_online, n) },
  };
}
