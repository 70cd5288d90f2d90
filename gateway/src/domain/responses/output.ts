/**
 * Harmony output → Responses output items, incrementally (spec §6.10): analysis (and calls to tools that
 * are not offered) → a reasoning item; a recipient functions.X → a function_call item; final or an
 * un-addressed commentary preamble → an assistant message. Each step yields the streaming events OpenAI
 * sends for it (output_item.added, content_part.added, *.delta, *.done, output_item.done), without
 * sequence numbers (the transport numbers them). A reasoning item that a reasoning budget cut is
 * `incomplete` instead of `completed`.
 */

import { type HarmonyTokenizer, Special } from "@expertmesh/grammar/tokenizer";
import { HarmonyStreamParser } from "../harmony/parser.ts";
import type { HarmonyMessage } from "../harmony/types.ts";

export interface ReasoningItem {
  id: string;
  type: "reasoning";
  summary: [];
  content: Array<{ type: "reasoning_text"; text: string }>;
  /** incomplete: the reasoning budget ended it (the model had not finished thinking). */
  status: "in_progress" | "completed" | "incomplete";
}
export interface MessageItem {
  id: string;
  type: "message";
  role: "assistant";
  status: "in_progress" | "completed";
  content: Array<{ type: "output_text"; text: string; annotations: []; logprobs: TokenLogprob[] }>;
}
export interface FunctionCallItem {
  id: string;
  type: "function_call";
  call_id: string;
  name: string;
  arguments: string;
  status: "in_progress" | "completed";
}
export type OutputItem = ReasoningItem | MessageItem | FunctionCallItem;

export type OutputEvent = { type: string } & Record<string, unknown>;

/** A generated token as the worker reports it: `forced` when the worker appended it rather than sampled it. */
export interface OutputToken {
  readonly tokenId: number;
  readonly forced?: boolean;
}

export interface OutputBuilderOptions {
  /** The generation runs under a reasoning budget (max_reasoning_tokens > 0). */
  readonly reasoningBudget?: boolean;
}

/** One answer token's log-probability with its alternatives, as OpenAI shapes it. */
export interface TokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: Array<{ token: string; logprob: number; bytes: number[] }>;
}

export class ResponseOutputBuilder {
  readonly items: OutputItem[] = [];
  /** The completed Harmony messages, as parsed (stored for previous_response_id). */
  readonly messages: HarmonyMessage[] = [];
  reasoningTokens = 0;
  readonly #parser: HarmonyStreamParser;
  readonly #newId: (prefix: string) => string;
  #open: OutputItem | null = null;
  #unsent: TokenLogprob[] = []; // answer-token logprobs not yet carried by a delta event
  readonly #tok: HarmonyTokenizer;
  readonly #budgeted: boolean;
  #cutNow = false; // the token being pushed is a forced <|end|> under a budget: the budget's cut
  #truncated = false;

  constructor(tok: HarmonyTokenizer, newId: (prefix: string) => string, options: OutputBuilderOptions = {}) {
    this.#tok = tok;
    this.#parser = new HarmonyStreamParser(tok, "assistant");
    this.#newId = newId;
    this.#budgeted = options.reasoningBudget ?? false;
  }

