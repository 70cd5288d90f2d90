/**
 * Prometheus metrics (prom-client). One registry per process with process/runtime defaults; metric
 * names follow vLLM's where one exists (see shared reliability conventions).
 */
import { collectDefaultMetrics, Registry } from "prom-client";

export function createMetricsRegistry(service: string, labels: Record<string, string> = {}): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service, ...labels });
  collectDefaultMetrics({ register: registry });
  return registry;
}

export { Counter, Gauge, Histogram, type Registry } from "prom-client";
