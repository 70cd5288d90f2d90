/**
 * POST /v1/chat/completions — OpenAI chat completions over Harmony: non-streaming and SSE streaming
 * (role chunk, content / reasoning / tool-call deltas, finish chunk, optional usage chunk, [DONE]).
 * Errors before the first byte are OpenAI-shaped HTTP errors; errors mid-stream are sent as an error
 * event, never a silent close. A client that disconnects cancels the worker stream. n > 1 runs one
 * generation per choice; streamed choices interleave, each chunk naming its choice index. Tools,
 * tool_choice, response_format and the reasoning budget also go to the worker as a constraint
 * (output-controls.ts); a choice whose reasoning the budget cut says `reasoning_truncated: true`.
 */
import { randomUUID } from "node:crypto";
import { AppError } from "@expertmesh/common";
import type { HarmonyTokenizer } from "@expertmesh/grammar/tokenizer";
import { FinishReason, type GeneratedToken, type GenerateResponse } from "@expertmesh/proto/worker";
import type { FastifyInstance, FastifyReply } from "fastify";
import { ChatAssembler, type ChatDelta, type DeltaSink } from "../../domain/chat/assembler.ts";
import {
  buildConversation,
  type ChatMessage,
  type ChatTool,
  checkToolMessages,
  type ResponseFormat,
  responseFormatDef,
} from "../../domain/chat/conversation.ts";
import { consume, type GenerationBackend } from "../../domain/generation-backend.ts";
import { MAX_HEADER_TOKENS } from "../../domain/harmony/parser.ts";
import { checkJsonSchema, checkTools } from "../../domain/json-schema-check.ts";
import type { PromptPreparer } from "../../domain/prompt-preparer.ts";
import { gatewayErrors } from "../../errors.ts";
import { jsonTemplate, SSE_EVENT, TEXT } from "../json-template.ts";
import { MAX_CHOICES, startChoices } from "./choices.ts";
import {
  abortOnClientClose,
  MAX_TOKENS_LIMIT,
  num,
  openEventStream,
  STOP_SCHEMA,
  type StartedGeneration,
  samplingParams,
} from "./generation.ts";
import { type ChatTokenLogprob, chatLogprob, checkLogprobs } from "./logprobs.ts";
import { CONTROL_PROPERTIES, type OutputControlsConfig, outputControls, REASONING_BUDGET_SCHEMA } from "./output-controls.ts";

interface ChatBody {
  model: string;
  messages: ChatMessage[];
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  min_p?: number | null;
  seed?: number | null;
  stop?: string | string[] | null;
  n?: number | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
  tools?: ChatTool[] | null;
  /** "auto" | "none" | "required" | {type: "function", function: {name}}, checked by parseToolChoice. */
  tool_choice?: unknown;
  reasoning_effort?: "low" | "medium" | "high" | null;
  /** Extension: the reasoning budget of this request (else GATEWAY_REASONING_BUDGET_<effort>). */
  max_reasoning_tokens?: number | null;
  /** Extension: false turns the Harmony structure guard off for this request. */
  harmony_guard?: boolean | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  logit_bias?: Record<string, number> | null;
  logprobs?: boolean | null;
  top_logprobs?: number | null;
  response_format?:
    | { type: "text" | "json_object" }
    | {
        type: "json_schema";
        json_schema: { name: string; description?: string | null; schema?: Record<string, unknown> | null; strict?: boolean | null };
      }
    | null;
  user?: string;
}

/** One chat message's shape (also /tokenize's `messages`). */
export const CHAT_MESSAGE_SCHEMA = {
  type: "object",
  required: ["role"],
  properties: {
    role: { enum: ["system", "developer", "user", "assistant", "tool"] },
    content: {
      type: ["string", "array", "null"],
      items: { type: "object", properties: { type: { type: "string" }, text: { type: "string" } } },
    },
    name: { type: "string" },
    tool_call_id: { type: "string" },
    reasoning: { type: ["string", "null"] },
    reasoning_content: { type: ["string", "null"] },
    tool_calls: {
      type: "array",
      items: {
        type: "object",
        required: ["id", "function"],
        properties: {
          id: { type: "string" },
          function: {
            type: "object",
            required: ["name", "arguments"],
            properties: { name: { type: "string" }, arguments: { type: "string" } },
          },
        },
      },
    },
  },
} as const;

