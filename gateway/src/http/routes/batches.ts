/**
 * The Batches API: POST /v1/batches, GET /v1/batches, GET /v1/batches/{id}, POST /v1/batches/{id}/cancel.
 * The batch runners (orchestrator) execute the lines; this route only records and reads batches. Another
 * tenant's batch (http/tenant.ts) is 404. A traceparent on POST /v1/batches is carried through the jobs to the workers.
 */
import type { BatchService } from "@expertmesh/orchestrator/batches";
import { context, propagation, ROOT_CONTEXT } from "@opentelemetry/api";
import type { FastifyInstance } from "fastify";
import { tenantOf } from "../tenant.ts";
import { listPage } from "./files.ts";

const idParams = { type: "object", required: ["id"], properties: { id: { type: "string", minLength: 1, maxLength: 128 } } };

export function registerBatchRoutes(app: FastifyInstance, service: BatchService): void {
  app.post(
    "/v1/batches",
    {
      schema: {
        body: {
          type: "object",
          required: ["input_file_id", "endpoint", "completion_window"],
          properties: {
            input_file_id: { type: "string", minLength: 1, maxLength: 128 },
            endpoint: { type: "string" },
            completion_window: { type: "string" },
            metadata: { type: ["object", "null"], additionalProperties: { type: "string", maxLength: 512 } },
          },
        },
      },
    },
    async (request) => {
      const b = request.body as {
        input_file_id: string;
        endpoint: string;
        completion_window: string;
        metadata?: Record<string, string> | null;
      };
      // The caller's trace goes into the batch's jobs (bullmq-otel) and on to every line's generation (R21).
      const trace = propagation.extract(ROOT_CONTEXT, request.headers);
      return context.with(trace, () => service.createBatch(tenantOf(request), b));
    },
  );

  app.get(
    "/v1/batches",
    {
      schema: {
        querystring: {
          type: "object",
          properties: { limit: { type: "integer", minimum: 1, maximum: 100, default: 20 }, after: { type: "string" } },
        },
      },
    },
    async (request) => {
      const q = request.query as { limit: number; after?: string };
      const page = await service.listBatches(tenantOf(request), q);
      return listPage(page);
    },
  );

  app.get("/v1/batches/:id", { schema: { params: idParams } }, async (request) =>
    service.getBatch(tenantOf(request), (request.params as { id: string }).id),
  );

  app.post("/v1/batches/:id/cancel", { schema: { params: idParams } }, async (request) =>
    service.cancelBatch(tenantOf(request), (request.params as { id: string }).id),
  );
}
