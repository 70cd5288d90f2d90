/**
 * Streaming Harmony parser (spec §6.10), tolerant by design: the model is a token source we do not
 * control (a randomly initialised one emits garbage), so nothing here throws. Malformed input becomes
 * best-effort content: stray stop tokens are skipped, text outside a message opens an implicit assistant
 * message, a stop token inside a header turns the header text into content, a <|start|> inside content
 * closes the open message. The end of the stream closes an open message (Harmony's process_eos).
 * A header that cannot be one — a token no header holds (a newline, prose punctuation), or more tokens
 * than any real header — is recovered as content at once, so text streams token by token whatever the
 * model emits and the header buffer stays bounded.
 */

import { type HarmonyTokenizer, Special, StreamDecoder } from "@expertmesh/grammar/tokenizer";
import { TextBuilder } from "./text-builder.ts";
import type { HarmonyMessage, Role } from "./types.ts";

export type ParserEvent =
  | { kind: "start"; index: number; message: HarmonyMessage }
  | { kind: "delta"; index: number; text: string }
  | { kind: "end"; index: number; message: HarmonyMessage; terminator: "end" | "return" | "call" | "eos" };

/** Where a push's events go: an array, or anything with the same push(). */
export interface ParserSink {
  push(e: ParserEvent): unknown;
}

const KNOWN_ROLES = new Set<Role>(["system", "developer", "user", "assistant"]);
const STOPS = new Map<number, "end" | "return" | "call">([
  [Special.end, "end"],
  [Special.return, "return"],
  [Special.call, "call"],
]);

/** Parses a decoded header (spec §6.10 steps 1–4). `knownRole` is the role of a header without one. */
export function parseHeader(
  header: string,
  knownRole: Role | null,
): Pick<HarmonyMessage, "role" | "name" | "recipient" | "channel" | "content_type"> {
  let rest = header;
  let channel: string | null = null;
  const at = rest.indexOf("<|channel|>");
  if (at >= 0) {
    const after = rest.slice(at + "<|channel|>".length);
    const m = /^[^\s<]*/.exec(after);
    channel = m?.[0] ? m[0] : null;
    rest = rest.slice(0, at) + after.slice(m?.[0].length ?? 0);
  }
  rest = rest.trim().replace(/<\|constrain\|>/, " <|constrain|>");
  const parts = rest.split(/[ \t\n\r\f]+/).filter(Boolean);
  let role: Role = knownRole ?? "assistant";
  let name: string | null = null;
  if (!knownRole && parts.length > 0) {
    const first = parts[0] as string;
    if (KNOWN_ROLES.has(first as Role)) {
      role = first as Role;
      parts.shift();
    } else if (first.includes(":") && KNOWN_ROLES.has(first.split(":")[0] as Role)) {
      role = first.split(":")[0] as Role;
      name = first.slice(first.indexOf(":") + 1);
      parts.shift();
    } else if (!first.startsWith("to=")) {
      role = "tool";
      name = first;
      parts.shift();
    }
  } else if (knownRole && parts[0] === knownRole) {
    parts.shift();
  }
  let recipient: string | null = null;
  let contentType: string | null = null;
  if (parts.length > 0) {
    const last = parts.pop() as string;
    if (last.startsWith("to=")) recipient = last.slice(3);
    else if (parts.length === 0) recipient = last;
    else {
      contentType = last;
      const r = parts.pop() as string;
      recipient = r.startsWith("to=") ? r.slice(3) : r;
    }
    // Whatever is left is malformed; a tolerant parser ignores it.
  }
  return { role, name, recipient, channel, content_type: contentType };
}

/**
 * The longest header kept (in tokens): a real one (`assistant to=functions.name<|channel|>commentary
 * <|constrain|>json`) is a small fraction of this.
 */
export const MAX_HEADER_TOKENS = 64;

/** Text a header token may hold: roles, names, recipients, channels and content types (no newline, no prose). */
const HEADER_TEXT = /^[A-Za-z0-9_.:=/ -]*$/;

type State = "expect-start" | "header" | "content";

export class HarmonyStreamParser {
  readonly messages: HarmonyMessage[] = [];
  readonly #tok: HarmonyTokenizer;
  #state: State;
  #knownRole: Role | null;
  #header: number[] = [];
  #current: HarmonyMessage | null = null;
  /**
   * The current message's content so far (set on the message when it ends, or when it is read); null when
   * the caller keeps no text (a streaming consumer that only forwards deltas): messages then end empty.
   */
  #text: TextBuilder | null;
  readonly #keepContent: boolean;
  #decoder: StreamDecoder;
  /**
   * How many earlier tokens the last push turned from header into content (0 almost always): a consumer
   * that tracks which tokens are content (chat logprobs) counts them in.
   */
  recovered = 0;

