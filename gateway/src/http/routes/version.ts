/**
 * GET /version: what is running — the gateway package's version, the git commit the image was built from
 * (EXPERTMESH_GIT_COMMIT, set by the Dockerfile's GIT_COMMIT build argument; null when unknown) and the
 * models the cluster serves now (the roster, as /v1/models lists them). vLLM answers {version} here; the
 * extra fields are ours.
 */
import { readFileSync } from "node:fs";
import type { FastifyInstance } from "fastify";
import type { WorkerDirectory } from "../../domain/worker-directory.ts";
import { modelsOf } from "./models.ts";

/** Read once: the version cannot change while the process runs. */
const VERSION = (JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }).version;

export function registerVersionRoute(app: FastifyInstance, directory: WorkerDirectory, commit: string): void {
  app.get("/version", async () => ({
    version: VERSION,
    commit: commit || null,
    models: modelsOf(directory).map((m) => m.id),
  }));
}
