/**
 * One sequence's walk through a compiled constraint: which tokens may come next (a bitmask with one bit
 * per vocabulary id, the shape the native sampler will take), acceptance of the sampled token, rollback
 * when tokens are taken back (preemption by recompute, prefix-cache reuse), and the forced continuation
 * when the grammar allows exactly one (jump-forward). It does not sample and does not tokenize.
 */
import { grammarErrors } from "../errors.ts";
import { tokenOfMarkerLetter } from "../harmony/markers.ts";
import { VOCAB_SIZE } from "./vocabulary.ts";
import type { GrammarMatcher } from "./xgrammar.ts";

/** 32-bit words per bitmask row: bit (id & 31) of word (id >> 5) set = token id allowed. */
export const BITMASK_WORDS = Math.ceil(VOCAB_SIZE / 32);

/** A forced continuation: special tokens by id, ordinary text as text for the caller to tokenize. */
export type JumpForwardPiece = { readonly token: number } | { readonly text: string };

const misuse = (detail: string) => grammarErrors.create("matcher_misuse", { detail });

export class ConstraintMatcher {
  readonly #matcher: GrammarMatcher;
  #accepted = 0;
  #disposed = false;

  constructor(matcher: GrammarMatcher) {
    this.#matcher = matcher;
  }

  /** Tokens accepted and not rolled back: the most rollback() can take back. */
  get acceptedTokens(): number {
    return this.#accepted;
  }

  /** The grammar is complete (the last message's <|return|> or <|call|> was accepted). */
  get isTerminated(): boolean {
    return this.#matcher.isTerminated();
  }

  /** Accepts the sampled token; false (and no state change) when the grammar does not allow it. */
  accept(token: number): boolean {
    this.#live();
    if (!Number.isInteger(token) || token < 0 || token >= VOCAB_SIZE) throw misuse(`token id ${token} is outside the vocabulary`);
    if (this.isTerminated) return false;
    const ok = this.#matcher.acceptToken(token);
    if (ok) this.#accepted++;
    return ok;
  }

  /** Takes back the last `count` accepted tokens. */
  rollback(count: number): void {
    this.#live();
    if (!Number.isInteger(count) || count < 0 || count > this.#accepted)
      throw misuse(`cannot roll back ${count} tokens, ${this.#accepted} were accepted`);
    if (count === 0) return;
    this.#matcher.rollBack(count);
    this.#accepted -= count;
  }

  /**
   * Writes the allowed-token bitmask into row `row` of `out` (rows of BITMASK_WORDS words, one per batch
   * row). A terminated matcher allows nothing: the caller has stopped the sequence already.
   */
  async fillNextTokenBitmask(out: Int32Array, row = 0): Promise<void> {
    this.#live();
    const start = row * BITMASK_WORDS;
    if (!Number.isInteger(row) || row < 0 || start + BITMASK_WORDS > out.length)
      throw misuse(`bitmask row ${row} does not fit a buffer of ${out.length} words`);
    if (this.isTerminated) {
      out.fill(0, start, start + BITMASK_WORDS);
      return;
    }
    const mask = await this.#matcher.getNextTokenBitmask();
    out.set(mask.subarray(0, BITMASK_WORDS), start);
  }

  /** The continuation the grammar forces from here (possibly none), split into specials and text. */
  jumpForward(): JumpForwardPiece[] {
    this.#live();
    if (this.isTerminated) return [];
    const forced = this.#matcher.findJumpForwardString();
    const pieces: JumpForwardPiece[] = [];
    let text = "";
    for (let i = 0; i < forced.length; i++) {
      const token = forced[i] === "\x1f" ? tokenOfMarkerLetter(forced[i + 1] ?? "") : undefined;
      if (forced[i] !== "\x1f") text += forced[i];
      else if (token === undefined)
        break; // a marker cut in half at the end: not forced as a whole
      else {
        if (text) pieces.push({ text });
        text = "";
        pieces.push({ token });
        i++;
      }
    }
    if (text) pieces.push({ text });
    return pieces;
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#matcher.dispose();
  }

  #live(): void {
    if (this.#disposed) throw misuse("the matcher was disposed");
  }
}
