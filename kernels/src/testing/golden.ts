/**
 * Access to the golden cases committed in test/fixtures/golden: synthetic checkpoints with logits from
 * OpenAI's reference implementation, and the tolerance checks stated in their README.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export interface GoldenCase {
  name: string;
  dir: string;
  tokens: number[];
  shape: [number, number];
  logits: Float32Array;
  fp32: { top1: number[]; top1_margin: number[]; greedy: number[]; greedy_margins: number[] };
}

/** The repository's test fixtures (test/fixtures): golden checkpoints and Harmony cases, kept in git so a clone runs TEST alone. */
export function fixturesDir(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), "../../../test/fixtures");
}

export function goldenCases(): GoldenCase[] {
  const root = join(fixturesDir(), "golden");
  if (!existsSync(root)) throw new Error(`golden cases not found at ${root}`);
  return readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(root, d.name, "expected.json")))
    .map((d) => {
      const dir = join(root, d.name);
      const e = JSON.parse(readFileSync(join(dir, "expected.json"), "utf8"));
      const raw = readFileSync(join(dir, e.logits_file as string));
      return {
        name: d.name,
        dir,
        tokens: e.tokens,
        shape: e.logits_shape,
        logits: new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4),
        fp32: e.fp32,
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The rows a sequence's feed returned, as one array. */
export function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if ((row[i] as number) > (row[best] as number)) best = i;
  return best;
}

/** ‖actual − expected‖₂ / ‖expected‖₂ over equal-length arrays. */
export function relL2(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new RangeError(`relL2: ${actual.length} values against ${expected.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < expected.length; i++) {
    num += ((actual[i] as number) - (expected[i] as number)) ** 2;
    den += (expected[i] as number) ** 2;
  }
  return Math.sqrt(num / den);
}

export interface Comparison {
  relL2: number;
  maxAbs: number;
  /** Positions whose top-1 differs although the reference margin exceeds the threshold. */
  top1Mismatches: number[];
}

/**
 * Compares `actual` ([rows, vocab]) with the reference. `rows` (default: all) compares only the first
 * rows, for a run that fed a prefix of the case's tokens: a causal model's row t depends on tokens ≤ t only.
 */
export function compareLogits(actual: ArrayLike<number>, g: GoldenCase, marginThreshold: number, rows = g.shape[0]): Comparison {
  const V = g.shape[1];
  if (!Number.isInteger(rows) || rows < 1 || rows > g.shape[0]) throw new RangeError(`rows must be in 1..${g.shape[0]}, got ${rows}`);
  if (actual.length !== rows * V) throw new RangeError(`actual has ${actual.length} values, expected ${rows} rows of ${V}`);
  const T = rows;
  let num = 0;
  let den = 0;
  let maxAbs = 0;
  for (let i = 0; i < T * V; i++) {
    const d = (actual[i] as number) - (g.logits[i] as number);
    num += d * d;
    den += (g.logits[i] as number) ** 2;
    maxAbs = Math.max(maxAbs, Math.abs(d));
  }
  const top1Mismatches: number[] = [];
  for (let t = 0; t < T; t++) {
    const row = Array.prototype.slice.call(actual, t * V, (t + 1) * V) as number[];
    if ((g.fp32.top1_margin[t] as number) > marginThreshold && argmax(row) !== g.fp32.top1[t]) top1Mismatches.push(t);
  }
  return { relL2: Math.sqrt(num / den), maxAbs, top1Mismatches };
}
