/**
 * GET /v1/models and /v1/models/{model}: the models some live worker serves, in OpenAI's shape, plus
 * `devices`: where the workers serving it run ("cpu", "cuda-emu", "cuda:N"; WORKER_DEVICE), from the roster.
 */
import type { FastifyInstance } from "fastify";
import type { WorkerDirectory } from "../../domain/worker-directory.ts";
import { gatewayErrors } from "../../errors.ts";

export interface ModelObject {
  id: string;
  object: "model";
  created: number;
  owned_by: string;
  /** The distinct devices of the workers serving this model, sorted (none from workers that predate the field). */
  devices: string[];
}

export function modelsOf(directory: WorkerDirectory): ModelObject[] {
  const byId = new Map<string, { created: number; devices: Set<string> }>();
  for (const m of directory.members()) {
    const created = Math.floor(m.registeredUnixMs / 1000);
    const entry = byId.get(m.model) ?? { created, devices: new Set<string>() };
    entry.created = Math.min(entry.created, created);
    if (m.device) entry.devices.add(m.device);
    byId.set(m.model, entry);
  }
  return [...byId.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([id, { created, devices }]) => ({ id, object: "model", created, owned_by: "openai", devices: [...devices].sort() }));
}

export function registerModelRoutes(app: FastifyInstance, directory: WorkerDirectory): void {
  app.get("/v1/models", async () => ({ object: "list", data: modelsOf(directory) }));
  app.get<{ Params: { model: string } }>("/v1/models/:model", async (request) => {
    const model = modelsOf(directory).find((m) => m.id === request.params.model);
    if (!model) throw gatewayErrors.create("model_not_found", { model: request.params.model }, { param: "model" });
    return model;
  });
}