  /** roleHint "assistant": the stream starts right after the prompt's <|start|>assistant. */
  constructor(tok: HarmonyTokenizer, roleHint: Role | null = "assistant", options: { keepContent?: boolean } = {}) {
    this.#keepContent = options.keepContent ?? true;
    this.#text = this.#keepContent ? new TextBuilder() : null;
    this.#tok = tok;
    this.#knownRole = roleHint;
    this.#state = roleHint ? "header" : "expect-start";
    this.#decoder = new StreamDecoder(tok);
  }

  /** The message being streamed, if any. */
  get current(): HarmonyMessage | null {
    if (this.#current) this.#current.content = this.#text?.toString() ?? "";
    return this.#current;
  }

  /** Feeds one token; returns its events. */
  push(id: number): ParserEvent[] {
    const events: ParserEvent[] = [];
    this.pushTo(id, events);
    return events;
  }

  /** Feeds one token; its events go to `events` as they come (the per-token path: no array per token). */
  pushTo(id: number, events: ParserSink): void {
    this.recovered = 0;
    const stop = STOPS.get(id);
    switch (this.#state) {
      case "expect-start":
        if (id === Special.start) this.#beginHeader(null);
        else if (stop || this.#tok.isSpecial(id)) {
          // a stray stop or special token between messages: skip it
        } else {
          // text outside any message: an implicit assistant message
          this.#open({ role: "assistant", name: null, recipient: null, channel: null, content_type: null }, events);
          this.#content(id, events);
        }
        break;
      case "header":
        if (id === Special.message) {
          const fields = parseHeader(this.#tok.decode(this.#header), this.#knownRole);
          this.#open(fields, events);
        } else if (id === Special.start) {
          this.#beginHeader(null); // a header restarted: drop the broken one
        } else if (stop) {
          // A stop before <|message|>: the header text was really content.
          this.#headerAsContent(events);
          this.#close(stop, events);
        } else if (this.#header.length >= MAX_HEADER_TOKENS || !this.#canBeHeader(id)) {
          this.#headerAsContent(events);
          this.#content(id, events);
        } else {
          this.#header.push(id);
        }
        break;
      case "content":
        if (stop) this.#close(stop, events);
        else if (id === Special.start) {
          this.#close("eos", events);
          this.#beginHeader(null);
        } else this.#content(id, events);
        break;
    }
  }

  /** End of the token stream: closes an open message (a header without <|message|> becomes content). */
  finish(): ParserEvent[] {
    this.recovered = 0;
    const events: ParserEvent[] = [];
    if (this.#state === "content") this.#close("eos", events);
    else if (this.#state === "header" && this.#header.length > 0) {
      this.#headerAsContent(events);
      this.#close("eos", events);
    }
    this.#state = "expect-start";
    return events;
  }

  /** The tokens buffered as a header were content: they open an implicit message of the known role. */
  #headerAsContent(events: ParserSink): void {
    this.recovered = this.#header.length;
    const text = this.#tok.decode(this.#header);
    this.#header = [];
    this.#open({ role: this.#knownRole ?? "assistant", name: null, recipient: null, channel: null, content_type: null }, events);
    if (this.#current && text) {
      this.#text?.append(text);
      events.push({ kind: "delta", index: this.messages.length, text });
    }
  }

  #canBeHeader(id: number): boolean {
    if (id === Special.channel || id === Special.constrain) return true;
    if (this.#tok.isSpecial(id)) return false;
    const text = this.#tok.wholeText(id);
    return text !== null && HEADER_TEXT.test(text);
  }

  #beginHeader(knownRole: Role | null): void {
    this.#state = "header";
    this.#knownRole = knownRole;
    this.#header = [];
  }

  #open(fields: Pick<HarmonyMessage, "role" | "name" | "recipient" | "channel" | "content_type">, events: ParserSink): void {
    this.#current = { ...fields, content: "" };
    this.#text = this.#keepContent ? new TextBuilder() : null;
    this.#decoder = new StreamDecoder(this.#tok);
    this.#state = "content";
    events.push({ kind: "start", index: this.messages.length, message: { ...this.#current } });
  }

  #content(id: number, events: ParserSink): void {
    const text = this.#decoder.pushOne(id);
    if (text && this.#current) {
      this.#text?.append(text);
      events.push({ kind: "delta", index: this.messages.length, text });
    }
  }

  #close(terminator: "end" | "return" | "call" | "eos", events: ParserSink): void {
    const current = this.#current;
    if (current) {
      const tail = this.#decoder.flush();
      if (tail) {
        this.#text?.append(tail);
        events.push({ kind: "delta", index: this.messages.length, text: tail });
      }
      current.content = this.#text?.toString() ?? "";
      this.messages.push(current);
      events.push({ kind: "end", index: this.messages.length - 1, message: current, terminator });
    }
    this.#current = null;
    this.#state = "expect-start";
    this.#knownRole = null;
  }
}

/** Parses a whole completion. */
export function parseCompletion(tok: HarmonyTokenizer, tokens: readonly number[], roleHint: Role | null = "assistant"): HarmonyMessage[] {
  const p = new HarmonyStreamParser(tok, roleHint);
  for (const t of tokens) p.push(t);
  p.finish();
  return p.messages;
}
