/**
 * The Responses API: POST /v1/responses (non-streaming and SSE with OpenAI's event types), the stored
 * responses' routes (stored-responses.ts), previous_response_id continuing a stored conversation (the store
 * keeps the full Harmony messages: reasoning, calls, tool outputs). Errors before the first byte are
 * OpenAI-shaped HTTP errors; after it, an `error` event. Tools, tool_choice, text.format and the reasoning
 * budget also go to the worker as a constraint (output-controls.ts); a reasoning item the budget cut is
 * `incomplete`.
 */
import { randomUUID } from "node:crypto";
import { AppError } from "@expertmesh/common";
import { FinishReason, type GenerateResponse } from "@expertmesh/proto/worker";
import type { FastifyInstance, FastifyReply } from "fastify";
import { buildConversation, type ChatTool, type ResponseFormat, responseFormatDef } from "../../domain/chat/conversation.ts";
import { consume as consumeAll, type GenerationBackend, type PipeableIterator } from "../../domain/generation-backend.ts";
import type { HarmonyTokenizer } from "../../domain/harmony/tokenizer.ts";
import { checkJsonSchema, checkTools } from "../../domain/json-schema-check.ts";
import type { PromptPreparer } from "../../domain/prompt-preparer.ts";
import { convertInput, dropAnsweredReasoning, type InputItem } from "../../domain/responses/input.ts";
import { inputItemObjects } from "../../domain/responses/input-items.ts";
import { type OutputEvent, ResponseOutputBuilder } from "../../domain/responses/output.ts";
import type { ResponseStore } from "../../domain/responses/store.ts";
import { gatewayErrors } from "../../errors.ts";
import { tenantOf } from "../tenant.ts";
import {
  abortOnClientClose,
  MAX_TOKENS_LIMIT,
  num,
  openEventStream,
  type SamplingFields,
  samplingParams,
  startGeneration,
} from "./generation.ts";
import { chatLogprob } from "./logprobs.ts";
import { CONTROL_PROPERTIES, type OutputControlsConfig, outputControls, REASONING_BUDGET_SCHEMA } from "./output-controls.ts";
import { registerStoredResponses } from "./stored-responses.ts";

interface FunctionTool {
  type: "function";
  name: string;
  description?: string | null;
  parameters?: Record<string, unknown> | null;
  strict?: boolean | null;
}

interface ResponsesBody extends SamplingFields {
  model: string;
  input: string | InputItem[];
  instructions?: string | null;
  previous_response_id?: string | null;
  max_output_tokens?: number | null;
  tools?: FunctionTool[] | null;
  /** "auto" | "none" | "required" | {type: "function", name}, checked by parseToolChoice. */
  tool_choice?: unknown;
  reasoning?: { effort?: "low" | "medium" | "high" | null; max_tokens?: number | null } | null;
  /** Extension: false turns the Harmony structure guard off for this request. */
  harmony_guard?: boolean | null;
  stream?: boolean | null;
  store?: boolean | null;
  user?: string;
  metadata?: Record<string, string> | null;
  text?: { format?: ResponseFormat | null } | null;
  include?: string[] | null;
}

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

export interface ResponsesRouteDeps extends OutputControlsConfig {
  backend: GenerationBackend;
  tokenizer: HarmonyTokenizer;
  store: ResponseStore;
  requestTimeoutMs: number;
  /** Renders the conversation off the event loop. */
  prompts: PromptPreparer;
  /** GATEWAY_RENDER_BUDGET_MS: the time rendering one prompt may take. */
  renderBudgetMs: number;
  /** GATEWAY_MAX_PROMPT_TOKENS: the most tokens a prompt may have. */
  maxPromptTokens: number;
}

const newId = (prefix: string) => `${prefix}_${randomUUID().replaceAll("-", "")}`;

function functionTools(tools: FunctionTool[]): ChatTool[] {
  return tools.map((t, i) => {
    if (t.type !== "function" || !t.name)
      throw gatewayErrors.create(
        "invalid_request_error",
        { detail: `tools[${i}]: only function tools are supported (got '${t.type}')` },
        { param: `tools[${i}].type` },
      );
    return {
      type: "function",
      function: {
        name: t.name,
        ...(t.description ? { description: t.description } : {}),
        ...(t.parameters ? { parameters: t.parameters } : {}),
        strict: t.strict ?? null,
      },
    };
  });
}

/** The request's constraint and reasoning budget (output-controls.ts), from the Responses fields. */
function responsesControls(body: ResponsesBody, tools: ChatTool[], config: OutputControlsConfig) {
  return outputControls(
    {
      api: "responses",
      tools,
      toolChoice: body.tool_choice,
      format: body.text?.format ?? null,
      harmonyGuard: body.harmony_guard,
      budget: {
        requested: body.reasoning?.max_tokens,
        effort: body.reasoning?.effort ?? "medium",
        maxTokens: body.max_output_tokens ?? null,
        param: "reasoning.max_tokens",
        maxTokensParam: "max_output_tokens",
      },
    },
    config,
  );
}

