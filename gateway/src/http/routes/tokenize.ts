/**
 * POST /tokenize and POST /detokenize in vLLM's shapes (vllm/entrypoints/openai/protocol.py:
 * TokenizeCompletionRequest / TokenizeChatRequest → TokenizeResponse, DetokenizeRequest → DetokenizeResponse),
 * so tools written for vLLM's extra endpoints work here. Chat `messages` are rendered exactly as
 * /v1/chat/completions renders them (the same conversation builder and Harmony renderer, on the same
 * render threads): the ids returned are the ids a chat request with these messages sends to a worker.
 * A `prompt` is tokenized as /v1/completions does: special-token text becomes the special token.
 * `model` is accepted and not checked: both gpt-oss models share o200k_harmony. Nothing here calls a worker.
 * `return_token_strs: true` adds `token_strs`, each token as vLLM names it for gpt-oss (Hugging Face's
 * `convert_ids_to_tokens`): specials by name, ordinary tokens in the byte-level alphabet (a space is `Ġ`),
 * which keeps the exact bytes of a token that holds only part of a character.
 */

import { type HarmonyTokenizer, VOCAB_SIZE } from "@expertmesh/grammar/tokenizer";
import type { FastifyInstance } from "fastify";
import { buildConversation, type ChatMessage, type ChatTool, checkToolMessages } from "../../domain/chat/conversation.ts";
import { checkTools } from "../../domain/json-schema-check.ts";
import type { PromptPreparer } from "../../domain/prompt-preparer.ts";
import { gatewayErrors } from "../../errors.ts";
import { CHAT_MESSAGE_SCHEMA, CHAT_TOOL_SCHEMA } from "./chat-completions.ts";
import { abortOnClientClose } from "./generation.ts";

export interface TokenizeRouteDeps {
  tokenizer: HarmonyTokenizer;
  prompts: PromptPreparer;
  /** GATEWAY_RENDER_BUDGET_MS. */
  renderBudgetMs: number;
  /** GATEWAY_MAX_PROMPT_TOKENS: reported as max_model_len, and the most tokens a prompt here may have. */
  maxPromptTokens: number;
}

interface TokenizeBody {
  model?: string;
  prompt?: string;
  messages?: ChatMessage[];
  /** vLLM's default: true (the prompt ends with `<|start|>assistant`, as a chat request's does). */
  add_generation_prompt?: boolean;
  tools?: ChatTool[] | null;
  reasoning_effort?: "low" | "medium" | "high" | null;
  /** Accepted for vLLM compatibility; o200k_harmony adds no BOS/EOS, so it changes nothing. */
  add_special_tokens?: boolean;
  /** vLLM's: also answer `token_strs`, one string per token id. */
  return_token_strs?: boolean | null;
}

// One of prompt / messages, as vLLM's union: checked in code for an exact message.
const tokenizeSchema = {
  type: "object",
  properties: {
    model: { type: "string" },
    prompt: { type: "string" },
    messages: { type: "array", minItems: 1, items: CHAT_MESSAGE_SCHEMA },
    add_generation_prompt: { type: "boolean" },
    add_special_tokens: { type: "boolean" },
    return_token_strs: { type: ["boolean", "null"] },
    tools: { type: ["array", "null"], items: CHAT_TOOL_SCHEMA },
    reasoning_effort: { enum: ["low", "medium", "high", null] },
  },
} as const;

const detokenizeSchema = {
  type: "object",
  required: ["tokens"],
  properties: { model: { type: "string" }, tokens: { type: "array", items: { type: "integer" } } },
} as const;

export function registerTokenizeRoutes(app: FastifyInstance, deps: TokenizeRouteDeps): void {
  app.post<{ Body: TokenizeBody }>("/tokenize", { schema: { body: tokenizeSchema } }, async (request, reply) => {
    const body = request.body;
    if ((body.prompt === undefined) === (body.messages === undefined))
      throw gatewayErrors.create(
        "invalid_request_error",
        { detail: "Give exactly one of 'prompt' (text) and 'messages' (a chat conversation)." },
        { param: body.prompt === undefined ? "prompt" : "messages" },
      );
    const param = body.messages ? "messages" : "prompt";
    const job = { budgetMs: deps.renderBudgetMs, maxTokens: deps.maxPromptTokens, param, signal: abortOnClientClose(reply).signal };
    let tokens: number[];
    if (body.messages) {
      checkTools(body.tools);
      checkToolMessages(body.messages);
      const conversation = buildConversation(body.messages, {
        reasoningEffort: body.reasoning_effort ?? "medium",
        today: new Date().toISOString().slice(0, 10),
        tools: body.tools ?? [],
        toolChoice: "auto",
      });
      const forCompletion = body.add_generation_prompt ?? true;
      tokens = (await deps.prompts.render(conversation, { for_completion: forCompletion, auto_drop_analysis: false }, job)).tokens;
    } else tokens = await deps.prompts.encodeWithSpecials(body.prompt ?? "", job);
    const out = { count: tokens.length, max_model_len: deps.maxPromptTokens, tokens };
    return body.return_token_strs ? { ...out, token_strs: tokens.map((id) => deps.tokenizer.tokenString(id)) } : out;
  });

  app.post<{ Body: { model?: string; tokens: number[] } }>("/detokenize", { schema: { body: detokenizeSchema } }, async (request) => {
    const tokens = request.body.tokens;
    const bad = tokens.findIndex((id) => id < 0 || id >= VOCAB_SIZE);
    if (bad >= 0)
      throw gatewayErrors.create(
        "invalid_request_error",
        { detail: `tokens[${bad}] is ${tokens[bad]}: token ids are 0 to ${VOCAB_SIZE - 1}` },
        { param: `tokens[${bad}]` },
      );
    return { prompt: deps.tokenizer.decode(tokens) };
  });
}
