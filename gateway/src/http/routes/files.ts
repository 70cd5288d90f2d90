/**
 * The Files API for batch input and output: POST /v1/files (multipart, purpose=batch; the JSONL is
 * validated line by line at upload), GET /v1/files, GET /v1/files/{id}, GET /v1/files/{id}/content,
 * DELETE /v1/files/{id}. Every object belongs to the tenant that created it (http/tenant.ts); another gets 404.
 */
import type { BatchService, FilePurpose } from "@expertmesh/orchestrator/batches";
import { batchErrors } from "@expertmesh/orchestrator/batches";
import multipart from "@fastify/multipart";
import type { FastifyInstance } from "fastify";
import { gatewayErrors } from "../../errors.ts";
import { tenantOf } from "../tenant.ts";

export interface FileRoutesOptions {
  service: BatchService;
  /** Largest accepted upload. */
  maxFileBytes: number;
}

/** OpenAI's list envelope around one page of objects with ids (files, batches). */
export function listPage<T extends { id: string }>(page: { data: T[]; has_more: boolean }) {
  return {
    object: "list" as const,
    data: page.data,
    first_id: page.data[0]?.id ?? null,
    last_id: page.data.at(-1)?.id ?? null,
    has_more: page.has_more,
  };
}

const idParams = { type: "object", required: ["id"], properties: { id: { type: "string", minLength: 1, maxLength: 128 } } };

export function registerFileRoutes(app: FastifyInstance, o: FileRoutesOptions): void {
  app.register(async (scope) => {
    await scope.register(multipart, { limits: { fileSize: o.maxFileBytes, files: 1, fields: 8 } });

    scope.post("/v1/files", async (request, reply) => {
      if (!request.isMultipart())
        throw gatewayErrors.create("invalid_request_error", { detail: "POST /v1/files takes multipart/form-data (file, purpose)" });
      let purpose: string | undefined;
      let file: { name: string; content: Buffer } | undefined;
      try {
        for await (const part of request.parts()) {
          if (part.type === "file") file = { name: part.filename || "upload.jsonl", content: await part.toBuffer() };
          else if (part.fieldname === "purpose") purpose = String(part.value);
        }
      } catch (err) {
        if ((err as { code?: string }).code === "FST_REQ_FILE_TOO_LARGE")
          throw batchErrors.create("file_too_large", { limit: o.maxFileBytes });
        throw err;
      }
      if (!file) throw gatewayErrors.create("invalid_request_error", { detail: "Missing required parameter: 'file'." }, { param: "file" });
      if (!purpose)
        throw gatewayErrors.create("invalid_request_error", { detail: "Missing required parameter: 'purpose'." }, { param: "purpose" });
      return reply.send(await o.service.createFile(tenantOf(request), file.name, purpose, file.content));
    });

    scope.get(
      "/v1/files",
      {
        schema: {
          querystring: {
            type: "object",
            properties: {
              purpose: { enum: ["batch", "batch_output"] },
              limit: { type: "integer", minimum: 1, maximum: 10_000, default: 10_000 },
              after: { type: "string" },
              order: { enum: ["asc", "desc"], default: "desc" },
            },
          },
        },
      },
      async (request) => {
        const q = request.query as { purpose?: FilePurpose; limit: number; after?: string; order: "asc" | "desc" };
        const page = await o.service.listFiles(tenantOf(request), q);
        return listPage(page);
      },
    );

    scope.get("/v1/files/:id", { schema: { params: idParams } }, async (request) =>
      o.service.getFile(tenantOf(request), (request.params as { id: string }).id),
    );

    scope.get("/v1/files/:id/content", { schema: { params: idParams } }, async (request, reply) => {
      const content = await o.service.fileContent(tenantOf(request), (request.params as { id: string }).id);
      return reply.type("application/octet-stream").send(content);
    });

    scope.delete("/v1/files/:id", { schema: { params: idParams } }, async (request) =>
      o.service.deleteFile(tenantOf(request), (request.params as { id: string }).id),
    );
  });
}