  /** Feeds generated tokens; `logprobs[i]` (when the client asked for them) belongs to `tokens[i]`. */
  push(tokens: readonly OutputToken[], logprobs?: readonly TokenLogprob[]): OutputEvent[] {
    const out: OutputEvent[] = [];
    for (const [i, { tokenId: id, forced }] of tokens.entries()) {
      if (this.#open?.type === "reasoning") this.reasoningTokens++;
      const from = out.length;
      // The worker's budget ends the analysis message with a forced <|end|> (worker.proto
      // max_reasoning_tokens); its jump-forward never forces one there, since free text may always go on.
      this.#cutNow = this.#budgeted && forced === true && id === Special.end;
      for (const e of this.#parser.push(id)) this.#event(e, out);
      const lp = logprobs?.[i];
      const open = this.#open;
      if (lp && open?.type === "message" && !this.#tok.isSpecial(id)) {
        (open.content[0] as MessageItem["content"][number]).logprobs.push(lp);
        this.#unsent.push(lp);
        const delta = out.slice(from).find((e) => e.type === "response.output_text.delta");
        if (delta) {
          delta.logprobs = this.#unsent;
          this.#unsent = [];
        }
      }
    }
    return out;
  }

  /** The worker said the budget cut the reasoning (Finished.reasoning_truncated); finish() applies it. */
  reasoningTruncated(): void {
    this.#truncated = true;
  }

  finish(): OutputEvent[] {
    const out: OutputEvent[] = [];
    for (const e of this.#parser.finish()) this.#event(e, out);
    // Normally the item was marked as it ended; if not (its end was not seen as the budget's cut), the
    // last reasoning item is: a stream has sent that item's output_item.done, the final response says it.
    if (this.#truncated && !this.items.some((i) => i.type === "reasoning" && i.status === "incomplete")) {
      const last = this.items.findLast((i) => i.type === "reasoning");
      if (last) last.status = "incomplete";
    }
    return out;
  }

  #event(e: ReturnType<HarmonyStreamParser["push"]>[number], out: OutputEvent[]): void {
    const index = this.items.length - 1;
    if (e.kind === "start") {
      const m = e.message;
      let item: OutputItem;
      if (m.recipient?.startsWith("functions.")) {
        item = {
          id: this.#newId("fc"),
          type: "function_call",
          call_id: this.#newId("call"),
          name: m.recipient.slice("functions.".length),
          arguments: "",
          status: "in_progress",
        };
      } else if (m.recipient || m.channel === "analysis") {
        item = { id: this.#newId("rs"), type: "reasoning", summary: [], content: [], status: "in_progress" };
      } else {
        item = { id: this.#newId("msg"), type: "message", role: "assistant", status: "in_progress", content: [] };
      }
      this.items.push(item);
      this.#open = item;
      const i = this.items.length - 1;
      out.push({ type: "response.output_item.added", output_index: i, item: structuredClone(item) });
      if (item.type === "message") {
        item.content.push({ type: "output_text", text: "", annotations: [], logprobs: [] });
        out.push({
          type: "response.content_part.added",
          item_id: item.id,
          output_index: i,
          content_index: 0,
          part: { ...item.content[0] },
        });
      } else if (item.type === "reasoning") {
        item.content.push({ type: "reasoning_text", text: "" });
        out.push({
          type: "response.content_part.added",
          item_id: item.id,
          output_index: i,
          content_index: 0,
          part: { ...item.content[0] },
        });
      }
      return;
    }
    const item = this.#open;
    if (!item) return;
    if (e.kind === "delta") {
      if (item.type === "function_call") {
        item.arguments += e.text;
        out.push({ type: "response.function_call_arguments.delta", item_id: item.id, output_index: index, delta: e.text });
      } else {
        const part = item.content[0] as { text: string };
        part.text += e.text;
        const type = item.type === "message" ? "response.output_text.delta" : "response.reasoning_text.delta";
        out.push({
          type,
          item_id: item.id,
          output_index: index,
          content_index: 0,
          delta: e.text,
          ...(item.type === "message" ? { logprobs: [] } : {}),
        });
      }
      return;
    }
    this.messages.push(e.message);
    item.status = item.type === "reasoning" && this.#cutNow ? "incomplete" : "completed";
    if (item.type === "function_call") {
      out.push({
        type: "response.function_call_arguments.done",
        item_id: item.id,
        output_index: index,
        name: item.name,
        arguments: item.arguments,
      });
    } else {
      const part = item.content[0] as { text: string };
      if (item.type === "message")
        out.push({
          type: "response.output_text.done",
          item_id: item.id,
          output_index: index,
          content_index: 0,
          text: part.text,
          logprobs: [...(item.content[0]?.logprobs ?? [])],
        });
      else out.push({ type: "response.reasoning_text.done", item_id: item.id, output_index: index, content_index: 0, text: part.text });
      out.push({ type: "response.content_part.done", item_id: item.id, output_index: index, content_index: 0, part: { ...part } });
    }
    out.push({ type: "response.output_item.done", output_index: index, item: structuredClone(item) });
    this.#open = null;
  }

  /** call_id → name for the calls this output made. */
  calls(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const i of this.items) if (i.type === "function_call") out[i.call_id] = i.name;
    return out;
  }
}
