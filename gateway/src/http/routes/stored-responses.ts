/**
 * Stored responses, read and deleted: GET and DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items
 * (OpenAI's list envelope; limit, order, after). Only the tenant that created a response sees it; for any
 * other the id is unknown, with the same 404 as an id that never existed (R22). Creating responses is
 * routes/responses.ts; a background response is polled here and cancelled in background-responses.ts.
 */
import type { FastifyInstance } from "fastify";
import { itemPage } from "../../domain/responses/input-items.ts";
import type { ResponseStore, StoredResponse } from "../../domain/responses/store.ts";
import { gatewayErrors } from "../../errors.ts";
import { tenantOf } from "../tenant.ts";
import { listPage } from "./files.ts";

type ById = { Params: { id: string } };

const itemsQuery = {
  type: "object",
  properties: {
    limit: { type: "integer", minimum: 1, maximum: 100, default: 20 },
    order: { enum: ["asc", "desc"], default: "desc" },
    after: { type: "string" },
    // Accepted for compatibility; input items carry nothing `include` could add.
    include: { type: "array", items: { type: "string" } },
  },
} as const;

export function registerStoredResponses(app: FastifyInstance, store: ResponseStore): void {
  const find = async (id: string, tenant: string): Promise<StoredResponse> => {
    const stored = await store.get(id, tenant);
    if (!stored) throw gatewayErrors.create("response_not_found", { id });
    return stored;
  };

  app.get<ById>("/v1/responses/:id", async (request) => (await find(request.params.id, tenantOf(request))).response);

  app.delete<ById>("/v1/responses/:id", async (request) => {
    if (!(await store.delete(request.params.id, tenantOf(request))))
      throw gatewayErrors.create("response_not_found", { id: request.params.id });
    return { id: request.params.id, object: "response", deleted: true };
  });

  app.get<ById & { Querystring: { limit: number; order: "asc" | "desc"; after?: string } }>(
    "/v1/responses/:id/input_items",
    { schema: { querystring: itemsQuery } },
    async (request) => {
      const stored = await find(request.params.id, tenantOf(request));
      const page = itemPage(stored.input_items ?? [], request.query);
      if (!page)
        throw gatewayErrors.create(
          "invalid_request_error",
          { detail: `No input item with id '${request.query.after}' in response '${request.params.id}'.` },
          { param: "after" },
        );
      return listPage(page);
    },
  );
}
