/**
 * POST /v1/chat/completions — OpenAI chat completions over Harmony: non-streaming and SSE streaming
 * (role chunk, content / reasoning / tool-call deltas, finish chunk, optional usage chunk, [DONE]).
 * Errors before the first byte are OpenAI-shaped HTTP errors; errors mid-stream are sent as an error
 * event, never a silent close. A client that disconnects cancels the worker stream.
 */
import { randomUUID } from "node:crypto";
import { AppError } from "@expertmesh/common";
import { FinishReason, type GenerateResponse } from "@expertmesh/proto/worker";
import type { FastifyInstance, FastifyReply } from "fastify";
import { ChatAssembler, type ChatDelta } from "../../domain/chat/assembler.ts";
import { buildConversation, type ChatMessage, type ChatTool } from "../../domain/chat/conversation.ts";
import type { GenerationBackend } from "../../domain/generation-backend.ts";
import { renderConversation } from "../../domain/harmony/render.ts";
import type { HarmonyTokenizer } from "../../domain/harmony/tokenizer.ts";
import { gatewayErrors } from "../../errors.ts";
import { MAX_TOKENS_LIMIT, openEventStream, samplingParams, startGeneration } from "./generation.ts";

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
  tool_choice?: "auto" | "none" | "required" | { type: "function"; function: { name: string } } | null;
  reasoning_effort?: "low" | "medium" | "high" | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  logit_bias?: Record<string, number> | null;
  logprobs?: boolean | null;
  top_logprobs?: number | null;
  user?: string;
}

const num = (min: number, max: number) => ({ type: ["number", "null"], minimum: min, maximum: max });

const bodySchema = {
  type: "object",
  required: ["model", "messages"],
  properties: {
    model: { type: "string", minLength: 1 },
    messages: {
      type: "array",
      minItems: 1,
      items: {
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
      },
    },
    max_tokens: { type: ["integer", "null"], minimum: 1, maximum: MAX_TOKENS_LIMIT },
    max_completion_tokens: { type: ["integer", "null"], minimum: 1, maximum: MAX_TOKENS_LIMIT },
    temperature: num(0, 2),
    top_p: num(0, 1),
    top_k: { type: ["integer", "null"], minimum: 0 },
    min_p: num(0, 1),
    seed: { type: ["integer", "null"] },
    stop: { anyOf: [{ type: "string" }, { type: "array", items: { type: "string" }, maxItems: 4 }, { type: "null" }] },
    n: { type: ["integer", "null"], minimum: 1, maximum: 1 },
    stream: { type: ["boolean", "null"] },
    tools: { type: ["array", "null"], items: { type: "object", required: ["type", "function"] } },
    reasoning_effort: { enum: ["low", "medium", "high", null] },
    presence_penalty: num(-2, 2),
    frequency_penalty: num(-2, 2),
    logit_bias: { type: ["object", "null"], additionalProperties: { type: "number", minimum: -100, maximum: 100 } },
    logprobs: { type: ["boolean", "null"] },
    top_logprobs: { type: ["integer", "null"], minimum: 0, maximum: 20 },
  },
} as const;

export interface ChatRouteDeps {
  backend: GenerationBackend;
  tokenizer: HarmonyTokenizer;
  defaultMaxTokens: number;
}

