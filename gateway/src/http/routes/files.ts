/**
 * The Files API for batch input and output: POST /v1/files (multipart, purpose=batch; the JSONL is
 * streamed to storage and validated line by line as it arrives, never held whole; the first problem
 * ends the upload), GET /v1/files, GET /v1/files/{id}, GET /v1/files/{id}/content,
 * DELETE /v1/files/{id}. Every object belongs to the tenant that created it (http/tenant.ts); another gets 404.
 */
import type { Readable } from "node:stream";
import type { BatchService, FilePurpose, Upload } from "@expertmesh/orchestrator/batches";
import { batchErrors, checkPurpose } from "@expertmesh/orchestrator/batches";
import multipart from "@fastify/multipart";
import type { FastifyInstance } from "fastify";
import { gatewayErrors } from "../../errors.ts";
import { tenantOf } from "../tenant.ts";
import { closeAfterReply } from "../unread-body.ts";

export interface FileRoutesOptions {
  service: BatchService;
  /** Largest accepted upload. */
  maxFileBytes: number;
  /** Longest line of an upload (a line longer than the JSON body limit could never run). */
  maxLineBytes: number;
}

const tooLarge = (limit: number) => batchErrors.create("file_too_large", { limit });

/**
 * The file part's bytes, ending in file_too_large as soon as busboy cuts it at the size limit:
 * without this the part would end cleanly only after busboy had read and dropped the rest of the body.
 */
async function* capped(file: Readable, limit: number): AsyncGenerator<Uint8Array> {
  let cut = false;
  file.once("limit", () => {
    cut = true;
  });
  for await (const chunk of file) {
    if (cut) throw tooLarge(limit);
    yield chunk as Uint8Array;
  }
  if (cut) throw tooLarge(limit);
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
      let upload: Upload | undefined;
      try {
        for await (const part of request.parts()) {
          if (part.type === "file") {
            // A purpose sent before the file is checked before the file is read.
            if (purpose !== undefined) checkPurpose(purpose);
            const limits = { maxLineBytes: o.maxLineBytes };
            upload = await o.service.receiveFile(part.filename || "upload.jsonl", capped(part.file, o.maxFileBytes), limits);
          } else if (part.fieldname === "purpose") purpose = String(part.value);
        }
      } catch (err) {
        if (upload) await o.service.discardFile(upload);
        // The rest of the body is not read: the client gets the answer and a closed connection.
        closeAfterReply(request, reply);
        if ((err as { code?: string }).code === "FST_REQ_FILE_TOO_LARGE") throw tooLarge(o.maxFileBytes);
        throw err;
      }
      if (!upload)
        throw gatewayErrors.create("invalid_request_error", { detail: "Missing required parameter: 'file'." }, { param: "file" });
      if (!purpose) {
        await o.service.discardFile(upload);
        throw gatewayErrors.create("invalid_request_error", { detail: "Missing required parameter: 'purpose'." }, { param: "purpose" });
      }
      return reply.send(await o.service.commitFile(tenantOf(request), purpose, upload));
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
