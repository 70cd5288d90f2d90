/**
 * One Responses generation, apart from how it reaches the client: the request checked and its prompt
 * rendered (prepareResponse), the worker's tokens turned into output items and events (ResponseRun), and
 * the response object at each status. POST /v1/responses (responses.ts) streams or returns it; a background
 * run (background-responses.ts) stores it. Neither HTTP nor the store is touched here.
 */
import { randomUUID } from "node:crypto";
import type { HarmonyTokenizer } from "@expertmesh/grammar/tokenizer";
import { FinishReason, type GenerateResponse } from "@expertmesh/proto/worker";
import { buildConversation, type ChatTool, type ResponseFormat, responseFormatDef } from "../../domain/chat/conversation.ts";
import { consume, type GenerationBackend } from "../../domain/generation-backend.ts";
import type { HarmonyMessage } from "../../domain/harmony/types.ts";
import { checkJsonSchema, checkTools } from "../../domain/json-schema-check.ts";
import type { PreparedPrompt, PromptPreparer } from "../../domain/prompt-preparer.ts";
import { convertInput, dropAnsweredReasoning, type InputItem } from "../../domain/responses/input.ts";
import { type OutputEvent, ResponseOutputBuilder } from "../../domain/responses/output.ts";
import type { ResponseStore, StoredResponse } from "../../domain/responses/store.ts";
import { gatewayErrors } from "../../errors.ts";
import { type GenerationStart, type SamplingFields, type StartedGeneration, samplingParams } from "./generation.ts";
import { chatLogprob } from "./logprobs.ts";
import { type OutputControls, type OutputControlsConfig, outputControls } from "./output-controls.ts";

export interface FunctionTool {
  type: "function";
  name: string;
  description?: string | null;
  parameters?: Record<string, unknown> | null;
  strict?: boolean | null;
}

export interface ResponsesBody extends Pick<SamplingFields, "temperature" | "top_p" | "top_logprobs"> {
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
  /** Run later on the background queue (background-responses.ts); the answer is the queued response. */
  background?: boolean | null;
  user?: string;
  metadata?: Record<string, string> | null;
  text?: { format?: ResponseFormat | null } | null;
  include?: string[] | null;
}

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

export type ResponseStatus = "queued" | "in_progress" | "completed" | "incomplete" | "failed" | "cancelled";

export const newId = (prefix: string) => `${prefix}_${randomUUID().replaceAll("-", "")}`;

/** A checked request with its prompt: everything a generation of it needs. */
export interface PreparedResponse {
  id: string;
  createdAt: number;
  body: ResponsesBody;
  effort: "low" | "medium" | "high";
  prompt: PreparedPrompt;
  /** The conversation before this turn's output (stored with it for previous_response_id). */
  history: HarmonyMessage[];
  calls: Record<string, string>;
  controls: OutputControls;
}

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
function responsesControls(body: ResponsesBody, tools: ChatTool[], config: OutputControlsConfig): OutputControls {
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

/** Format checks that JSON Schema validation of the body cannot express. */
function checkFormat(body: ResponsesBody): void {
  checkTools(body.tools);
  const format = body.text?.format;
  if (format?.type === "json_schema" && format.schema) checkJsonSchema(format.schema, "text.format.schema", `text.format '${format.name}'`);
  if (format?.type === "json_schema" && !format.name)
    throw gatewayErrors.create(
      "invalid_request_error",
      { detail: "text.format of type 'json_schema' needs a name" },
      { param: "text.format.name" },
    );
}

/**
 * Checks the request, continues `previous_response_id` (the tenant's own only) and renders the prompt.
 * `ids`: a background run keeps the id and creation time its queued response was given.
 */
export async function prepareResponse(
  deps: ResponsesRouteDeps,
  body: ResponsesBody,
  tenant: string,
  signal: AbortSignal,
  ids: { id: string; createdAt: number } = { id: newId("resp"), createdAt: Math.floor(Date.now() / 1000) },
): Promise<PreparedResponse> {
  // Another tenant's response is as unknown as a missing one: the same 400 (R22).
  const previous = body.previous_response_id ? await deps.store.get(body.previous_response_id, tenant) : null;
  if (body.previous_response_id && !previous)
    throw gatewayErrors.create(
      "invalid_request_error",
      { detail: `Previous response with id '${body.previous_response_id}' not found.` },
      { param: "previous_response_id" },
    );
  // A background response stores its conversation only once it has ended with an output.
  const status = previous?.response.status;
  if (previous && status !== "completed" && status !== "incomplete")
    throw gatewayErrors.create(
      "invalid_request_error",
      {
        detail: `Previous response with id '${body.previous_response_id}' is ${status}: only a completed or incomplete response can be continued.`,
      },
      { param: "previous_response_id" },
    );
  checkFormat(body);
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
    responseFormat: responseFormatDef(body.text?.format),
  });
  const history = [...(previous?.history ?? []), ...input.messages];
  const prompt = await deps.prompts.render(
    [...header, ...dropAnsweredReasoning(history)],
    { for_completion: true, auto_drop_analysis: false },
    { budgetMs: deps.renderBudgetMs, maxTokens: deps.maxPromptTokens, param: "input", signal },
  );
  return { ...ids, body, effort, prompt, history, calls, controls };
}

