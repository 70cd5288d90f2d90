/**
 * OpenAI chat request → Harmony conversation (spec §6.13): the system message is built server-side
 * (identity, knowledge cutoff, today's date, reasoning effort, channels); OpenAI system/developer
 * messages become the developer message's instructions, function tools its `functions` namespace;
 * assistant history becomes final messages and commentary tool calls; tool results are authored by
 * functions.NAME. Reasoning sent back with an assistant message is re-inserted only for the current,
 * unfinished tool-calling turn.
 */
import { gatewayErrors } from "../../errors.ts";
import type { HarmonyMessage, ResponseFormatDef, ToolNamespace } from "../harmony/types.ts";

export interface ChatMessage {
  role: "system" | "developer" | "user" | "assistant" | "tool";
  content?: string | Array<{ type: string; text?: string }> | null;
  name?: string;
  tool_calls?: Array<{ id: string; type: "function"; function: { name: string; arguments: string } }>;
  tool_call_id?: string;
  reasoning?: string | null;
  reasoning_content?: string | null;
}

export interface ChatTool {
  type: "function";
  /** strict: constrained decoding holds the arguments to `parameters` (domain/constraints). */
  function: { name: string; description?: string; parameters?: Record<string, unknown>; strict?: boolean | null };
}

export interface ConversationOptions {
  reasoningEffort: "low" | "medium" | "high";
  today: string; // YYYY-MM-DD
  tools: ChatTool[];
  /** none hides the tools; required and a named function show them all (the constraint forces the call). */
  toolChoice: "auto" | "none" | "required" | "function";
  /** A structured-output format to ask for (spec §6.11), or null for free text. */
  responseFormat?: ResponseFormatDef | null;
}

/** OpenAI's response_format (chat) or text.format (Responses), flattened to one shape. */
export type ResponseFormat =
  | { type: "text" }
  | { type: "json_object" }
  | { type: "json_schema"; name: string; description?: string | null; schema?: Record<string, unknown> | null };

/** The format to render into the developer message; null for plain text. */
export function responseFormatDef(f: ResponseFormat | null | undefined): ResponseFormatDef | null {
  if (!f || f.type === "text") return null;
  if (f.type === "json_object")
    return { name: "json_object", description: "Respond with one valid JSON object and nothing else.", schema: { type: "object" } };
  return { name: f.name, description: f.description ?? null, schema: f.schema ?? {} };
}

export const IDENTITY = "You are ChatGPT, a large language model trained by OpenAI.";

function text(content: ChatMessage["content"]): string {
  if (content === null || content === undefined) return "";
  if (typeof content === "string") return content;
  return content
    .filter((p) => p.type === "text" || p.type === "input_text")
    .map((p) => p.text ?? "")
    .join("");
}

function msg(partial: Partial<HarmonyMessage> & Pick<HarmonyMessage, "role" | "content">): HarmonyMessage {
  return { name: null, recipient: null, channel: null, content_type: null, ...partial };
}

/**
 * OpenAI's rule, with its wording: a tool message answers a call of the assistant message it follows
 * (only tool messages in between); otherwise the model would see a result of a call it never made.
 */
export function checkToolMessages(messages: readonly ChatMessage[]): void {
  let open: ReadonlySet<string> | null = null;
  messages.forEach((m, i) => {
    if (m.role === "assistant") open = new Set((m.tool_calls ?? []).map((c) => c.id));
    else if (m.role !== "tool") open = null;
    else if (open === null || open.size === 0)
      throw gatewayErrors.create(
        "invalid_request_error",
        { detail: "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'." },
        { param: `messages.[${i}].role` },
      );
    else if (!open.has(m.tool_call_id ?? ""))
      throw gatewayErrors.create(
        "invalid_request_error",
        { detail: `Invalid parameter: 'tool_call_id' of '${m.tool_call_id ?? ""}' not found in 'tool_calls' of previous message.` },
        { param: `messages.[${i}].tool_call_id` },
      );
  });
}

export function buildConversation(messages: readonly ChatMessage[], o: ConversationOptions): HarmonyMessage[] {
  const tools = o.toolChoice === "none" ? [] : o.tools;
  const functions: ToolNamespace | null =
    tools.length > 0
      ? {
          name: "functions",
          description: null,
          tools: tools.map((t) => ({
            name: t.function.name,
            description: t.function.description ?? "",
            parameters: (t.function.parameters as Record<string, unknown> | undefined) ?? null,
          })),
        }
      : null;
  const out: HarmonyMessage[] = [
    msg({
      role: "system",
      content: {
        type: "system",
        model_identity: IDENTITY,
        reasoning_effort: o.reasoningEffort,
        knowledge_cutoff: "2024-06",
        conversation_start_date: o.today,
        channel_config: { valid_channels: ["analysis", "commentary", "final"], channel_required: true },
        tools: null,
      },
    }),
  ];
  const instructions = messages
    .filter((m) => m.role === "system" || m.role === "developer")
    .map((m) => text(m.content))
    .filter(Boolean);
  const format = o.responseFormat ?? null;
  if (instructions.length > 0 || functions || format) {
    out.push(
      msg({
        role: "developer",
        content: {
          type: "developer",
          instructions: instructions.join("\n\n") || null,
          tools: functions ? [functions] : null,
          response_formats: format ? [format] : null,
        },
      }),
    );
  }
  const lastUser = messages.map((m) => m.role).lastIndexOf("user");
  const callNames = new Map<string, string>();
  messages.forEach((m, i) => {
    if (m.role === "user") out.push(msg({ role: "user", content: text(m.content) }));
    else if (m.role === "assistant") {
      const reasoning = m.reasoning_content ?? m.reasoning;
      const pendingCalls = (m.tool_calls?.length ?? 0) > 0 && i > lastUser;
      if (reasoning && pendingCalls) out.push(msg({ role: "assistant", channel: "analysis", content: reasoning }));
      const content = text(m.content);
      if (content) out.push(msg({ role: "assistant", channel: "final", content }));
      for (const call of m.tool_calls ?? []) {
        callNames.set(call.id, call.function.name);
        out.push(
          msg({
            role: "assistant",
            channel: "commentary",
            recipient: `functions.${call.function.name}`,
            content_type: "<|constrain|>json",
            content: call.function.arguments,
          }),
        );
      }
    } else if (m.role === "tool") {
      const name = callNames.get(m.tool_call_id ?? "") ?? m.name ?? "unknown";
      out.push(msg({ role: "tool", name: `functions.${name}`, recipient: "assistant", channel: "commentary", content: text(m.content) }));
    }
  });
  return out;
}
