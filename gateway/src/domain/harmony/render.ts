/**
 * The Harmony renderer (spec §6.2–§6.9): messages → prompt text and token ids. Header pieces and content
 * are tokenized separately with specials disabled; the markers are single special tokens.
 */
import { type HarmonyTokenizer, Special, type WorkBudget } from "@expertmesh/grammar/tokenizer";
import { toolsSection } from "./tools-ts.ts";
import type { DeveloperContent, HarmonyMessage, RenderOptions, SystemContent } from "./types.ts";

export interface Rendered {
  text: string;
  tokens: number[];
}

const MARK: Record<number, string> = {
  [Special.start]: "<|start|>",
  [Special.end]: "<|end|>",
  [Special.message]: "<|message|>",
  [Special.channel]: "<|channel|>",
  [Special.constrain]: "<|constrain|>",
  [Special.call]: "<|call|>",
  [Special.return]: "<|return|>",
};

class Builder {
  text = "";
  tokens: number[] = [];
  readonly tok: HarmonyTokenizer;
  readonly budget: WorkBudget | undefined;
  constructor(tok: HarmonyTokenizer, budget?: WorkBudget) {
    this.tok = tok;
    this.budget = budget;
  }
  special(id: number): void {
    this.text += MARK[id];
    this.tokens.push(id);
  }
  piece(s: string): void {
    if (!s) return;
    this.text += s;
    this.tok.encodeInto(s, this.tokens, this.budget);
  }
}

function definesFunctions(messages: readonly HarmonyMessage[]): boolean {
  return messages.some(
    (m) =>
      m.role === "developer" &&
      typeof m.content === "object" &&
      (m.content.tools ?? []).some((ns) => ns.name === "functions" && ns.tools.length > 0),
  );
}

export function systemText(c: SystemContent, functionsDefined: boolean): string {
  const sections: string[] = [];
  const top = [
    c.model_identity,
    c.knowledge_cutoff ? `Knowledge cutoff: ${c.knowledge_cutoff}` : null,
    c.conversation_start_date ? `Current date: ${c.conversation_start_date}` : null,
  ].filter((x): x is string => Boolean(x));
  if (top.length) sections.push(top.join("\n"));
  if (c.reasoning_effort) sections.push(`Reasoning: ${c.reasoning_effort}`);
  if (c.tools && c.tools.length > 0) sections.push(toolsSection(c.tools));
  if (c.channel_config) {
    let line = `# Valid channels: ${c.channel_config.valid_channels.join(", ")}.`;
    if (c.channel_config.channel_required) line += " Channel must be included for every message.";
    if (functionsDefined) line += "\nCalls to these tools must go to the commentary channel: 'functions'.";
    sections.push(line);
  }
  return sections.join("\n\n");
}

export function developerText(c: DeveloperContent): string {
  const sections: string[] = [];
  if (c.instructions) sections.push("# Instructions", c.instructions);
  if (c.tools && c.tools.length > 0) sections.push(toolsSection(c.tools));
  if (c.response_formats && c.response_formats.length > 0) {
    sections.push("# Response Formats");
    for (const f of c.response_formats) {
      const comment = f.description ? `// ${f.description}\n` : "";
      sections.push(`## ${f.name}\n\n${comment}${JSON.stringify(f.schema)}`);
    }
  }
  return sections.join("\n\n");
}

/** Harmony's auto_drop_analysis: with a final last assistant message, analysis before the first final goes. */
export function dropAnalysis(messages: readonly HarmonyMessage[]): HarmonyMessage[] {
  const assistant = messages.filter((m) => m.role === "assistant");
  if (assistant.at(-1)?.channel !== "final") return [...messages];
  const firstFinal = messages.findIndex((m) => m.role === "assistant" && m.channel === "final");
  return messages.filter((m, i) => !(i < firstFinal && m.role === "assistant" && m.channel === "analysis"));
}

function renderMessage(b: Builder, m: HarmonyMessage, functionsDefined: boolean): void {
  b.special(Special.start);
  if (m.role === "tool") {
    if (!m.name) throw new Error("a tool message needs the tool's name");
    b.piece(m.name);
  } else {
    b.piece(m.name ? `${m.role}:${m.name}` : m.role);
  }
  if (m.recipient && m.recipient !== "all") b.piece(` to=${m.recipient}`);
  if (m.channel) {
    b.special(Special.channel);
    b.piece(m.channel);
  }
  if (m.content_type) {
    if (m.content_type.startsWith("<|constrain|>")) {
      b.piece(" ");
      b.special(Special.constrain);
      b.piece(m.content_type.slice("<|constrain|>".length));
    } else {
      b.piece(` ${m.content_type}`);
    }
  }
  b.special(Special.message);
  const c = m.content;
  b.piece(typeof c === "string" ? c : c.type === "system" ? systemText(c, functionsDefined) : developerText(c));
  b.special(m.role === "assistant" && m.recipient ? Special.call : Special.end);
}

/** `budget` bounds the tokenizing work (the caller stops it when its client has gone or its time is spent). */
export function renderConversation(
  tok: HarmonyTokenizer,
  messages: readonly HarmonyMessage[],
  options: RenderOptions,
  budget?: WorkBudget,
): Rendered {
  const list = options.auto_drop_analysis ? dropAnalysis(messages) : messages;
  const functionsDefined = definesFunctions(list);
  const b = new Builder(tok, budget);
  for (const m of list) renderMessage(b, m, functionsDefined);
  if (options.for_completion) {
    b.special(Special.start);
    b.piece("assistant");
  }
  return { text: b.text, tokens: b.tokens };
}
