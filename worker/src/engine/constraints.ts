/**
 * Constrained decoding in the worker: a request's constraint spec (built by the gateway) compiled once
 * per content hash, one grammar matcher per constrained sequence, the allowed-token bitmask handed to
 * the native sampler before each sampled token, and the tokens the worker appends without sampling:
 * a continuation the grammar allows alone (jump-forward: fed as prefill rows of the next step instead
 * of one step per token) and the answer header a reasoning budget forces.
 *
 * Matchers follow the sequence's output tokens, never its KV cache: preemption by recompute and
 * prefix-cache reuse recompute KV for tokens the matcher has already taken, so neither rolls it back.
 */
import type { AppError } from "@expertmesh/common";
import {
  BITMASK_WORDS,
  CONSTRAINT_SPEC_VERSION,
  type ConstraintCompiler,
  type ConstraintMatcher,
  type ConstraintSpec,
  encodeText,
  HarmonyProgress,
  HarmonyToken,
  isUnconstrained,
  parseConstraintSpec,
  VOCAB_SIZE,
} from "@expertmesh/grammar";
import type { GenerateRequest } from "@expertmesh/proto/worker";
import { workerErrors } from "../errors.ts";

/** Reports what constraints cost (the worker's metrics). */
export interface ConstraintObserver {
  compiled(ms: number, cached: boolean): void;
  forced(tokens: number): void;
  truncated(): void;
}

export interface ConstraintOptions {
  /** Creates the grammar compiler on first use (building the vocabulary's tables takes a while). */
  readonly compiler: () => Promise<ConstraintCompiler>;
  readonly observer?: ConstraintObserver;
}

const invalid = (problem: string) => workerErrors.create("invalid_argument", { field: "constraint", problem });

/** The request's spec, checked; undefined when it sent none. Throws invalid_argument. */
function specOf(request: GenerateRequest): ConstraintSpec | undefined {
  const c = request.constraint;
  if (!c) return undefined;
  if (c.version !== CONSTRAINT_SPEC_VERSION)
    throw invalid(`version ${c.version} is not the version this worker reads (${CONSTRAINT_SPEC_VERSION})`);
  let wire: unknown;
  try {
    wire = JSON.parse(c.specJson);
  } catch (e) {
    throw invalid(`spec_json is not JSON: ${(e as Error).message}`);
  }
  try {
    return parseConstraintSpec(wire);
  } catch (e) {
    throw invalid((e as AppError).message);
  }
}

/** One per worker: opens the per-sequence state of each request that needs one. */
export class Constraints {
  readonly #options: ConstraintOptions;
  #compiler: Promise<ConstraintCompiler> | undefined;

  constructor(options: ConstraintOptions) {
    this.#options = options;
  }

  /** Checks the request's constraint fields now, so a bad spec fails before anything is queued. */
  check(request: GenerateRequest): void {
    specOf(request);
  }

