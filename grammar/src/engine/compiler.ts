/**
 * Compiles constraint specs to xgrammar grammars for the o200k_harmony vocabulary and hands out
 * matchers. One per worker process: the TokenizerInfo (the vocabulary preprocessed by xgrammar) is
 * built once at creation. Compiled grammars are cached by the spec's content hash (least recently used
 * out past `cacheEntries`); a spec whose compile runs past `compileLimitMs` is refused, and the refusal
 * is cached too, so a pathological schema costs its compile time once. The WebAssembly compile cannot
 * be interrupted: the spec size bound (MAX_SPEC_BYTES) is what keeps a single compile finite.
 */
import { grammarErrors } from "../errors.ts";
import { type GrammarVariant, harmonyGrammar, type JsonGrammarSource } from "../harmony/grammar.ts";
import { type ConstraintSpec, constraintKey, isUnconstrained, validateConstraintSpec } from "../spec/constraint-spec.ts";
import { ConstraintMatcher } from "./matcher.ts";
import { ENDOFTEXT, harmonyVocabulary, VOCAB_SIZE } from "./vocabulary.ts";
import { type CompiledGrammar, type GrammarCompiler, loadXGrammar, type XGrammar } from "./xgrammar.ts";

export interface ConstraintCompilerOptions {
  /** Compiled grammars kept; older ones are disposed. */
  readonly cacheEntries: number;
  /** A compile slower than this is refused (compile_too_slow). */
  readonly compileLimitMs: number;
}

export const DEFAULT_COMPILER_OPTIONS: ConstraintCompilerOptions = { cacheEntries: 256, compileLimitMs: 2_000 };

/** A spec compiled for the vocabulary; pass it to matcher(). */
export interface CompiledConstraint {
  readonly key: string;
  /** Time this compile took, or took the first time when it came from the cache. */
  readonly compileMs: number;
  readonly cached: boolean;
  /** The EBNF compiled, for logs and debugging. */
  readonly ebnf: string;
}

interface Entry {
  readonly key: string;
  readonly compileMs: number;
  readonly ebnf: string;
  readonly grammar: CompiledGrammar;
  /** Set when the cache let it go and its handle was disposed. */
  evicted: boolean;
}

export class ConstraintCompiler {
  readonly #xg: XGrammar;
  readonly #compiler: GrammarCompiler;
  readonly #options: ConstraintCompilerOptions;
  /** Map order is insertion order: re-inserting on a hit keeps the least recently used first. */
  readonly #cache = new Map<string, Promise<Entry>>();
  readonly #entries = new WeakMap<CompiledConstraint, Entry>();
  #hits = 0;
  #misses = 0;

  private constructor(xg: XGrammar, compiler: GrammarCompiler, options: ConstraintCompilerOptions) {
    this.#xg = xg;
    this.#compiler = compiler;
    this.#options = options;
  }

  /**
   * Builds everything a constrained sequence needs, the tokenizer its jump-forward encodes with included:
   * a long stretch of one thread, which a caller can spend before it serves rather than in a request's step.
   */
  static async create(options: ConstraintCompilerOptions = DEFAULT_COMPILER_OPTIONS): Promise<ConstraintCompiler> {
    const xg = await loadXGrammar();
    const info = await xg.TokenizerInfo.createTokenizerInfo(harmonyVocabulary().encoded as string[], "byte_level", false, VOCAB_SIZE, [
      ENDOFTEXT,
    ]);
    // xgrammar's own cache is off: this class caches whole specs and bounds what it keeps.
    return new ConstraintCompiler(xg, await xg.GrammarCompiler.createGrammarCompiler(info, false), options);
  }

  get stats(): { hits: number; misses: number; entries: number } {
    return { hits: this.#hits, misses: this.#misses, entries: this.#cache.size };
  }

  /**
   * The compiled grammar for a spec; null when the spec constrains nothing (plain sampling). `variant`
   * "answer" is the grammar of what follows a reasoning budget's cut (see GrammarVariant).
   */
  async compile(spec: ConstraintSpec, variant: GrammarVariant = "completion"): Promise<CompiledConstraint | null> {
    if (isUnconstrained(validateConstraintSpec(spec))) return null;
    const key = `${constraintKey(spec)}:${variant}`;
    let pending = this.#cache.get(key);
    const cached = pending !== undefined;
    if (pending) {
      this.#hits++;
      this.#cache.delete(key);
    } else {
      this.#misses++;
      pending = this.#build(key, spec, variant);
    }
    this.#cache.set(key, pending);
    this.#evict();
    const entry = await pending;
    const compiled: CompiledConstraint = { key, compileMs: entry.compileMs, cached, ebnf: entry.ebnf };
    this.#entries.set(compiled, entry);
    return compiled;
  }

  /** A fresh matcher at the start of the completion (right after the prompt's <|start|>assistant). */
  async matcher(compiled: CompiledConstraint): Promise<ConstraintMatcher> {
    const entry = this.#entries.get(compiled);
    if (!entry) throw grammarErrors.create("matcher_misuse", { detail: "the compiled constraint is not from this compiler" });
    if (entry.evicted) throw grammarErrors.create("matcher_misuse", { detail: "the compiled constraint left the cache; compile it again" });
    return new ConstraintMatcher(await this.#xg.GrammarMatcher.createGrammarMatcher(entry.grammar, [ENDOFTEXT], true));
  }

  async #build(key: string, spec: ConstraintSpec, variant: GrammarVariant): Promise<Entry> {
    const started = performance.now();
    const ebnf = await harmonyGrammar(spec, this.#jsonGrammar, variant);
    const grammar = await this.#compiler.compileGrammar(ebnf);
    const compileMs = performance.now() - started;
    if (compileMs > this.#options.compileLimitMs) {
      grammar.dispose();
      throw grammarErrors.create("compile_too_slow", { ms: compileMs, limitMs: this.#options.compileLimitMs });
    }
    return { key, compileMs, ebnf, grammar, evicted: false };
  }

  readonly #jsonGrammar: JsonGrammarSource = async (schema, exact) => {
    // Compact JSON (no free whitespace, "," and ":" separators), as gpt-oss writes tool arguments.
    const grammar = await this.#xg.Grammar.fromJSONSchema(JSON.stringify(schema), false, -1, [",", ":"], exact);
    try {
      return grammar.toString();
    } finally {
      grammar.dispose();
    }
  };

  #evict(): void {
    for (const [key, pending] of this.#cache) {
      if (this.#cache.size <= this.#options.cacheEntries) return;
      this.#cache.delete(key);
      // Matchers hold their own reference to the compiled grammar: disposing the cache's handle is safe.
      pending
        .then((e) => {
          e.evicted = true;
          e.grammar.dispose();
        })
        .catch(() => {});
    }
  }
}