/** OpenAI returns output-text logprobs only when `include` asks for them. */
const wantsLogprobs = (body: ResponsesBody) => body.include?.includes("message.output_text.logprobs") ?? false;

/** The worker request of a prepared response. */
export function generationOf(deps: ResponsesRouteDeps, p: PreparedResponse): GenerationStart {
  return {
    id: p.id,
    model: p.body.model,
    promptTokenIds: p.prompt.tokens,
    // Only the sampling fields the Responses schema validates: others (seed, top_k, logit_bias…) are not
    // part of this API and reach here unchecked, so they are ignored rather than read.
    sampling: samplingParams({
      temperature: p.body.temperature,
      top_p: p.body.top_p,
      top_logprobs: p.body.top_logprobs,
      logprobs: wantsLogprobs(p.body),
    }),
    maxTokens: p.body.max_output_tokens ?? null,
    defaultMaxTokens: deps.defaultMaxTokens,
    timeoutMs: deps.requestTimeoutMs,
    constraint: p.controls.constraint,
    maxReasoningTokens: p.controls.maxReasoningTokens,
  };
}

/** The response object of a request at any status, before its generation has produced anything. */
export function responseObject(p: Pick<PreparedResponse, "id" | "createdAt" | "body">, status: ResponseStatus) {
  const body = p.body;
  return {
    id: p.id,
    object: "response",
    created_at: p.createdAt,
    status,
    background: body.background ?? false,
    error: null as { code: string; message: string } | null,
    incomplete_details: status === "incomplete" ? { reason: "max_output_tokens" } : null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    metadata: body.metadata ?? {},
    model: body.model,
    output: [] as unknown[],
    parallel_tool_calls: true,
    previous_response_id: body.previous_response_id ?? null,
    reasoning: { effort: body.reasoning?.effort ?? "medium", summary: null },
    store: body.store ?? true,
    temperature: body.temperature ?? 1,
    text: { format: body.text?.format ?? { type: "text" } },
    tool_choice: body.tool_choice ?? "auto",
    tools: body.tools ?? [],
    top_p: body.top_p ?? 1,
    truncation: "disabled",
    usage: null as object | null,
    user: body.user ?? null,
  };
}

export type ResponseObject = ReturnType<typeof responseObject>;

/** The worker's events of one response → its output items, streaming events, usage and final status. */
export class ResponseRun {
  readonly #p: PreparedResponse;
  readonly #tok: HarmonyTokenizer;
  readonly #builder: ResponseOutputBuilder;
  readonly #logprobs: boolean;
  #outputTokens = 0;
  #reason: FinishReason | undefined;

  constructor(tok: HarmonyTokenizer, p: PreparedResponse) {
    this.#p = p;
    this.#tok = tok;
    this.#builder = new ResponseOutputBuilder(tok, newId, { reasoningBudget: p.controls.maxReasoningTokens > 0 });
    this.#logprobs = wantsLogprobs(p.body);
  }

  consume(e: GenerateResponse | undefined): OutputEvent[] {
    if (e?.finished) {
      this.#reason = e.finished.reason;
      if (e.finished.reasoningTruncated) this.#builder.reasoningTruncated();
    }
    if (!e?.tokens) return [];
    const tokens = e.tokens.tokens;
    this.#outputTokens += tokens.length;
    const top = this.#p.body.top_logprobs ?? 0;
    const logprobs = this.#logprobs ? tokens.map((t) => chatLogprob(this.#tok, t, top)) : undefined;
    return this.#builder.push(tokens, logprobs);
  }

  finish(): OutputEvent[] {
    return this.#builder.finish();
  }

  /** Reads the whole generation, then finishes the output (nothing is streamed). */
  async drain(started: Pick<StartedGeneration, "iterator" | "first">): Promise<void> {
    await consume(started.iterator, started.first, (e) => {
      this.consume(e);
      return true;
    });
    this.finish();
  }

  /** After finish(): cut by max_output_tokens is `incomplete`. */
  get status(): "completed" | "incomplete" {
    return this.#reason === FinishReason.FINISH_REASON_LENGTH ? "incomplete" : "completed";
  }

  /** The response object: with its output and usage once the generation ended. */
  snapshot(status: ResponseStatus) {
    const response = responseObject(this.#p, status);
    if (status !== "completed" && status !== "incomplete") return response;
    const input = this.#p.prompt.tokens.length;
    response.output = this.#builder.items;
    response.usage = {
      input_tokens: input,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: this.#outputTokens,
      output_tokens_details: { reasoning_tokens: this.#builder.reasoningTokens },
      total_tokens: input + this.#outputTokens,
    };
    return response;
  }

  /** What the store keeps of the ended response (its conversation continues with previous_response_id). */
  record(owner: string, inputItems: StoredResponse["input_items"]): StoredResponse & { owner: string; response: ResponseObject } {
    return {
      owner,
      response: this.snapshot(this.status),
      ...(inputItems ? { input_items: inputItems } : {}),
      history: [...this.#p.history, ...this.#builder.messages],
      calls: { ...this.#p.calls, ...this.#builder.calls() },
    };
  }
}