  /**
   * The sequence's constraint state; undefined when the request constrains nothing and has no budget
   * (sampling stays exactly as without this module). Throws invalid_argument for a spec the grammar
   * engine refuses or that compiles too slowly.
   */
  async open(request: GenerateRequest, vocab: number): Promise<SequenceConstraint | undefined> {
    const spec = specOf(request);
    const budget = request.maxReasoningTokens;
    const constrained = spec !== undefined && !isUnconstrained(spec);
    if (!constrained && budget === 0) return undefined;
    if (constrained && vocab < VOCAB_SIZE) throw invalid(`needs the o200k_harmony vocabulary; this model's has ${vocab} tokens`);
    if (!constrained) return new SequenceConstraint(undefined, undefined, budget, this.#options.observer);
    this.#compiler ??= this.#options.compiler();
    const compiler = await this.#compiler;
    try {
      const matcher = await this.#matcher(compiler, spec, "completion");
      const answer = budget > 0 ? () => this.#matcher(compiler, spec, "answer") : undefined;
      return new SequenceConstraint(matcher, answer, budget, this.#options.observer);
    } catch (e) {
      throw invalid((e as Error).message);
    }
  }

  async #matcher(compiler: ConstraintCompiler, spec: ConstraintSpec, variant: "completion" | "answer"): Promise<ConstraintMatcher> {
    const compiled = await compiler.compile(spec, variant);
    if (!compiled) throw new Error("a constrained spec compiled to nothing");
    this.#options.observer?.compiled(compiled.compileMs, compiled.cached);
    return compiler.matcher(compiled);
  }
}

/** One sequence's walk: the mask before each sampled token, and what is forced after it. */
export class SequenceConstraint {
  readonly #budget: number;
  readonly #progress = new HarmonyProgress();
  readonly #answer: (() => Promise<ConstraintMatcher>) | undefined;
  readonly #observer: ConstraintObserver | undefined;
  #matcher: ConstraintMatcher | undefined;
  #mask: Int32Array | undefined;
  /** The budget ended the reasoning. */
  truncated = false;

  constructor(
    matcher: ConstraintMatcher | undefined,
    answer: (() => Promise<ConstraintMatcher>) | undefined,
    budget: number,
    observer: ConstraintObserver | undefined,
  ) {
    this.#matcher = matcher;
    this.#answer = answer;
    this.#budget = budget;
    this.#observer = observer;
  }

  /** The grammar is complete: nothing may follow (the last <|return|> or <|call|> was taken). */
  get terminated(): boolean {
    return this.#matcher?.isTerminated ?? false;
  }

  /** The allowed-token bitmask for the next sampled token; undefined when sampling is free. */
  async nextMask(): Promise<Int32Array | undefined> {
    if (!this.#matcher) return undefined;
    this.#mask ??= new Int32Array(BITMASK_WORDS);
    await this.#matcher.fillNextTokenBitmask(this.#mask);
    return this.#mask;
  }

  /** Takes a sampled token; returns the tokens forced after it, in order (often none). */
  async advance(token: number): Promise<number[]> {
    if (this.#matcher && !this.#matcher.accept(token))
      throw workerErrors.create("engine_failure", {
        detail: `the sampler returned token ${token}, which the constraint's mask did not allow`,
      });
    this.#progress.push(token);
    const forced: number[] = [];
    if (this.#budget > 0 && !this.truncated && this.#progress.inReasoning && this.#progress.reasoningTokens >= this.#budget)
      forced.push(...(await this.#cut()));
    forced.push(...this.#jumpForward());
    if (forced.length > 0) this.#observer?.forced(forced.length);
    return forced;
  }

  dispose(): void {
    this.#matcher?.dispose();
    this.#matcher = undefined;
  }

  /** Ends the reasoning message; the answer's header follows (fixed, or from the answer grammar). */
  async #cut(): Promise<number[]> {
    this.truncated = true;
    this.#observer?.truncated();
    const next = [HarmonyToken.end, HarmonyToken.start, ...encodeText("assistant")];
    if (this.#answer) {
      // The answer grammar starts after `<|start|>assistant`: its jump-forward adds the header it allows.
      this.#matcher?.dispose();
      this.#matcher = await this.#answer();
    } else next.push(HarmonyToken.channel, ...encodeText("final"), HarmonyToken.message);
    for (const t of next) this.#progress.push(t);
    return next;
  }

  /** The continuation the grammar allows alone, as tokens the matcher has taken. */
  #jumpForward(): number[] {
    const matcher = this.#matcher;
    if (!matcher) return [];
    const out: number[] = [];
    for (const piece of matcher.jumpForward()) {
      for (const t of "token" in piece ? [piece.token] : encodeText(piece.text)) {
        // A text piece's tokens may split differently from what the grammar expects at its end: stop there.
        if (!matcher.accept(t)) return out;
        this.#progress.push(t);
        out.push(t);
      }
    }
    return out;
  }
}
