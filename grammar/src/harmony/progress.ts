/**
 * Where a completion stands in Harmony terms, token by token: in a header or in a message body, and on
 * which channel. The worker's reasoning budget counts the body tokens of reasoning messages (channel
 * analysis, no recipient: what the gateway reports as reasoning) with it. It reads token ids only and
 * works with or without a grammar, so an unconstrained request can have a budget too.
 */
import { harmonyVocabulary } from "../engine/vocabulary.ts";
import { HarmonyToken } from "./markers.ts";

const decoder = new TextDecoder("utf-8");

export class HarmonyProgress {
  /** Tokens of the current header, after its <|start|> (the completion starts inside one, spec §6.2). */
  #header: number[] = [];
  #inBody = false;
  #reasoningBody = false;
  /** Body tokens of reasoning messages so far, across messages. */
  reasoningTokens = 0;

  /** Inside the body of a reasoning message (after its <|message|>, before its end). */
  get inReasoning(): boolean {
    return this.#inBody && this.#reasoningBody;
  }

  push(id: number): void {
    if (this.#inBody) {
      if (id === HarmonyToken.end || id === HarmonyToken.return || id === HarmonyToken.call) {
        this.#inBody = false;
        this.#header = [];
      } else if (this.#reasoningBody) this.reasoningTokens++;
      return;
    }
    if (id === HarmonyToken.message) {
      this.#inBody = true;
      this.#reasoningBody = isReasoningHeader(this.#header);
      this.#header = [];
    } else if (id === HarmonyToken.start) this.#header = [];
    else this.#header.push(id);
  }
}

/** A header on channel analysis with no recipient (a call on the analysis channel is not reasoning). */
function isReasoningHeader(header: readonly number[]): boolean {
  const vocab = harmonyVocabulary();
  let text = "";
  for (const id of header) {
    if (id === HarmonyToken.channel) text += "<|channel|>";
    else if (id === HarmonyToken.constrain) text += "<|constrain|>";
    else text += decoder.decode(vocab.bytes[id] ?? new Uint8Array());
  }
  return /<\|channel\|>analysis(?![\w.])/.test(text) && !/\bto=/.test(text);
}
