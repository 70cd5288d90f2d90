/**
 * POST /v1/completions — raw text completion (no chat template). The prompt is tokenized with special
 * tokens allowed, so a client may drive the Harmony format by hand; the generated ids are decoded as they
 * stream (incomplete UTF-8 held back). Stop strings end the text. One prompt and n = 1 per request.
 */
import { randomUUID } from "node:crypto";
import { AppError } from "@expertmesh/common";
import { FinishReason, type GenerateResponse } from "@expertmesh/proto/worker";
import type { FastifyInstance } from "fastify";
import type { GenerationBackend } from "../../domain/generation-backend.ts";
import { type HarmonyTokenizer, StreamDecoder, VOCAB_SIZE } from "../../domain/harmony/tokenizer.ts";
import { gatewayErrors } from "../../errors.ts";
import { MAX_TOKENS_LIMIT, openEventStream, samplingParams, startGeneration } from "./generation.ts";

interface CompletionBody {
  model: string;
  prompt: string | string[] | number[] | number[][];
  max_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  seed?: number | null;
  stop?: string | string[] | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
  n?: number | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
}

const num = (min: number, max: number) => ({ type: ["number", "null"], minimum: min, maximum: max });

const bodySchema = {
  type: "object",
  required: ["model", "prompt"],
  properties: {
    model: { type: "string", minLength: 1 },
    prompt: {
      anyOf: [
        { type: "string" },
        { type: "array", items: { type: "string" }, minItems: 1, maxItems: 1 },
        { type: "array", items: { type: "integer", minimum: 0, maximum: VOCAB_SIZE - 1 }, minItems: 1 },
        {
          type: "array",
          items: { type: "array", items: { type: "integer", minimum: 0, maximum: VOCAB_SIZE - 1 } },
          minItems: 1,
          maxItems: 1,
        },
      ],
    },
    max_tokens: { type: ["integer", "null"], minimum: 1, maximum: MAX_TOKENS_LIMIT },
    temperature: num(0, 2),
    top_p: num(0, 1),
    seed: { type: ["integer", "null"] },
    stop: { anyOf: [{ type: "string" }, { type: "array", items: { type: "string" }, maxItems: 4 }, { type: "null" }] },
    stream: { type: ["boolean", "null"] },
    n: { type: ["integer", "null"], minimum: 1, maximum: 1 },
    presence_penalty: num(-2, 2),
    frequency_penalty: num(-2, 2),
  },
} as const;

function promptTokens(tok: HarmonyTokenizer, prompt: CompletionBody["prompt"]): number[] {
  if (typeof prompt === "string") return tok.encodeWithSpecials(prompt);
  const first = prompt[0];
  if (typeof first === "string") return tok.encodeWithSpecials(first);
  if (Array.isArray(first)) return first;
  return prompt as number[];
}

export function registerCompletions(app: FastifyInstance, deps: { backend: GenerationBackend; tokenizer: HarmonyTokenizer }): void {
  app.post<{ Body: CompletionBody }>("/v1/completions", { schema: { body: bodySchema } }, async (request, reply) => {
    const body = request.body;
    const tokens = promptTokens(deps.tokenizer, body.prompt);
    if (tokens.length === 0) throw gatewayErrors.create("invalid_request_error", { detail: "the prompt is empty" }, { param: "prompt" });
    const id = `cmpl-${randomUUID().replaceAll("-", "")}`;
    const created = Math.floor(Date.now() / 1000);
    const stops = body.stop === null || body.stop === undefined ? [] : Array.isArray(body.stop) ? body.stop : [body.stop];
    const { controller, iterator, first } = await startGeneration(deps.backend, reply, {
      id,
      model: body.model,
      promptTokenIds: tokens,
      sampling: samplingParams({ ...body, top_k: 0, min_p: 0, logit_bias: {}, logprobs: false, top_logprobs: 0 }),
      maxTokens: body.max_tokens ?? null,
      defaultMaxTokens: 16, // OpenAI's default for completions
    });
    const decoder = new StreamDecoder(deps.tokenizer);
    let text = "";
    let completionTokens = 0;
    let reason: FinishReason | undefined;
    let stopped = false;
    const holdMax = Math.max(0, ...stops.map((s) => s.length - 1));
    let pending = "";
    // Returns the text that is safe to emit now (a possible stop-string prefix is held back).
    const take = (e: GenerateResponse | undefined): string => {
      if (!e || stopped) return "";
      if (e.finished) reason = e.finished.reason;
      if (!e.tokens) return "";
      completionTokens += e.tokens.tokens.length;
      let buf = pending + decoder.push(e.tokens.tokens.map((t) => t.tokenId).filter((t) => !deps.tokenizer.isSpecial(t)));
      for (const s of stops) {
        const at = buf.indexOf(s);
        if (at >= 0) {
          buf = buf.slice(0, at);
          stopped = true;
          controller.abort();
        }
      }
      const keep = stopped ? 0 : Math.min(holdMax, buf.length);
      pending = buf.slice(buf.length - keep);
      return buf.slice(0, buf.length - keep);
    };
    const finish = () => (stopped || reason !== FinishReason.FINISH_REASON_LENGTH ? "stop" : "length");
    const usage = () => ({
      prompt_tokens: tokens.length,
      completion_tokens: completionTokens,
      total_tokens: tokens.length + completionTokens,
    });
    const flush = () => (stopped ? "" : pending + decoder.flush());

    if (!body.stream) {
      let e = first;
      while (!e.done && !stopped) {
        text += take(e.value);
        e = stopped ? e : await iterator.next();
      }
      text += flush();
      return {
        id,
        object: "text_completion",
        created,
        model: body.model,
        choices: [{ index: 0, text, logprobs: null, finish_reason: finish() }],
        usage: usage(),
      };
    }
    openEventStream(reply);
    const raw = reply.raw;
    const send = (data: unknown) => raw.write(`data: ${JSON.stringify(data)}\n\n`);
    const chunk = (t: string, finishReason: string | null) =>
      send({
        id,
        object: "text_completion",
        created,
        model: body.model,
        choices: [{ index: 0, text: t, logprobs: null, finish_reason: finishReason }],
      });
    try {
      let e = first;
      while (!e.done && !stopped) {
        const t = take(e.value);
        if (t) chunk(t, null);
        if (!stopped) e = await iterator.next();
      }
      const tail = flush();
      chunk(tail, finish());
      if (body.stream_options?.include_usage)
        send({ id, object: "text_completion", created, model: body.model, choices: [], usage: usage() });
    } catch (err) {
      send((err instanceof AppError ? err : gatewayErrors.create("server_error", { requestId: request.id })).toOpenAi());
    }
    raw.end("data: [DONE]\n\n");
  });
}
