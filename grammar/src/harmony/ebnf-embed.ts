/**
 * Puts one complete EBNF grammar (xgrammar's printout of a JSON schema) inside another: every rule name
 * gets a prefix, so several schemas and the Harmony rules share one grammar without clashes, and every
 * character class is made safe for JSON text. Some of xgrammar's JSON string rules admit characters a
 * JSON string cannot hold raw: its bounded-length strings use [^"\\\r\n] (a tab or any control
 * character passes), a pattern's "." becomes [\0-\U0010ffff] (a raw quote or backslash passes, ending
 * or breaking the string). Those would also let a Harmony special's marker byte (markers.ts) into JSON.
 * String literals are copied untouched.
 */

const IDENT_START = /[A-Za-z_]/;
const IDENT = /[A-Za-z0-9_]/;

/** Index just past a quoted literal or character class opened at `start` (honouring backslash escapes). */
function skipQuoted(text: string, start: number, close: string): number {
  let i = start + 1;
  while (i < text.length && text[i] !== close) i += text[i] === "\\" ? 2 : 1;
  return i + 1;
}

const SIMPLE_ESCAPES: Record<string, number> = { n: 10, r: 13, t: 9, f: 12, v: 11, b: 8, "0": 0 };
const MARKER = 0x1f;

/** The code point of the class item at `i` (a character or an escape) and the index after it. */
function classItem(cls: string, i: number): [number, number] {
  if (cls[i] !== "\\") return [cls.codePointAt(i) as number, i + ((cls.codePointAt(i) as number) > 0xffff ? 2 : 1)];
  const c = cls[i + 1] as string;
  const hex = { x: 2, u: 4, U: 8 }[c];
  if (hex) return [Number.parseInt(cls.slice(i + 2, i + 2 + hex), 16), i + 2 + hex];
  return [SIMPLE_ESCAPES[c] ?? (c.codePointAt(0) as number), i + 2];
}

const escapeCode = (cp: number): string => `\\U${cp.toString(16).padStart(8, "0")}`;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
/** What a JSON string may never hold raw: control characters (the marker among them), quote, backslash. */
const NEVER_RAW: [number, number][] = [
  [0, 0x1f],
  [QUOTE, QUOTE],
  [BACKSLASH, BACKSLASH],
];

/** [lo, hi] minus the ranges `cut` (sorted, disjoint). */
function subtract([lo, hi]: [number, number], cut: [number, number][]): [number, number][] {
  const out: [number, number][] = [];
  let from = lo;
  for (const [a, b] of cut) {
    if (b < from || a > hi) continue;
    if (a > from) out.push([from, a - 1]);
    from = Math.max(from, b + 1);
  }
  if (from <= hi) out.push([from, hi]);
  return out;
}

/**
 * A character class (text from "[" to "]") rewritten for JSON text. In xgrammar's JSON rules a negated
 * class only ever matches string content, so it also excludes what a string may not hold raw; a
 * positive range (lo < hi) loses the same characters, while single characters stay — they are
 * structure (`[ \n\t]` whitespace, `["\\/bfnrt]` after a backslash) — except the marker byte.
 */
export function jsonSafeClass(cls: string): string {
  const negated = cls[1] === "^";
  const body = cls.slice(negated ? 2 : 1, -1);
  const ranges: [number, number][] = [];
  for (let i = 0; i < body.length; ) {
    const [lo, next] = classItem(body, i);
    if (body[next] === "-" && next + 1 < body.length) {
      const [hi, after] = classItem(body, next + 1);
      ranges.push([lo, hi]);
      i = after;
    } else {
      ranges.push([lo, lo]);
      i = next;
    }
  }
  const kept = negated
    ? [...ranges, ...NEVER_RAW]
    : ranges.flatMap((r) => (r[0] === r[1] ? subtract(r, [[MARKER, MARKER]]) : subtract(r, NEVER_RAW)));
  if (kept.length === 0) return cls; // nothing left: cannot occur in xgrammar's JSON rules
  const items = kept.map(([lo, hi]) => (lo === hi ? escapeCode(lo) : `${escapeCode(lo)}-${escapeCode(hi)}`));
  return `[${negated ? "^" : ""}${items.join("")}]`;
}

/** `ebnf` with each rule name `n` renamed `${prefix}${n}`; its root becomes `${prefix}root`. */
export function prefixRules(ebnf: string, prefix: string): string {
  let out = "";
  let i = 0;
  while (i < ebnf.length) {
    const c = ebnf[i] as string;
    if (c === '"' || c === "[") {
      const end = skipQuoted(ebnf, i, c === '"' ? '"' : "]");
      out += c === "[" ? jsonSafeClass(ebnf.slice(i, end)) : ebnf.slice(i, end);
      i = end;
    } else if (IDENT_START.test(c)) {
      let end = i + 1;
      while (end < ebnf.length && IDENT.test(ebnf[end] as string)) end++;
      // Built-ins are not rules: a call (TagDispatch(...)), its keyword arguments (stop_eos=true).
      const name = ebnf.slice(i, end);
      const builtin = ebnf[end] === "(" || ebnf[end] === "=" || name === "true" || name === "false";
      out += builtin ? name : prefix + name;
      i = end;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}
