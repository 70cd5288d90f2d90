/**
 * Prometheus metrics (prom-client). One registry per process with process/runtime defaults; metric
 * names follow vLLM's where one exists (see shared reliability conventions).
 */
import { createServer, type Server } from "node:http";
import { collectDefaultMetrics, Registry } from "prom-client";

export function createMetricsRegistry(service: string, labels: Record<string, string> = {}): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service, ...labels });
  collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * AggregatorRegistry: node:cluster services (the gateway with http.processes > 1) sum their children's
 * registries in the primary (clusterMetrics), each child answering the primary's IPC request.
 */
export { AggregatorRegistry, Counter, Gauge, Histogram, type Registry } from "prom-client";

/** A tiny HTTP listener for Prometheus scrapes (GET /metrics), for services with no other HTTP surface. */
export async function startMetricsServer(registry: Registry, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method === "GET" && req.url === "/metrics") {
      registry.metrics().then(
        (body) => res.writeHead(200, { "content-type": registry.contentType }).end(body),
        (err: Error) => res.writeHead(500).end(err.message),
      );
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, resolve);
  });
  return server;
}
