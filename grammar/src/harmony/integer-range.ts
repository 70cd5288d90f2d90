/**
 * Integer bounds (minimum, maximum and the exclusive forms on `"type": "integer"`), enforced by our own
 * rule because xgrammar 0.1.27 gets some ranges wrong (for 0..130 it writes "1" [0-3] [0-9], admitting
 * 131..139). Before a schema goes to xgrammar each bounded integer becomes a placeholder const string;
 * after, the placeholder's literal in the printed grammar becomes a reference to a rule built here: the
 * JSON spellings (no leading zeros, "-" for negatives) of exactly the integers in range.
 */
import type { JsonSchema } from "../spec/schema-support.ts";

const BOUNDS = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** The inclusive integer range a schema node's bounds allow; null ends are unbounded. */
export function integerBounds(node: Record<string, unknown>): { lo: number | null; hi: number | null } {
  const num = (k: string) => (typeof node[k] === "number" ? (node[k] as number) : null);
  const los = [num("minimum"), num("exclusiveMinimum")].map((v, i) => (v === null ? null : i === 0 ? Math.ceil(v) : Math.floor(v) + 1));
  const his = [num("maximum"), num("exclusiveMaximum")].map((v, i) => (v === null ? null : i === 0 ? Math.floor(v) : Math.ceil(v) - 1));
  const pick = (vs: (number | null)[], f: (...n: number[]) => number) => {
    const set = vs.filter((v): v is number => v !== null);
    return set.length === 0 ? null : f(...set);
  };
  return { lo: pick(los, Math.max), hi: pick(his, Math.min) };
}

export const hasIntegerBounds = (node: Record<string, unknown>): boolean => BOUNDS.some((k) => k in node);

const digits = (n: number): string => String(n);
const ANY = "[0-9]";

/** Alternatives (EBNF sequences) for the same-length digit strings from x to y (x ≤ y, leading zeros allowed). */
function sameLength(x: string, y: string): string[] {
  if (x === y) return [`"${x}"`];
  let p = 0;
  while (x[p] === y[p]) p++;
  const prefix = p > 0 ? `"${x.slice(0, p)}" ` : "";
  const rest = x.length - p - 1;
  const [xd, yd] = [Number(x[p]), Number(y[p])];
  const tailX = x.slice(p + 1);
  const tailY = y.slice(p + 1);
  const out: string[] = [];
  const full = (s: string) => /^0*$/.test(s);
  const top = (s: string) => /^9*$/.test(s);
  // From x up to xd followed by 9s; the middle digits with any tail; yd followed by 0s up to y.
  const lowStart = full(tailX) ? xd : xd + 1;
  const highEnd = top(tailY) ? yd : yd - 1;
  if (!full(tailX)) for (const alt of sameLength(tailX, "9".repeat(rest))) out.push(`${prefix}"${xd}" ${alt}`);
  if (lowStart <= highEnd) {
    const digit = lowStart === highEnd ? `"${lowStart}"` : `[${lowStart}-${highEnd}]`;
    out.push(`${prefix}${digit}${` ${ANY}`.repeat(rest)}`);
  }
  if (!top(tailY)) for (const alt of sameLength("0".repeat(rest), tailY)) out.push(`${prefix}"${yd}" ${alt}`);
  return out;
}

/** Alternatives for the non-negative integers from a to b (b null: unbounded), JSON spelling. */
function nonNegative(a: number, b: number | null): string[] {
  const out: string[] = [];
  const lastLength = b === null ? digits(a).length : digits(b).length;
  for (let len = digits(a).length; len <= lastLength; len++) {
    const lo = Math.max(a, len === 1 ? 0 : 10 ** (len - 1));
    const hi = b === null ? 10 ** len - 1 : Math.min(b, 10 ** len - 1);
    if (lo <= hi) out.push(...sameLength(digits(lo), digits(hi)));
  }
  if (b === null) out.push(`[1-9]${` ${ANY}`.repeat(lastLength)} ${ANY}*`);
  return out;
}

/** The EBNF alternation matching exactly the JSON integers in [lo, hi]. */
export function integerRangeEbnf(lo: number | null, hi: number | null): string {
  const alts: string[] = [];
  // Negative part: "-" then the magnitudes from max(1, -hi) to -lo.
  if (lo === null || lo < 0) {
    const minMag = hi === null || hi >= 0 ? 1 : -hi;
    const maxMag = lo === null ? null : -lo;
    for (const alt of nonNegative(minMag, maxMag)) alts.push(`"-" ${alt}`);
  }
  if (hi === null || hi >= 0) alts.push(...nonNegative(Math.max(lo ?? 0, 0), hi));
  return alts.map((a) => `(${a})`).join(" | ");
}

/** A placeholder string no schema would hold, and how xgrammar prints it as a const. */
const placeholder = (k: number) => `__expertmesh_integer_range_${k}__`;
const printedLiteral = (k: number) => `"\\"${placeholder(k)}\\""`;

/** `schema` with bounded integers replaced by placeholders, and the rules those stand for. */
export function extractIntegerRanges(schema: JsonSchema): { schema: JsonSchema; ranges: string[] } {
  const ranges: string[] = [];
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk);
    if (!isObject(node)) return node;
    if (node.type === "integer" && hasIntegerBounds(node)) {
      const { lo, hi } = integerBounds(node);
      ranges.push(integerRangeEbnf(lo, hi));
      return { const: placeholder(ranges.length - 1) };
    }
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, k === "const" || k === "enum" ? v : walk(v)]));
  };
  return { schema: walk(schema) as JsonSchema, ranges };
}

/** The printed grammar with each placeholder literal turned into its range rule. */
export function restoreIntegerRanges(ebnf: string, ranges: readonly string[]): string {
  let out = ebnf;
  ranges.forEach((range, k) => {
    out = `${out.replaceAll(printedLiteral(k), `integer_range_${k}`)}\ninteger_range_${k} ::= ${range}`;
  });
  return out;
}
