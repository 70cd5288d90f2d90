/**
 * Puts one complete EBNF grammar (xgrammar's printout of a JSON schema) inside another: every rule name
 * gets a prefix, so several schemas and the Harmony rules share one grammar without clashes. Only rule
 * names change; string literals and character classes are copied untouched.
 */

const IDENT_START = /[A-Za-z_]/;
const IDENT = /[A-Za-z0-9_]/;

/** Index just past a quoted literal or character class opened at `start` (honouring backslash escapes). */
function skipQuoted(text: string, start: number, close: string): number {
  let i = start + 1;
  while (i < text.length && text[i] !== close) i += text[i] === "\\" ? 2 : 1;
  return i + 1;
}

/** `ebnf` with each rule name `n` renamed `${prefix}${n}`; its root becomes `${prefix}root`. */
export function prefixRules(ebnf: string, prefix: string): string {
  let out = "";
  let i = 0;
  while (i < ebnf.length) {
    const c = ebnf[i] as string;
    if (c === '"' || c === "[") {
      const end = skipQuoted(ebnf, i, c === '"' ? '"' : "]");
      out += ebnf.slice(i, end);
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
