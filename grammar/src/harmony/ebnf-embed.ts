/**
 * Puts one complete EBNF grammar (xgrammar's printout of a JSON schema) inside another: every rule name
 * gets a prefix, so several schemas and the Harmony rules share one grammar without clashes, and every
 * character class loses the marker byte 0x1F. Some of xgrammar's JSON rules admit raw control
 * characters (its bounded-length strings use [^"\\\r\n], a pattern's "." becomes [\0-\U0010ffff]),
 * which would let a Harmony special's marker (markers.ts) appear inside JSON; raw control characters are
 * not valid inside JSON strings anyway. String literals are copied untouched.
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

/** A character class (text from "[" to "]") rewritten so that it never matches the marker byte. */
export function withoutMarker(cls: string): string {
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
  // Negated: exclude 0x1F too. Positive: cut 0x1F out of any range holding it.
  const kept = negated
    ? [...ranges, [MARKER, MARKER] as [number, number]]
    : ranges.flatMap(([lo, hi]) =>
        lo <= MARKER && MARKER <= hi
          ? (
              [
                [lo, MARKER - 1],
                [MARKER + 1, hi],
              ] as [number, number][]
            ).filter(([a, b]) => a <= b)
          : [[lo, hi] as [number, number]],
      );
  if (kept.length === 0) return cls; // a class of only 0x1F: cannot occur in xgrammar's JSON rules
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
      out += c === "[" ? withoutMarker(ebnf.slice(i, end)) : ebnf.slice(i, end);
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
