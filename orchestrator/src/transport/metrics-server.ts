/** A tiny HTTP listener for Prometheus scrapes (GET /metrics): the orchestrator has no other HTTP surface. */
import { createServer, type Server } from "node:http";
import type { Registry } from "@expertmesh/common";

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
