/**
 * POST /v1/completions — raw text completion (no chat template). The prompt is tokenized with special
 * tokens allowed, so a client may drive the Harmony format by hand; the generated ids are decoded as they
 * stream (incomplete UTF-8 held back). Stop strings end the text. One prompt per request; n choices,
 * each its own generation; legacy integer `logprobs` (the top-N alternatives per token).
 */
import { randomUUID } from "node:crypto";
import { AppError } from "@expertmesh/common";
import { type HarmonyTokenizer, StreamDecoder, VOCAB_SIZE } from "@expertmesh/grammar/tokenizer";
import { FinishReason, type GenerateResponse } from "@expertmesh/proto/worker";
import type { FastifyInstance } from "fastify";
import { consume, type GenerationBackend } from "../../domain/generation-backend.ts";
import { checkPromptLength, type PrepareJob, type PromptPreparer } from "../../domain/prompt-preparer.ts";
import { gatewayErrors } from "../../errors.ts";
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
import { type CompletionLogprobs, CompletionLogprobsBuilder, mergeCompletionLogprobs } from "./logprobs.ts";

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
  logprobs?: number | null;
  user?: string;
}

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
    stop: STOP_SCHEMA,
    stream: { type: ["boolean", "null"] },
    n: { type: ["integer", "null"], minimum: 1, maximum: MAX_CHOICES },
    logprobs: { type: ["integer", "null"], minimum: 0, maximum: 5 },
    presence_penalty: num(-2, 2),
    frequency_penalty: num(-2, 2),
  },
} as const;

async function promptTokens(prompts: PromptPreparer, prompt: CompletionBody["prompt"], job: PrepareJob): Promise<number[]> {
  if (typeof prompt === "string") return prompts.encodeWithSpecials(prompt, job);
  const first = prompt[0];
  if (typeof first === "string") return prompts.encodeWithSpecials(first, job);
  const tokens = Array.isArray(first) ? first : (prompt as number[]);
  checkPromptLength(tokens.length, job);
  return tokens;
}

/** One choice: decodes its tokens as they stream, holding back a possible stop-string prefix. */
class CompletionChoice {
  /** The text so far: kept for a non-streamed response only. */
  text = "";
  tokens = 0;
  stopped = false;
  readonly logprobs: CompletionLogprobs[] | null;
  readonly index: number;
  readonly run: StartedGeneration;
  #reason: FinishReason | undefined;
  #pending = "";
  readonly #decoder: StreamDecoder;
  readonly #tok: HarmonyTokenizer;
  readonly #stops: string[];
  readonly #holdMax: number;
  readonly #lp: CompletionLogprobsBuilder | null;
  readonly #streamed: boolean;

  /** `streamed`: the pieces are the response, so `text` is not kept. */
  constructor(index: number, run: StartedGeneration, tok: HarmonyTokenizer, stops: string[], logprobs: number | null, streamed: boolean) {
    this.#streamed = streamed;
    this.index = index;
    this.run = run;
    this.#tok = tok;
    this.#decoder = new StreamDecoder(tok);
    this.#stops = stops.filter(Boolean);
    this.#holdMax = Math.max(0, ...this.#stops.map((s) => s.length - 1));
    this.#lp = logprobs === null ? null : new CompletionLogprobsBuilder(tok, logprobs);
    this.logprobs = logprobs === null ? null : [];
  }

  /** The text safe to emit for this event, and the logprobs of its tokens (when asked). */
  #take(e: GenerateResponse): { text: string; logprobs: CompletionLogprobs | null } {
    if (e.finished) this.#reason = e.finished.reason;
    if (!e.tokens) return { text: "", logprobs: null };
    const tokens = e.tokens.tokens;
    this.tokens += tokens.length;
    const logprobs = this.#lp?.take(tokens) ?? null;
    if (logprobs) this.logprobs?.push(logprobs);
    let buf = this.#pending + this.#decoder.push(tokens.map((t) => t.tokenId).filter((t) => !this.#tok.isSpecial(t)));
    for (const s of this.#stops) {
      const at = buf.indexOf(s);
      if (at >= 0) {
        buf = buf.slice(0, at);
        this.stopped = true;
        this.run.controller.abort();
      }
    }
    const keep = this.stopped ? 0 : Math.min(this.#holdMax, buf.length);
    this.#pending = buf.slice(buf.length - keep);
    return { text: buf.slice(0, buf.length - keep), logprobs };
  }

