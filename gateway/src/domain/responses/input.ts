/**
 * Responses API input → Harmony messages. `input` is a string (one user message) or a list of items:
 * messages (user / assistant / system / developer), function_call, function_call_output and reasoning.
 * system/developer messages become instructions of the developer message (like `instructions`); the rest
 * append to the stored conversation of previous_response_id. Reasoning of turns that ended in a final
 * answer is dropped before rendering (spec §6.9); reasoning of a pending tool call is kept.
 */
import type { AppError } from "@expertmesh/common";
import { gatewayErrors } from "../../errors.ts";
import type { HarmonyMessage } from "../harmony/types.ts";

type Part = { type: string; text?: string };

export type InputItem = (
  | { type?: "message"; role: "user" | "assistant" | "system" | "developer"; content: string | Part[] }
  | { type: "function_call"; call_id: string; name: string; arguments: string }
  | { type: "function_call_output"; call_id: string; output: string | Part[] }
  | { type: "reasoning"; content?: Part[]; summary?: Part[] }
) & { /** The item's id, when the client passes back an item it got (listed by input_items; not rendered). */ id?: string };

export interface ConvertedInput {
  messages: HarmonyMessage[];
  instructions: string[];
}

const partsText = (c: string | Part[]): string =>
  typeof c === "string"
    ? c
    : c
        .filter((p) => p.type === "input_text" || p.type === "output_text" || p.type === "text" || p.type === "reasoning_text")
        .map((p) => p.text ?? "")
        .join("");

function msg(partial: Partial<HarmonyMessage> & Pick<HarmonyMessage, "role" | "content">): HarmonyMessage {
  return { name: null, recipient: null, channel: null, content_type: null, ...partial };
}

const bad = (detail: string, param: string): AppError => gatewayErrors.create("invalid_request_error", { detail }, { param });

/** Converts input items; `calls` (call_id → name) is read for outputs and extended by calls in the input. */
export function convertInput(input: string | InputItem[], calls: Record<string, string>): ConvertedInput {
  if (typeof input === "string") return { messages: [msg({ role: "user", content: input })], instructions: [] };
  const messages: HarmonyMessage[] = [];
  const instructions: string[] = [];
  input.forEach((item, i) => {
    const type = item.type ?? "message";
    const need = (field: string) => {
      if ((item as Record<string, unknown>)[field] === undefined)
        throw bad(`input[${i}] (${type}) needs '${field}'`, `input[${i}].${field}`);
    };
    if (type === "message") ["role", "content"].forEach(need);
    else if (type === "function_call") ["call_id", "name", "arguments"].forEach(need);
    else if (type === "function_call_output") ["call_id", "output"].forEach(need);
    if (type === "message") {
      const m = item as Extract<InputItem, { role: string }>;
      if (m.role === "system" || m.role === "developer") instructions.push(partsText(m.content));
      else if (m.role === "user") messages.push(msg({ role: "user", content: partsText(m.content) }));
      else if (m.role === "assistant") messages.push(msg({ role: "assistant", channel: "final", content: partsText(m.content) }));
      else throw bad(`input[${i}].role must be user, assistant, system or developer`, `input[${i}].role`);
    } else if (type === "function_call") {
      const c = item as Extract<InputItem, { type: "function_call" }>;
      calls[c.call_id] = c.name;
      messages.push(
        msg({
          role: "assistant",
          channel: "commentary",
          recipient: `functions.${c.name}`,
          content_type: "<|constrain|>json",
          content: c.arguments,
        }),
      );
    } else if (type === "function_call_output") {
      const o = item as Extract<InputItem, { type: "function_call_output" }>;
      const name = calls[o.call_id];
      if (!name) throw bad(`No tool call found for function call output with call_id ${o.call_id}.`, `input[${i}].call_id`);
      messages.push(
        msg({ role: "tool", name: `functions.${name}`, recipient: "assistant", channel: "commentary", content: partsText(o.output) }),
      );
    } else if (type === "reasoning") {
      const r = item as Extract<InputItem, { type: "reasoning" }>;
      const text = partsText(r.content ?? r.summary ?? []);
      if (text) messages.push(msg({ role: "assistant", channel: "analysis", content: text }));
    } else {
      throw bad(`input[${i}].type '${type}' is not supported`, `input[${i}].type`);
    }
  });
  return { messages, instructions };
}

/** Drops analysis messages that precede a final answer: only a pending tool call keeps its reasoning. */
export function dropAnsweredReasoning(history: readonly HarmonyMessage[]): HarmonyMessage[] {
  const lastFinal = history.findLastIndex((m) => m.role === "assistant" && m.channel === "final");
  return history.filter((m, i) => !(i < lastFinal && m.role === "assistant" && m.channel === "analysis"));
}
