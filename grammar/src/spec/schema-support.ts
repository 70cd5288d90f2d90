/**
 * Which JSON Schema keywords constrained decoding honours. xgrammar's converter silently ignores what it
 * does not implement (oneOf is read as anyOf, multipleOf and uniqueItems vanish), so a schema it only
 * half understands would yield output that fails validation; this walk refuses such a schema up front
 * with the keyword and its JSON Pointer. The allow-list holds what the driven-generation tests prove
 * (grammar/src/harmony/driven-generation.test.ts). It checks support only: the gateway's
 * json-schema-check.ts already checked the schema is well formed.
 */
import { grammarErrors } from "../errors.ts";
import { pointer } from "./json-pointer.ts";
import { assertSchemaWithinLimits } from "./schema-limits.ts";

export type JsonSchema = boolean | { readonly [keyword: string]: unknown };

/** Keywords that only annotate: accepted anywhere, never affect the grammar. */
const ANNOTATIONS = ["title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated", "readOnly", "writeOnly"];

/**
 * Keywords whose every value xgrammar turns into correct grammar. Left out on purpose, because the
 * tests caught xgrammar 0.1.27 getting them wrong: minLength (a character outside ASCII counts as
 * several; maxLength stays: that miscount only ever makes strings shorter), and numeric bounds except on
 * integers (a number minimum of -50 admits -50.147). Integer bounds are enforced by our own rule
 * (harmony/integer-range.ts), since xgrammar's admits 134 under a maximum of 130.
 */
const VALUE_KEYWORDS = ["type", "required", "enum", "const", "minItems", "maxItems", "maxLength", "pattern", "format", "$ref"];

/** Numeric bounds: honoured on integers only, through our own range rule (harmony/integer-range.ts). */
const NUMERIC_BOUNDS = new Set(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]);

/** Keywords holding one subschema, a list of them, or a name → subschema map. */
const SUBSCHEMA = ["items", "additionalProperties"];
const SUBSCHEMA_LISTS = ["anyOf", "prefixItems"];
const SUBSCHEMA_MAPS = ["properties", "$defs", "definitions"];

const SUPPORTED = new Set([...ANNOTATIONS, ...VALUE_KEYWORDS, ...NUMERIC_BOUNDS, ...SUBSCHEMA, ...SUBSCHEMA_LISTS, ...SUBSCHEMA_MAPS]);

/**
 * String formats whose xgrammar grammar ajv-formats agrees with. Not ipv4 (xgrammar admits leading
 * zeros, "047"), date or date-time (it admits February 30), time (it admits 09:22:60), email (it
 * admits a domain without a dot).
 */
export const SUPPORTED_FORMATS: ReadonlySet<string> = new Set(["uuid"]);

/** Regex features xgrammar's pattern converter does not implement: lookaround, backreferences, named groups. */
const UNSUPPORTED_PATTERN = /\(\?[=!<]|\\[1-9]|\\k</;

/**
 * A pattern's wildcards — ".", a negated class "[^…]", \S \W \D — which xgrammar 0.1.27 matches a byte
 * at a time: "a..c" admits "aִc" (one two-byte character in the middle). Returns the construct, or
 * undefined when the pattern has none.
 */
function patternWildcard(pattern: string): string | undefined {
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\") {
      if (/[SWD]/.test(pattern[i + 1] ?? "")) return `\\${pattern[i + 1]}`;
      i++;
    } else if (inClass) inClass = c !== "]";
    else if (c === "[") {
      if (pattern[i + 1] === "^") return "[^…]";
      inClass = true;
      if (pattern[i + 1] === "]") i++; // a leading "]" is a literal
    } else if (c === ".") return ".";
  }
  return undefined;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Throws unsupported_schema_keyword for the first keyword (depth first) constrained decoding cannot
 * enforce, and schema_too_complex for a schema past the grammar engine's limits (schema-limits.ts).
 * `where` names the schema for the message ("response_format", "tools[2].parameters").
 */
export function assertSchemaSupported(schema: JsonSchema, where: string): void {
  assertKeywordsSupported(schema, where);
  assertSchemaWithinLimits(schema, where);
}

function assertKeywordsSupported(schema: JsonSchema, where: string): void {
  const stack: { node: unknown; path: string[] }[] = [{ node: schema, path: [] }];
  while (stack.length > 0) {
    const { node, path } = stack.pop() as { node: unknown; path: string[] };
    if (typeof node === "boolean" || !isObject(node)) continue;
    for (const [keyword, value] of Object.entries(node)) {
      const at = [...path, keyword];
      const refuse = (what: string) => grammarErrors.create("unsupported_schema_keyword", { keyword: what, path: pointer(at), where });
      if (!SUPPORTED.has(keyword)) throw refuse(keyword);
      if (NUMERIC_BOUNDS.has(keyword) && node.type !== "integer") throw refuse(`${keyword} (only on "type": "integer")`);
      if (NUMERIC_BOUNDS.has(keyword) && !(typeof value === "number" && Math.abs(value) <= Number.MAX_SAFE_INTEGER))
        throw refuse(`${keyword} (a number within ±2^53)`);
      if (keyword === "format" && !SUPPORTED_FORMATS.has(String(value))) throw refuse(`format: ${String(value)}`);
      if (keyword === "pattern" && UNSUPPORTED_PATTERN.test(String(value))) throw refuse("pattern (lookaround or backreference)");
      const wildcard = keyword === "pattern" ? patternWildcard(String(value)) : undefined;
      if (wildcard) throw refuse(`pattern (the wildcard ${wildcard}: spell out the characters allowed)`);
      if (keyword === "$ref" && !String(value).startsWith("#")) throw refuse("$ref (remote)");
      if (SUBSCHEMA.includes(keyword)) stack.push({ node: value, path: at });
      if (SUBSCHEMA_LISTS.includes(keyword) && Array.isArray(value))
        for (const [i, v] of value.entries()) stack.push({ node: v, path: [...at, String(i)] });
      if (SUBSCHEMA_MAPS.includes(keyword) && isObject(value))
        for (const [name, v] of Object.entries(value)) stack.push({ node: v, path: [...at, name] });
    }
  }
}
