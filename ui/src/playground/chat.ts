/**
 * One chat turn against POST /v1/chat/completions with stream: true: the request built from the page's
 * settings, and the streamed chunks folded into the assistant message as they come (reasoning, content,
 * tool calls), with its timings (time to first token, tokens per second) and token counts.
 */
import { ApiError, apiFetch, type OpenAiErrorBody, sseEvents } from "../shared/api.ts";

export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

export interface TurnStats {
  promptTokens?: number;
  completionTokens?: number;
  reasoningTokens?: number;
  ttftMs?: number;
  totalMs?: number;
  tokensPerS?: number;
}

export interface Message {
  role: "user" | "assistant" | "tool";
  content: string;
  reasoning?: string;
  toolCalls?: ToolCall[];
  /** A tool message: the call it answers. */
  toolCallId?: string;
  stats?: TurnStats;
  finishReason?: string;
}

export interface Settings {
  model: string;
  system: string;
  reasoningEffort: "low" | "medium" | "high";
  temperature: number;
  seed: string;
  maxTokens: string;
  /** Parsed from the tools editor: OpenAI function tools. */
  tools: unknown[];
  toolChoice: "auto" | "required" | "none";
  /** Parsed from the schema editor; null: free text. */
  schema: Record<string, unknown> | null;
}

interface Chunk {
  choices?: Array<{
    delta?: {
      content?: string | null;
      reasoning_content?: string | null;
      reasoning?: string | null;
      tool_calls?: Array<{ index: number; id?: string; function?: { name?: string; arguments?: string } }>;
    };
    finish_reason?: string | null;
  }>;
  usage?: { prompt_tokens: number; completion_tokens: number; completion_tokens_details?: { reasoning_tokens?: number } };
  error?: OpenAiErrorBody;
}

/** The messages as the API takes them: the system prompt, then the history. */
export function apiMessages(s: Settings, history: readonly Message[]): unknown[] {
  const out: unknown[] = s.system ? [{ role: "system", content: s.system }] : [];
  for (const m of history) {
    if (m.role === "tool") out.push({ role: "tool", tool_call_id: m.toolCallId, content: m.content });
    else if (m.role === "assistant" && m.toolCalls?.length)
      out.push({
        role: "assistant",
        content: m.content || null,
        tool_calls: m.toolCalls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } })),
      });
    else out.push({ role: m.role, content: m.content });
  }
  return out;
}

export function requestBody(s: Settings, history: readonly Message[]): Record<string, unknown> {
  return {
    model: s.model,
    messages: apiMessages(s, history),
    stream: true,
    stream_options: { include_usage: true },
    reasoning_effort: s.reasoningEffort,
    temperature: s.temperature,
    ...(s.seed.trim() ? { seed: Number(s.seed) } : {}),
    ...(s.maxTokens.trim() ? { max_tokens: Number(s.maxTokens) } : {}),
    ...(s.tools.length ? { tools: s.tools, tool_choice: s.toolChoice } : {}),
    ...(s.schema ? { response_format: { type: "json_schema", json_schema: { name: "output", schema: s.schema, strict: true } } } : {}),
  };
}

/** Streams one assistant turn; `update` gets the message so far after every chunk. */
export async function streamTurn(
  s: Settings,
  history: readonly Message[],
  update: (m: Message) => void,
  signal: AbortSignal,
): Promise<Message> {
  const t0 = performance.now();
  const res = await apiFetch("/v1/chat/completions", { method: "POST", body: JSON.stringify(requestBody(s, history)), signal });
  const m: Message = { role: "assistant", content: "", reasoning: "" };
  const calls: ToolCall[] = [];
  let first: number | undefined;
  for await (const raw of sseEvents(res)) {
    const chunk = raw as Chunk;
    // An error after the stream started comes as an event (the status was already 200).
    if (chunk.error) throw new ApiError(0, chunk.error);
    const choice = chunk.choices?.[0];
    const d = choice?.delta;
    const text = (d?.reasoning_content ?? d?.reasoning ?? "") + (d?.content ?? "");
    if (first === undefined && (text || d?.tool_calls)) first = performance.now();
    m.reasoning += d?.reasoning_content ?? d?.reasoning ?? "";
    m.content += d?.content ?? "";
    for (const t of d?.tool_calls ?? []) {
      calls[t.index] ??= { id: "", name: "", arguments: "" };
      const c = calls[t.index] as ToolCall;
      c.id ||= t.id ?? "";
      c.name += t.function?.name ?? "";
      c.arguments += t.function?.arguments ?? "";
    }
    if (calls.length) m.toolCalls = calls.map((c) => ({ ...c }));
    if (choice?.finish_reason) m.finishReason = choice.finish_reason;
    if (chunk.usage) m.stats = statsOf(chunk.usage, t0, first);
    update({ ...m });
  }
  m.stats ??= statsOf(undefined, t0, first);
  return m;
}

function statsOf(usage: Chunk["usage"], t0: number, first: number | undefined): TurnStats {
  const end = performance.now();
  const out = usage?.completion_tokens;
  return {
    ...(usage ? { promptTokens: usage.prompt_tokens, completionTokens: out } : {}),
    ...(usage?.completion_tokens_details?.reasoning_tokens !== undefined
      ? { reasoningTokens: usage.completion_tokens_details.reasoning_tokens }
      : {}),
    ...(first !== undefined ? { ttftMs: first - t0 } : {}),
    totalMs: end - t0,
    // Decode speed: the tokens after the first over the time after the first.
    ...(out && out > 1 && first !== undefined && end > first ? { tokensPerS: ((out - 1) * 1000) / (end - first) } : {}),
  };
}
