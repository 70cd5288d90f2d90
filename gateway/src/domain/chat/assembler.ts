/**
 * Harmony output → OpenAI chat fields, incrementally. Feeds the model's token ids to the streaming parser
 * and classifies each message (spec §6.10): analysis → reasoning; recipient functions.X → a tool call;
 * final or an un-addressed commentary preamble → content. Emits deltas for streaming and keeps totals
 * for the non-streaming response. Stop strings end the content (the rest is not sent).
 */

import type { HarmonyTokenizer } from "@expertmesh/grammar/tokenizer";
import { HarmonyStreamParser, type ParserEvent } from "../harmony/parser.ts";
import { TextBuilder } from "../harmony/text-builder.ts";
import type { HarmonyMessage } from "../harmony/types.ts";

export type ChatDelta =
  | { kind: "content"; text: string }
  | { kind: "reasoning"; text: string }
  | { kind: "tool_call_start"; index: number; id: string; name: string }
  | { kind: "tool_call_arguments"; index: number; text: string };

/** Where deltas go as they are made: an array collects them; the streaming route's sink writes them. */
export interface DeltaSink {
  push(d: ChatDelta): unknown;
}

export interface ToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

type Kind = "content" | "reasoning" | "tool" | "other";

function classify(m: HarmonyMessage): Kind {
  if (m.recipient?.startsWith("functions.")) return "tool";
  if (m.recipient) return "reasoning"; // built-in tools are not offered: show such calls as reasoning
  if (m.channel === "analysis") return "reasoning";
  return "content";
}

export class ChatAssembler {
  /** The answer and reasoning text so far; null when the caller keeps no text (it streams the deltas). */
  readonly #contentText: TextBuilder | null;
  readonly #reasoningText: TextBuilder | null;
  #contentSeen = false; // some answer text was emitted
  readonly toolCalls: ToolCall[] = [];
  /** The completed Harmony messages, as parsed (their content empty when constructed with keepText false). */
  readonly messages: HarmonyMessage[] = [];
  reasoningTokens = 0;
  /** Whether the last token pushed was answer text (its logprob then belongs to the content). */
  lastWasContent = false;
  /**
   * How many tokens before the last one became answer text with it (a would-be header recovered as
   * content, domain/harmony/parser.ts): their logprobs belong to the content too.
   */
  lastRecovered = 0;
  stopped = false; // a stop string matched
  readonly #parser: HarmonyStreamParser;
  readonly #stops: string[];
  readonly #holdMax: number;
  #pending = ""; // content held back while it could still be the start of a stop string
  #kind: Kind = "other";
  /** Where the parser's events go: straight into #event, toward the current push's `out` (no array per token). */
  readonly #parserSink = { push: (e: ParserEvent) => this.#event(e, this.#out) };
  #out: DeltaSink = [];
  readonly #newId: () => string;
  readonly #tok: HarmonyTokenizer;

  /** The answer text so far ("" when constructed with keepText false). */
  get content(): string {
    return this.#contentText?.toString() ?? "";
  }

  /** The reasoning text so far ("" when constructed with keepText false). */
  get reasoning(): string {
    return this.#reasoningText?.toString() ?? "";
  }

  /**
   * keepText false: only deltas, tool calls and counts — no content, reasoning or message text is kept
   * (a streamed response never reads them; kept, every token's text stays alive for the stream's life).
   */
  constructor(tok: HarmonyTokenizer, stops: string[], newId: () => string, options: { keepText?: boolean } = {}) {
    const keep = options.keepText ?? true;
    this.#contentText = keep ? new TextBuilder() : null;
    this.#reasoningText = keep ? new TextBuilder() : null;
    this.#tok = tok;
    this.#parser = new HarmonyStreamParser(tok, "assistant", { keepContent: keep });
    this.#stops = stops.filter(Boolean);
    this.#holdMax = Math.max(0, ...this.#stops.map((s) => s.length - 1));
    this.#newId = newId;
  }

  /** Feeds generated ids; returns their deltas. */
  push(ids: readonly number[]): ChatDelta[] {
    const out: ChatDelta[] = [];
    for (const id of ids) this.pushOne(id, out);
    return out;
  }

  /**
   * Feeds one generated id; its deltas go to `out` as they come (an array, or the caller's sink: the
   * streaming path hands them on without collecting). Nothing happens once a stop string matched.
   */
  pushOne(id: number, out: DeltaSink): void {
    if (this.stopped) {
      this.lastWasContent = false;
      return;
    }
    if (this.#kind === "reasoning") this.reasoningTokens++;
    this.#out = out;
    this.#parser.pushTo(id, this.#parserSink);
    // Still inside an answer message after this token, and not a special: the token is answer text.
    this.lastWasContent = this.#kind === "content" && !this.#tok.isSpecial(id);
    this.lastRecovered = this.#kind === "content" ? this.#parser.recovered : 0;
  }

  finish(): ChatDelta[] {
    const out: ChatDelta[] = [];
    this.lastRecovered = 0;
    if (!this.stopped) for (const e of this.#parser.finish()) this.#event(e, out);
    // A header recovered at the end opens an implicit assistant message: always answer text.
    this.lastRecovered = this.#parser.recovered;
    if (this.#pending && !this.stopped) {
      this.#contentText?.append(this.#pending);
      this.#contentSeen = true;
      out.push({ kind: "content", text: this.#pending });
      this.#pending = "";
    }
    return out;
  }

  #event(e: ParserEvent, out: DeltaSink): void {
    if (e.kind === "start") {
      this.#kind = classify(e.message);
      if (this.#kind === "tool") {
        const call: ToolCall = {
          id: this.#newId(),
          type: "function",
          function: { name: (e.message.recipient as string).slice("functions.".length), arguments: "" },
        };
        this.toolCalls.push(call);
        out.push({ kind: "tool_call_start", index: this.toolCalls.length - 1, id: call.id, name: call.function.name });
      } else if (this.#kind === "content" && this.#contentSeen) {
        this.#content("\n\n", out); // several answer messages read as paragraphs
      }
    } else if (e.kind === "delta") {
      if (this.#kind === "reasoning") {
        this.#reasoningText?.append(e.text);
        out.push({ kind: "reasoning", text: e.text });
      } else if (this.#kind === "tool") {
        const call = this.toolCalls.at(-1) as ToolCall;
        call.function.arguments += e.text;
        out.push({ kind: "tool_call_arguments", index: this.toolCalls.length - 1, text: e.text });
      } else this.#content(e.text, out);
    } else {
      this.messages.push(e.message);
      this.#kind = "other";
    }
  }

  #content(text: string, out: DeltaSink): void {
    let buf = this.#pending + text;
    for (const s of this.#stops) {
      const at = buf.indexOf(s);
      if (at >= 0) {
        buf = buf.slice(0, at);
        this.stopped = true;
      }
    }
    const keep = this.stopped ? 0 : Math.min(this.#holdMax, buf.length);
    const emit = buf.slice(0, buf.length - keep);
    this.#pending = buf.slice(buf.length - keep);
    if (emit) {
      this.#contentText?.append(emit);
      this.#contentSeen = true;
      out.push({ kind: "content", text: emit });
    }
  }
}
