/** GET /v1/models and /v1/models/{model}: the models some live worker serves, in OpenAI's shape. */
import type { FastifyInstance } from "fastify";
import type { WorkerDirectory } from "../../domain/worker-directory.ts";
import { gatewayErrors } from "../../errors.ts";

interface ModelObject {
  id: string;
  object: "model";
  created: number;
  owned_by: string;
}

function modelsOf(directory: WorkerDirectory): ModelObject[] {
  const byId = new Map<string, number>();
  for (const m of directory.members()) {
    const created = Math.floor(m.registeredUnixMs / 1000);
    byId.set(m.model, Math.min(byId.get(m.model) ?? created, created));
  }
  return [...byId.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([id, created]) => ({ id, object: "model", created, owned_by: "openai" }));
}

export function registerModelRoutes(app: FastifyInstance, directory: WorkerDirectory): void {
  app.get("/v1/models", async () => ({ object: "list", data: modelsOf(directory) }));
  app.get<{ Params: { model: string } }>("/v1/models/:model", async (request) => {
    const model = modelsOf(directory).find((m) => m.id === request.params.model);
    if (!model) throw gatewayErrors.create("model_not_found", { model: request.params.model }, { param: "model" });
    return model;
  });
}