export function registerChatCompletions(app: FastifyInstance, deps: ChatRouteDeps): void {
  app.post<{ Body: ChatBody }>("/v1/chat/completions", { schema: { body: bodySchema } }, async (request, reply) => {
    const body = request.body;
    const choice = body.tool_choice ?? "auto";
    if (choice !== "auto" && choice !== "none") {
      throw gatewayErrors.create(
        "invalid_request_error",
        {
          detail: "tool_choice 'required' and named functions need constrained decoding, which is not available yet; use 'auto' or 'none'",
        },
        { param: "tool_choice" },
      );
    }
    const conversation = buildConversation(body.messages, {
      reasoningEffort: body.reasoning_effort ?? "medium",
      today: new Date().toISOString().slice(0, 10),
      tools: body.tools ?? [],
      toolChoice: choice,
    });
    const prompt = renderConversation(deps.tokenizer, conversation, { for_completion: true, auto_drop_analysis: false });
    const id = `chatcmpl-${randomUUID().replaceAll("-", "")}`;
    const created = Math.floor(Date.now() / 1000);
    const stops = body.stop === null || body.stop === undefined ? [] : Array.isArray(body.stop) ? body.stop : [body.stop];
    const assembler = new ChatAssembler(deps.tokenizer, stops, () => `call_${randomUUID().replaceAll("-", "").slice(0, 24)}`);
    const { controller, iterator, first } = await startGeneration(deps.backend, reply, {
      id,
      model: body.model,
      promptTokenIds: prompt.tokens,
      sampling: samplingParams(body),
      maxTokens: body.max_completion_tokens ?? body.max_tokens ?? null,
      defaultMaxTokens: deps.defaultMaxTokens,
    });
    const usage = { prompt_tokens: prompt.tokens.length, completion_tokens: 0 };
    let finishReason: FinishReason | undefined;
    const consume = (e: GenerateResponse | undefined): ChatDelta[] => {
      if (!e) return [];
      if (e.tokens) {
        usage.completion_tokens += e.tokens.tokens.length;
        const deltas = assembler.push(e.tokens.tokens.map((t) => t.tokenId));
        if (assembler.stopped) controller.abort();
        return deltas;
      }
      if (e.finished) finishReason = e.finished.reason;
      return [];
    };
    const finish = () =>
      assembler.toolCalls.length > 0
        ? "tool_calls"
        : finishReason === FinishReason.FINISH_REASON_LENGTH && !assembler.stopped
          ? "length"
          : "stop";
    const usageBody = () => ({
      prompt_tokens: usage.prompt_tokens,
      completion_tokens: usage.completion_tokens,
      total_tokens: usage.prompt_tokens + usage.completion_tokens,
      completion_tokens_details: { reasoning_tokens: assembler.reasoningTokens },
    });

    if (!body.stream) {
      let e = first;
      while (!e.done) {
        consume(e.value);
        if (assembler.stopped) break;
        e = await iterator.next();
      }
      assembler.finish();
      return {
        id,
        object: "chat.completion",
        created,
        model: body.model,
        choices: [
          {
            index: 0,
            message: {
              role: "assistant",
              content: assembler.content || (assembler.toolCalls.length ? null : ""),
              reasoning_content: assembler.reasoning || null,
              reasoning: assembler.reasoning || null,
              ...(assembler.toolCalls.length ? { tool_calls: assembler.toolCalls } : {}),
            },
            logprobs: null,
            finish_reason: finish(),
          },
        ],
        usage: usageBody(),
      };
    }
    return stream(reply, id, created, body, first, iterator, consume, assembler, finish, usageBody);
  });
}

async function stream(
  reply: FastifyReply,
  id: string,
  created: number,
  body: ChatBody,
  first: IteratorResult<GenerateResponse>,
  iterator: AsyncIterator<GenerateResponse>,
  consume: (e: GenerateResponse | undefined) => ChatDelta[],
  assembler: ChatAssembler,
  finish: () => string,
  usageBody: () => object,
): Promise<void> {
  const raw = reply.raw;
  openEventStream(reply);
  const send = (data: unknown) => raw.write(`data: ${JSON.stringify(data)}\n\n`);
  const chunk = (delta: object, finishReason: string | null = null) =>
    send({
      id,
      object: "chat.completion.chunk",
      created,
      model: body.model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    });
  const emit = (deltas: ChatDelta[]) => {
    for (const d of deltas) {
      if (d.kind === "content") chunk({ content: d.text });
      else if (d.kind === "reasoning") chunk({ reasoning_content: d.text, reasoning: d.text });
      else if (d.kind === "tool_call_start")
        chunk({ tool_calls: [{ index: d.index, id: d.id, type: "function", function: { name: d.name, arguments: "" } }] });
      else chunk({ tool_calls: [{ index: d.index, function: { arguments: d.text } }] });
    }
  };
  chunk({ role: "assistant", content: "" });
  try {
    let e = first;
    while (!e.done) {
      emit(consume(e.value));
      if (assembler.stopped) break;
      e = await iterator.next();
    }
    emit(assembler.finish());
    chunk({}, finish());
    if (body.stream_options?.include_usage)
      send({ id, object: "chat.completion.chunk", created, model: body.model, choices: [], usage: usageBody() });
  } catch (err) {
    const e = err instanceof AppError ? err : gatewayErrors.create("server_error", { requestId: reply.request.id });
    send(e.toOpenAi());
  }
  raw.end("data: [DONE]\n\n");
}
