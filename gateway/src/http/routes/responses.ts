/**
 * The Responses API: POST /v1/responses (non-streaming and SSE with OpenAI's event types), the stored
 * responses' routes (stored-responses.ts), previous_response_id continuing a stored conversation (the store
 * keeps the full Harmony messages: reasoning, calls, tool outputs). Errors before the first byte are
 * OpenAI-shaped HTTP errors; after it, an `error` event. Tools, tool_choice, text.format and the reasoning
 * budget also go to the worker as a constraint (output-controls.ts); a reasoning item the budget cut is
 * `incomplete`. `background: true` hands the checked request to the background queue
 * (background-responses.ts); the generation itself is response-run.ts.
 */
import { AppError } from "@expertmesh/common";
import type { GenerateResponse } from "@expertmesh/proto/worker";
import type { FastifyInstance, FastifyReply } from "fastify";
import { consume as consumeAll, type PipeableIterator } from "../../domain/generation-backend.ts";
import type { BackgroundQueue } from "../../domain/responses/background.ts";
import { inputItemObjects } from "../../domain/responses/input-items.ts";
import type { OutputEvent } from "../../domain/responses/output.ts";
import { gatewayErrors } from "../../errors.ts";
import { tenantOf } from "../tenant.ts";
import { enqueueBackground, registerBackgroundResponses } from "./background-responses.ts";
import { abortOnClientClose, MAX_TOKENS_LIMIT, num, openEventStream, startGeneration } from "./generation.ts";
import { CONTROL_PROPERTIES, REASONING_BUDGET_SCHEMA } from "./output-controls.ts";
import { generationOf, newId, prepareResponse, ResponseRun, type ResponsesBody, type ResponsesRouteDeps } from "./response-run.ts";
import { registerStoredResponses } from "./stored-responses.ts";

const bodySchema = {
  type: "object",
  required: ["model", "input"],
  properties: {
    model: { type: "string", minLength: 1 },
    // One `type` list, not anyOf: Fastify's Ajv coerces single-element arrays inside anyOf branches.
    input: {
      type: ["string", "array"],
      minItems: 1,
      items: {
        type: "object",
        properties: {
          type: { enum: ["message", "function_call", "function_call_output", "reasoning"] },
          role: { enum: ["user", "assistant", "system", "developer"] },
          content: {
            type: ["string", "array"],
            items: { type: "object", properties: { type: { type: "string" }, text: { type: "string" } } },
          },
          call_id: { type: "string" },
          name: { type: "string" },
          arguments: { type: "string" },
          output: { type: ["string", "array"], items: { type: "object" } },
        },
      },
    },
    instructions: { type: ["string", "null"] },
    previous_response_id: { type: ["string", "null"] },
    max_output_tokens: { type: ["integer", "null"], minimum: 1, maximum: MAX_TOKENS_LIMIT },
    temperature: num(0, 2),
    top_p: num(0, 1),
    top_logprobs: { type: ["integer", "null"], minimum: 0, maximum: 20 },
    tools: { type: ["array", "null"], items: { type: "object", required: ["type"] } },
    ...CONTROL_PROPERTIES,
    reasoning: {
      type: ["object", "null"],
      properties: { effort: { enum: ["low", "medium", "high", null] }, max_tokens: REASONING_BUDGET_SCHEMA },
    },
    stream: { type: ["boolean", "null"] },
    store: { type: ["boolean", "null"] },
    background: { type: ["boolean", "null"] },
    include: { type: ["array", "null"], items: { type: "string" } },
    metadata: { type: ["object", "null"], maxProperties: 16, additionalProperties: { type: "string", maxLength: 512 } },
    text: {
      type: ["object", "null"],
      properties: {
        format: {
          type: ["object", "null"],
          required: ["type"],
          properties: {
            type: { enum: ["text", "json_object", "json_schema"] },
            name: { type: "string", minLength: 1, maxLength: 64, pattern: "^[A-Za-z0-9_-]+$" },
            description: { type: ["string", "null"] },
            schema: { type: ["object", "null"] },
            strict: { type: ["boolean", "null"] },
          },
        },
      },
    },
  },
} as const;

export function registerResponses(app: FastifyInstance, deps: ResponsesRouteDeps & { background: BackgroundQueue }): void {
  registerStoredResponses(app, deps.store);
  registerBackgroundResponses(app, deps);

  app.post<{ Body: ResponsesBody }>("/v1/responses", { schema: { body: bodySchema } }, async (request, reply) => {
    const body = request.body;
    const tenant = tenantOf(request);
    const p = await prepareResponse(deps, body, tenant, abortOnClientClose(reply).signal);
    if (body.background) return enqueueBackground(deps, p, request);
    const started = await startGeneration(deps.backend, reply, generationOf(deps, p));
    const run = new ResponseRun(deps.tokenizer, p);
    const complete = async () => {
      const record = run.record(tenant, inputItemObjects(body.input, newId));
      if (body.store ?? true) await deps.store.put(record);
      return record.response;
    };
    if (!body.stream) {
      await run.drain(started);
      return complete();
    }
    return stream(reply, run.snapshot("in_progress"), started.first, started.iterator, run, complete);
  });
}

async function stream(
  reply: FastifyReply,
  initial: object,
  first: IteratorResult<GenerateResponse>,
  iterator: PipeableIterator<GenerateResponse>,
  run: Pick<ResponseRun, "consume" | "finish">,
  complete: () => Promise<{ status: string }>,
): Promise<void> {
  const sse = openEventStream(reply);
  let seq = 0;
  const send = (e: OutputEvent) => sse.write(`event: ${e.type}\ndata: ${JSON.stringify({ ...e, sequence_number: seq++ })}\n\n`);
  const sendAll = (events: OutputEvent[]) => {
    for (const e of events) send(e);
  };
  send({ type: "response.created", response: initial });
  send({ type: "response.in_progress", response: initial });
  try {
    await consumeAll(iterator, first, (e) => {
      sendAll(run.consume(e));
      return true;
    });
    sendAll(run.finish());
    const response = await complete();
    send({ type: response.status === "incomplete" ? "response.incomplete" : "response.completed", response });
  } catch (err) {
    const e = err instanceof AppError ? err : gatewayErrors.create("server_error", { requestId: reply.request.id });
    const body = e.toOpenAi().error;
    send({ type: "error", code: body.code, message: body.message, param: body.param });
  }
  sse.end();
}