/** One function tool's shape (also /tokenize's `tools`). */
export const CHAT_TOOL_SCHEMA = {
  type: "object",
  required: ["type", "function"],
  properties: { function: { type: "object", required: ["name"], properties: { name: { type: "string" } } } },
} as const;

const bodySchema = {
  type: "object",
  required: ["model", "messages"],
  properties: {
    model: { type: "string", minLength: 1 },
    messages: {
      type: "array",
      minItems: 1,
      items: CHAT_MESSAGE_SCHEMA,
    },
    max_tokens: { type: ["integer", "null"], minimum: 1, maximum: MAX_TOKENS_LIMIT },
    max_completion_tokens: { type: ["integer", "null"], minimum: 1, maximum: MAX_TOKENS_LIMIT },
    temperature: num(0, 2),
    top_p: num(0, 1),
    top_k: { type: ["integer", "null"], minimum: 0 },
    min_p: num(0, 1),
    seed: { type: ["integer", "null"] },
    stop: STOP_SCHEMA,
    n: { type: ["integer", "null"], minimum: 1, maximum: MAX_CHOICES },
    stream: { type: ["boolean", "null"] },
    tools: { type: ["array", "null"], items: CHAT_TOOL_SCHEMA },
    ...CONTROL_PROPERTIES,
    reasoning_effort: { enum: ["low", "medium", "high", null] },
    max_reasoning_tokens: REASONING_BUDGET_SCHEMA,
    presence_penalty: num(-2, 2),
    frequency_penalty: num(-2, 2),
    logit_bias: { type: ["object", "null"], additionalProperties: { type: "number", minimum: -100, maximum: 100 } },
    logprobs: { type: ["boolean", "null"] },
    top_logprobs: { type: ["integer", "null"], minimum: 0, maximum: 20 },
    response_format: {
      type: ["object", "null"],
      required: ["type"],
      properties: {
        type: { enum: ["text", "json_object", "json_schema"] },
        json_schema: {
          type: "object",
          required: ["name"],
          properties: {
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

export interface ChatRouteDeps extends OutputControlsConfig {
  backend: GenerationBackend;
  tokenizer: HarmonyTokenizer;
  requestTimeoutMs: number;
  /** Renders the conversation off the event loop. */
  prompts: PromptPreparer;
  /** GATEWAY_RENDER_BUDGET_MS: the time rendering one prompt may take. */
  renderBudgetMs: number;
  /** GATEWAY_MAX_PROMPT_TOKENS: the most tokens a prompt may have. */
  maxPromptTokens: number;
}

/** One choice: its worker generation, its Harmony assembler, its token and logprob tallies. */
class ChatChoice {
  readonly assembler: ChatAssembler;
  completionTokens = 0;
  /** Logprobs of every answer token (null when the client did not ask). */
  readonly logprobs: ChatTokenLogprob[] | null;
  #unsent: ChatTokenLogprob[] = []; // streaming: answer-token logprobs not yet attached to a chunk
  #held: GeneratedToken[] = []; // with logprobs: the tokens since the last answer token (a would-be header among them)
  #reason: FinishReason | undefined;
  /** The worker's reasoning budget ended the analysis channel early. */
  reasoningTruncated = false;
  /** Prompt tokens the worker served from its prefix cache (its Finished.usage). */
  cachedPromptTokens = 0;
  readonly #tok: HarmonyTokenizer;
  readonly index: number;
  readonly run: StartedGeneration;
  readonly topLogprobs: number | null;

  /** `streamed`: the deltas are the response, so the assembler keeps no text. */
  constructor(
    index: number,
    run: StartedGeneration,
    tok: HarmonyTokenizer,
    stops: string[],
    topLogprobs: number | null,
    streamed: boolean,
  ) {
    this.index = index;
    this.run = run;
    this.topLogprobs = topLogprobs;
    this.#tok = tok;
    this.assembler = new ChatAssembler(tok, stops, () => `call_${randomUUID().replaceAll("-", "").slice(0, 24)}`, {
      keepText: !streamed,
    });
    this.logprobs = topLogprobs === null ? null : [];
  }

  /** One worker event: its tokens through the assembler, their deltas to `out` (with logprobs: after them). */
  #consume(e: GenerateResponse, out: DeltaSink): void {
    if (e.finished) {
      this.#reason = e.finished.reason;
      this.reasoningTruncated = e.finished.reasoningTruncated;
      this.cachedPromptTokens = e.finished.usage?.cachedPromptTokens ?? 0;
    }
    if (!e.tokens) return;
    const tokens = e.tokens.tokens;
    this.completionTokens += tokens.length;
    if (this.logprobs === null || this.topLogprobs === null) {
      for (const t of tokens) this.assembler.pushOne(t.tokenId, out);
    } else {
      // A content delta carries the logprobs recorded before it: record this event's first, then hand on.
      const deltas: ChatDelta[] = [];
      for (const t of tokens) {
        this.assembler.pushOne(t.tokenId, deltas);
        this.#recordRecovered();
        if (this.assembler.lastWasContent) this.#record(t);
        else if (this.#held.push(t) > MAX_HEADER_TOKENS) this.#held.shift();
      }
      for (const d of deltas) out.push(d);
    }
    if (this.assembler.stopped) this.run.controller.abort();
  }

  #record(t: GeneratedToken): void {
    if (this.logprobs === null || this.topLogprobs === null) return;
    const lp = chatLogprob(this.#tok, t, this.topLogprobs);
    this.logprobs.push(lp);
    this.#unsent.push(lp);
  }

  /** Tokens held as a would-be header that the last push (or the finish) turned into answer text. */
  #recordRecovered(): void {
    const n = this.assembler.lastRecovered;
    if (n > 0) for (const t of this.#held.slice(-n)) this.#record(t);
    if (n > 0 || this.assembler.lastWasContent) this.#held = [];
  }

  /** Reads the generation to its end (or a stop string), handing over deltas as they come. */
  async drain(onDelta: (d: ChatDelta) => void): Promise<void> {
    const out: DeltaSink = { push: onDelta };
    await consume(this.run.iterator, this.run.first, (e) => {
      this.#consume(e, out);
      return !this.assembler.stopped;
    });
    const last = this.assembler.finish();
    this.#recordRecovered();
    for (const d of last) onDelta(d);
  }

  /** Streaming: the answer-token logprobs that no chunk carried yet. */
  takeUnsent(): ChatTokenLogprob[] | null {
    if (!this.logprobs) return null;
    const out = this.#unsent;
    this.#unsent = [];
    return out;
  }

  finishReason(): string {
    // Cut by max_tokens is "length" even inside a tool call, as OpenAI reports it: its arguments are unfinished.
    if (this.#reason === FinishReason.FINISH_REASON_LENGTH && !this.assembler.stopped) return "length";
    return this.assembler.toolCalls.length > 0 ? "tool_calls" : "stop";
  }
}

function toFormat(f: ChatBody["response_format"]): ResponseFormat | null {
  if (!f) return null;
  if (f.type !== "json_schema") return { type: f.type };
  if (!f.json_schema)
    throw gatewayErrors.create(
      "invalid_request_error",
      { detail: "response_format of type 'json_schema' needs a json_schema object with a name" },
      { param: "response_format.json_schema" },
    );
  if (f.json_schema.schema) checkJsonSchema(f.json_schema.schema, "response_format", `response_format '${f.json_schema.name}'`);
  return { type: "json_schema", ...f.json_schema };
}

/** The request's constraint and reasoning budget (output-controls.ts), from Chat's fields. */
function chatControls(body: ChatBody, format: ResponseFormat | null, maxTokens: number | null, config: OutputControlsConfig) {
  return outputControls(
    {
      api: "chat",
      tools: body.tools ?? [],
      toolChoice: body.tool_choice,
      format,
      harmonyGuard: body.harmony_guard,
      budget: {
        requested: body.max_reasoning_tokens,
        effort: body.reasoning_effort ?? "medium",
        maxTokens,
        param: "max_reasoning_tokens",
        maxTokensParam: (body.max_completion_tokens ?? null) === null ? "max_tokens" : "max_completion_tokens",
      },
    },
    config,
  );
}

export function registerChatCompletions(app: FastifyInstance, deps: ChatRouteDeps): void {
  app.post<{ Body: ChatBody }>("/v1/chat/completions", { schema: { body: bodySchema } }, async (request, reply) => {
    const body = request.body;
    checkLogprobs(body.logprobs, body.top_logprobs);
    checkTools(body.tools);
    checkToolMessages(body.messages);
    const format = toFormat(body.response_format);
    const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? null;
    const controls = chatControls(body, format, maxTokens, deps);
    const conversation = buildConversation(body.messages, {
      reasoningEffort: body.reasoning_effort ?? "medium",
      today: new Date().toISOString().slice(0, 10),
      tools: body.tools ?? [],
      toolChoice: controls.toolChoice.kind,
      responseFormat: responseFormatDef(format),
    });
    const prompt = await deps.prompts.render(
      conversation,
      { for_completion: true, auto_drop_analysis: false },
      {
        budgetMs: deps.renderBudgetMs,
        maxTokens: deps.maxPromptTokens,
        param: "messages",
        signal: abortOnClientClose(reply).signal,
      },
    );
    const id = `chatcmpl-${randomUUID().replaceAll("-", "")}`;
    const created = Math.floor(Date.now() / 1000);
    const stops = body.stop === null || body.stop === undefined ? [] : Array.isArray(body.stop) ? body.stop : [body.stop];
    const runs = await startChoices(deps.backend, reply, body.n ?? 1, {
      id,
      model: body.model,
      promptTokenIds: prompt.tokens,
      sampling: samplingParams(body),
      maxTokens,
      defaultMaxTokens: deps.defaultMaxTokens,
      timeoutMs: deps.requestTimeoutMs,
      constraint: controls.constraint,
      maxReasoningTokens: controls.maxReasoningTokens,
    });
    const topLogprobs = body.logprobs ? (body.top_logprobs ?? 0) : null;
    const choices = runs.map((run, i) => new ChatChoice(i, run, deps.tokenizer, stops, topLogprobs, body.stream === true));
    const usage = () => {
      const completion = choices.reduce((a, c) => a + c.completionTokens, 0);
      return {
        prompt_tokens: prompt.tokens.length,
        completion_tokens: completion,
        total_tokens: prompt.tokens.length + completion,
        // The prompt is computed once per choice; OpenAI reports one count, so the least any choice reused.
        prompt_tokens_details: { cached_tokens: Math.min(...choices.map((c) => c.cachedPromptTokens)) },
        completion_tokens_details: { reasoning_tokens: choices.reduce((a, c) => a + c.assembler.reasoningTokens, 0) },
      };
    };
    const head = { id, created, model: body.model };

    if (!body.stream) {
      await settleAll(
        choices.map((c) => c.drain(() => {})),
        choices,
      );
      return {
        ...head,
        object: "chat.completion",
        choices: choices.map((c) => ({
          index: c.index,
          message: {
            role: "assistant",
            content: c.assembler.content || (c.assembler.toolCalls.length ? null : ""),
            reasoning_content: c.assembler.reasoning || null,
            reasoning: c.assembler.reasoning || null,
            ...(c.assembler.toolCalls.length ? { tool_calls: c.assembler.toolCalls } : {}),
          },
          logprobs: c.logprobs ? { content: c.logprobs, refusal: null } : null,
          finish_reason: c.finishReason(),
          ...truncation(c),
        })),
        usage: usage(),
      };
    }
    return stream(reply, head, choices, body.stream_options?.include_usage ? usage : null);
  });
}

/** Extension: present only on a choice whose reasoning the budget cut, so other choices keep OpenAI's shape. */
const truncation = (c: ChatChoice) => (c.reasoningTruncated ? { reasoning_truncated: true } : {});

/** Waits for every choice; on the first failure cancels the others, lets them wind down, and rethrows. */
async function settleAll(pumps: Promise<void>[], choices: ChatChoice[]): Promise<void> {
  try {
    await Promise.all(pumps);
  } catch (err) {
    for (const c of choices) c.run.controller.abort();
    await Promise.allSettled(pumps);
    throw err;
  }
}

async function stream(
  reply: FastifyReply,
  head: { id: string; created: number; model: string },
  choices: ChatChoice[],
  usage: (() => object) | null,
): Promise<void> {
  const sse = openEventStream(reply);
  const send = (data: unknown) => sse.write(`data: ${JSON.stringify(data)}\n\n`);
  const chunk = (
    index: number,
    delta: object,
    finishReason: string | null = null,
    logprobs: ChatTokenLogprob[] | null = null,
    extra: object = {},
  ) =>
    send({
      ...head,
      object: "chat.completion.chunk",
      choices: [{ index, delta, logprobs: logprobs ? { content: logprobs, refusal: null } : null, finish_reason: finishReason, ...extra }],
    });
  // Per choice, the SSE event of a plain content / reasoning chunk with a slot for the text (the hot path).
  const shape = (index: number, delta: object) => ({
    ...head,
    object: "chat.completion.chunk",
    choices: [{ index, delta, logprobs: null, finish_reason: null }],
  });
  const fast = choices.map((c) => ({
    content: jsonTemplate(shape(c.index, { content: TEXT }), 1, SSE_EVENT),
    reasoning: jsonTemplate(shape(c.index, { reasoning_content: TEXT, reasoning: TEXT }), 2, SSE_EVENT),
  }));
  const emit = (c: ChatChoice, d: ChatDelta) => {
    const t = fast[c.index];
    if (d.kind === "content") {
      const logprobs = c.takeUnsent();
      if (logprobs === null && t?.content) sse.write(t.content(d.text));
      else chunk(c.index, { content: d.text }, null, logprobs);
    } else if (d.kind === "reasoning") {
      if (t?.reasoning) sse.write(t.reasoning(d.text));
      else chunk(c.index, { reasoning_content: d.text, reasoning: d.text });
    } else if (d.kind === "tool_call_start")
      chunk(c.index, { tool_calls: [{ index: d.index, id: d.id, type: "function", function: { name: d.name, arguments: "" } }] });
    else chunk(c.index, { tool_calls: [{ index: d.index, function: { arguments: d.text } }] });
  };
  for (const c of choices) chunk(c.index, { role: "assistant", content: "" });
  try {
    await settleAll(
      choices.map(async (c) => {
        await c.drain((d) => emit(c, d));
        const rest = c.takeUnsent();
        chunk(c.index, {}, c.finishReason(), rest?.length ? rest : null, truncation(c));
      }),
      choices,
    );
    if (usage) send({ ...head, object: "chat.completion.chunk", choices: [], usage: usage() });
  } catch (err) {
    const e = err instanceof AppError ? err : gatewayErrors.create("server_error", { requestId: reply.request.id });
    send(e.toOpenAi());
  }
  sse.end("data: [DONE]\n\n");
}