  /** Reads the generation to its end or a stop string; `onText` gets each piece (and a final flush). */
  async drain(onText: (text: string, logprobs: CompletionLogprobs | null) => void): Promise<void> {
    await consume(this.run.iterator, this.run.first, (e) => {
      const piece = this.#take(e);
      if (!this.#streamed) this.text += piece.text;
      if (piece.text || piece.logprobs) onText(piece.text, piece.logprobs);
      return !this.stopped;
    });
    const tail = this.stopped ? "" : this.#pending + this.#decoder.flush();
    if (!this.#streamed) this.text += tail;
    if (tail) onText(tail, null);
  }

  finishReason(): string {
    return this.stopped || this.#reason !== FinishReason.FINISH_REASON_LENGTH ? "stop" : "length";
  }
}

export function registerCompletions(
  app: FastifyInstance,
  deps: {
    backend: GenerationBackend;
    tokenizer: HarmonyTokenizer;
    requestTimeoutMs: number;
    prompts: PromptPreparer;
    renderBudgetMs: number;
    maxPromptTokens: number;
  },
): void {
  app.post<{ Body: CompletionBody }>("/v1/completions", { schema: { body: bodySchema } }, async (request, reply) => {
    const body = request.body;
    const job = {
      budgetMs: deps.renderBudgetMs,
      maxTokens: deps.maxPromptTokens,
      param: "prompt",
      signal: abortOnClientClose(reply).signal,
    };
    const tokens = await promptTokens(deps.prompts, body.prompt, job);
    if (tokens.length === 0) throw gatewayErrors.create("invalid_request_error", { detail: "the prompt is empty" }, { param: "prompt" });
    const id = `cmpl-${randomUUID().replaceAll("-", "")}`;
    const created = Math.floor(Date.now() / 1000);
    const stops = body.stop === null || body.stop === undefined ? [] : Array.isArray(body.stop) ? body.stop : [body.stop];
    const wantLogprobs = body.logprobs !== null && body.logprobs !== undefined;
    const runs = await startChoices(deps.backend, reply, body.n ?? 1, {
      id,
      model: body.model,
      promptTokenIds: tokens,
      sampling: samplingParams({ ...body, top_k: 0, min_p: 0, logit_bias: {}, logprobs: wantLogprobs, top_logprobs: body.logprobs ?? 0 }),
      maxTokens: body.max_tokens ?? null,
      defaultMaxTokens: 16, // OpenAI's default for completions
      timeoutMs: deps.requestTimeoutMs,
      // A raw prompt need not be a Harmony turn: nothing is constrained, and there is no channel to budget.
      maxReasoningTokens: 0,
    });
    const choices = runs.map(
      (run, i) => new CompletionChoice(i, run, deps.tokenizer, stops, wantLogprobs ? (body.logprobs ?? 0) : null, body.stream === true),
    );
    const usage = () => {
      const completion = choices.reduce((a, c) => a + c.tokens, 0);
      return { prompt_tokens: tokens.length, completion_tokens: completion, total_tokens: tokens.length + completion };
    };
    const head = { id, object: "text_completion", created, model: body.model };
    const settle = async (pumps: Promise<void>[]) => {
      try {
        await Promise.all(pumps);
      } catch (err) {
        for (const c of choices) c.run.controller.abort();
        await Promise.allSettled(pumps);
        throw err;
      }
    };

    if (!body.stream) {
      await settle(choices.map((c) => c.drain(() => {})));
      return {
        ...head,
        choices: choices.map((c) => ({
          index: c.index,
          text: c.text,
          logprobs: c.logprobs ? mergeCompletionLogprobs(c.logprobs) : null,
          finish_reason: c.finishReason(),
        })),
        usage: usage(),
      };
    }
    const sse = openEventStream(reply);
    const send = (data: unknown) => sse.write(`data: ${JSON.stringify(data)}\n\n`);
    const chunk = (index: number, text: string, logprobs: CompletionLogprobs | null, finishReason: string | null) =>
      send({ ...head, choices: [{ index, text, logprobs, finish_reason: finishReason }] });
    try {
      await settle(
        choices.map(async (c) => {
          await c.drain((text, logprobs) => chunk(c.index, text, logprobs, null));
          chunk(c.index, "", null, c.finishReason());
        }),
      );
      if (body.stream_options?.include_usage) send({ ...head, choices: [], usage: usage() });
    } catch (err) {
      send((err instanceof AppError ? err : gatewayErrors.create("server_error", { requestId: request.id })).toOpenAi());
    }
    sse.end("data: [DONE]\n\n");
  });
}
