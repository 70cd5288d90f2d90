/**
 * How deep a schema constrained decoding accepts may nest, and how long its repetitions may be.
 * xgrammar's converters recurse on the WebAssembly stack: a schema nested some fifty subschemas deep
 * (fewer across $refs), or a pattern with a few hundred nested groups, overflows it, and the module
 * aborts — after which every compile in that process fails, the Harmony guard of every later request
 * included, so one request could disable a worker's constrained decoding. And its compile time grows
 * with maxLength and with a pattern's repetition counts (seconds for a maxLength of a few dozen), while
 * the compile holds the worker's event loop. The nesting limits sit well under where the module breaks,
 * the repetition limits where a compile stays under about a second on the development machine
 * (PERFORMANCE, "Schemas that break the grammar engine, and schemas that stall it").
 */
import { grammarErrors } from "../errors.ts";
import { pointer, resolvePointer } from "./json-pointer.ts";

/** Subschemas on the deepest path from the root, a local $ref counting as one more (recursion through a $ref is a rule, not depth). */
export const MAX_SCHEMA_DEPTH = 32;
/** Groups nested inside one another in a pattern. */
export const MAX_PATTERN_GROUP_DEPTH = 16;
/** The largest `maxLength` of a string. */
export const MAX_STRING_LENGTH = 16;
/** The largest count in a pattern's `{n}`, `{n,}` or `{n,m}`. */
export const MAX_PATTERN_REPEAT = 64;

/** Keywords whose value is one subschema, a list of them, or a name → subschema map (as schema-support.ts walks them). */
const ONE = ["items", "additionalProperties"];
const LISTS = ["anyOf", "prefixItems"];
const MAPS = ["properties", "$defs", "definitions"];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * What a regex pattern costs the grammar engine: the deepest nesting of its groups and the largest count
 * in its bounded repetitions (`{n}`, `{n,}`, `{n,m}`), escapes and character classes skipped.
 */
export function patternShape(pattern: string): { groupDepth: number; largestRepeat: number } {
  let depth = 0;
  let groupDepth = 0;
  let largestRepeat = 0;
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\") i++;
    else if (inClass) inClass = c !== "]";
    else if (c === "[") inClass = true;
    else if (c === "(") groupDepth = Math.max(groupDepth, ++depth);
    else if (c === ")") depth = Math.max(0, depth - 1);
    else if (c === "{") {
      const m = /^\{(\d+)(?:,(\d*))?\}/.exec(pattern.slice(i, i + 64));
      if (m) largestRepeat = Math.max(largestRepeat, Number(m[1]), Number(m[2] || 0));
    }
  }
  return { groupDepth, largestRepeat };
}

/**
 * Throws schema_too_complex when a subschema sits deeper than MAX_SCHEMA_DEPTH (following local $refs),
 * a pattern nests groups deeper than MAX_PATTERN_GROUP_DEPTH or repeats more than MAX_PATTERN_REPEAT
 * times, or a maxLength exceeds MAX_STRING_LENGTH. The walk stops at the limit, so it
 * recurses at most MAX_SCHEMA_DEPTH + 1 frames; a $ref target is walked again only from a deeper point
 * than before (at most MAX_SCHEMA_DEPTH times), so shared definitions cost no more than that.
 */
export function assertSchemaWithinLimits(schema: unknown, where: string): void {
  const walkedAt = new Map<unknown, number>();
  const onPath = new Set<unknown>();
  const visit = (node: unknown, depth: number, path: string[]): void => {
    if (!isObject(node)) return;
    if (depth > MAX_SCHEMA_DEPTH)
      throw grammarErrors.create("schema_too_complex", {
        where,
        path: pointer(path),
        detail: `nests deeper than ${MAX_SCHEMA_DEPTH} subschemas`,
      });
    if (typeof node.pattern === "string") {
      const shape = patternShape(node.pattern);
      const detail =
        shape.groupDepth > MAX_PATTERN_GROUP_DEPTH
          ? `nests groups deeper than ${MAX_PATTERN_GROUP_DEPTH}`
          : shape.largestRepeat > MAX_PATTERN_REPEAT
            ? `repeats more than ${MAX_PATTERN_REPEAT} times`
            : undefined;
      if (detail) throw grammarErrors.create("schema_too_complex", { where, path: pointer([...path, "pattern"]), detail });
    }
    if (typeof node.maxLength === "number" && node.maxLength > MAX_STRING_LENGTH)
      throw grammarErrors.create("schema_too_complex", {
        where,
        path: pointer([...path, "maxLength"]),
        detail: `allows more than ${MAX_STRING_LENGTH} characters`,
      });
    for (const k of ONE) if (k in node) visit(node[k], depth + 1, [...path, k]);
    for (const k of LISTS)
      if (Array.isArray(node[k])) for (const [i, v] of (node[k] as unknown[]).entries()) visit(v, depth + 1, [...path, k, String(i)]);
    for (const k of MAPS) if (isObject(node[k])) for (const [name, v] of Object.entries(node[k])) visit(v, depth + 1, [...path, k, name]);
    if (typeof node.$ref !== "string") return;
    const target = resolvePointer(schema, node.$ref);
    if (target === undefined || onPath.has(target) || (walkedAt.get(target) ?? -1) >= depth + 1) return;
    walkedAt.set(target, depth + 1);
    onPath.add(target);
    visit(target, depth + 1, [...path, "$ref"]);
    onPath.delete(target);
  };
  onPath.add(schema);
  visit(schema, 0, []);
}