export function registerResponses(app: FastifyInstance, deps: ResponsesRouteDeps): void {
  registerStoredResponses(app, deps.store);

  app.post<{ Body: ResponsesBody }>("/v1/responses", { schema: { body: bodySchema } }, async (request, reply) => {
    const body = request.body;
    // Another tenant's response is as unknown as a missing one: the same 400 (R22).
    const previous = body.previous_response_id ? await deps.store.get(body.previous_response_id, tenantOf(request)) : null;
    if (body.previous_response_id && !previous)
      throw gatewayErrors.create(
        "invalid_request_error",
        { detail: `Previous response with id '${body.previous_response_id}' not found.` },
        { param: "previous_response_id" },
      );
    checkTools(body.tools);
    const format = body.text?.format;
    if (format?.type === "json_schema" && format.schema)
      checkJsonSchema(format.schema, "text.format.schema", `text.format '${format.name}'`);
    if (format?.type === "json_schema" && !format.name)
      throw gatewayErrors.create(
        "invalid_request_error",
        { detail: "text.format of type 'json_schema' needs a name" },
        { param: "text.format.name" },
      );
    const calls = { ...(previous?.calls ?? {}) };
    const input = convertInput(body.input, calls);
    const effort = body.reasoning?.effort ?? "medium";
    const tools = functionTools(body.tools ?? []);
    const controls = responsesControls(body, tools, deps);
    const instructions = [body.instructions ?? "", ...input.instructions].filter(Boolean).join("\n\n");
    const header = buildConversation(instructions ? [{ role: "developer", content: instructions }] : [], {
      reasoningEffort: effort,
      today: new Date().toISOString().slice(0, 10),
      tools,
      toolChoice: controls.toolChoice.kind,
      responseFormat: responseFormatDef(format),
    });
    const history = [...(previous?.history ?? []), ...input.messages];
    const prompt = await deps.prompts.render(
      [...header, ...dropAnsweredReasoning(history)],
      { for_completion: true, auto_drop_analysis: false },
      {
        budgetMs: deps.renderBudgetMs,
        maxTokens: deps.maxPromptTokens,
        param: "input",
        signal: abortOnClientClose(reply).signal,
      },
    );

    // OpenAI returns output-text logprobs only when `include` asks for them.
    const wantLogprobs = body.include?.includes("message.output_text.logprobs") ?? false;
    const id = newId("resp");
    const createdAt = Math.floor(Date.now() / 1000);
    const { iterator, first } = await startGeneration(deps.backend, reply, {
      id,
      model: body.model,
      promptTokenIds: prompt.tokens,
      sampling: samplingParams({ ...body, logprobs: wantLogprobs }),
      maxTokens: body.max_output_tokens ?? null,
      defaultMaxTokens: deps.defaultMaxTokens,
      timeoutMs: deps.requestTimeoutMs,
      constraint: controls.constraint,
      maxReasoningTokens: controls.maxReasoningTokens,
    });
    const builder = new ResponseOutputBuilder(deps.tokenizer, newId, { reasoningBudget: controls.maxReasoningTokens > 0 });
    let outputTokens = 0;
    let reason: FinishReason | undefined;
    const consume = (e: GenerateResponse | undefined): OutputEvent[] => {
      if (e?.finished) {
        reason = e.finished.reason;
        if (e.finished.reasoningTruncated) builder.reasoningTruncated();
      }
      if (!e?.tokens) return [];
      outputTokens += e.tokens.tokens.length;
      const tokens = e.tokens.tokens;
      const logprobs = wantLogprobs ? tokens.map((t) => chatLogprob(deps.tokenizer, t, body.top_logprobs ?? 0)) : undefined;
      return builder.push(tokens, logprobs);
    };
    const snapshot = (status: "in_progress" | "completed" | "incomplete") => ({
      id,
      object: "response",
      created_at: createdAt,
      status,
      error: null,
      incomplete_details: status === "incomplete" ? { reason: "max_output_tokens" } : null,
      instructions: body.instructions ?? null,
      max_output_tokens: body.max_output_tokens ?? null,
      metadata: body.metadata ?? {},
      model: body.model,
      output: status === "in_progress" ? [] : builder.items,
      parallel_tool_calls: true,
      previous_response_id: body.previous_response_id ?? null,
      reasoning: { effort, summary: null },
      store: body.store ?? true,
      temperature: body.temperature ?? 1,
      text: { format: body.text?.format ?? { type: "text" } },
      tool_choice: body.tool_choice ?? "auto",
      tools: body.tools ?? [],
      top_p: body.top_p ?? 1,
      truncation: "disabled",
      usage:
        status === "in_progress"
          ? null
          : {
              input_tokens: prompt.tokens.length,
              input_tokens_details: { cached_tokens: 0 },
              output_tokens: outputTokens,
              output_tokens_details: { reasoning_tokens: builder.reasoningTokens },
              total_tokens: prompt.tokens.length + outputTokens,
            },
      user: body.user ?? null,
    });
    const complete = async () => {
      const status = reason === FinishReason.FINISH_REASON_LENGTH ? ("incomplete" as const) : ("completed" as const);
      const response = snapshot(status);
      if (body.store ?? true)
        await deps.store.put({
          owner: tenantOf(request),
          response,
          input_items: inputItemObjects(body.input, newId),
          history: [...history, ...builder.messages],
          calls: { ...calls, ...builder.calls() },
        });
      return response;
    };

    if (!body.stream) {
      await consumeAll(iterator, first, (e) => {
        consume(e);
        return true;
      });
      builder.finish();
      return complete();
    }
    return stream(reply, snapshot("in_progress"), first, iterator, consume, () => builder.finish(), complete);
  });
}

async function stream(
  reply: FastifyReply,
  initial: object,
  first: IteratorResult<GenerateResponse>,
  iterator: PipeableIterator<GenerateResponse>,
  consume: (e: GenerateResponse | undefined) => OutputEvent[],
  finish: () => OutputEvent[],
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
      sendAll(consume(e));
      return true;
    });
    sendAll(finish());
    const response = await complete();
    send({ type: response.status === "incomplete" ? "response.incomplete" : "response.completed", response });
  } catch (err) {
    const e = err instanceof AppError ? err : gatewayErrors.create("server_error", { requestId: reply.request.id });
    const body = e.toOpenAi().error;
    send({ type: "error", code: body.code, message: body.message, param: body.param });
  }
  sse.end();
}
