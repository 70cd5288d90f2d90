/**
 * How deep a schema constrained decoding accepts may nest. xgrammar's converters recurse on the
 * WebAssembly stack: a schema nested some fifty subschemas deep (fewer across $refs), or a pattern with
 * a few hundred nested groups, overflows it, and the module aborts — after which every compile in that
 * process fails, the Harmony guard of every later request included. So one request could disable a
 * worker's constrained decoding. Both limits sit well under where the module breaks (PERFORMANCE,
 * "Schemas that break the grammar engine") and far above what OpenAI's structured outputs accept.
 */
import { grammarErrors } from "../errors.ts";
import { pointer, resolvePointer } from "./json-pointer.ts";

/** Subschemas on the deepest path from the root, a local $ref counting as one more (recursion through a $ref is a rule, not depth). */
export const MAX_SCHEMA_DEPTH = 32;
/** Groups nested inside one another in a pattern. */
export const MAX_PATTERN_GROUP_DEPTH = 16;

/** Keywords whose value is one subschema, a list of them, or a name → subschema map (as schema-support.ts walks them). */
const ONE = ["items", "additionalProperties"];
const LISTS = ["anyOf", "prefixItems"];
const MAPS = ["properties", "$defs", "definitions"];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** The deepest nesting of groups in a regex pattern (escapes and character classes skipped). */
export function patternGroupDepth(pattern: string): number {
  let depth = 0;
  let deepest = 0;
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\") i++;
    else if (inClass) inClass = c !== "]";
    else if (c === "[") inClass = true;
    else if (c === "(") deepest = Math.max(deepest, ++depth);
    else if (c === ")") depth = Math.max(0, depth - 1);
  }
  return deepest;
}

/**
 * Throws schema_too_complex when a subschema sits deeper than MAX_SCHEMA_DEPTH (following local $refs)
 * or a pattern nests groups deeper than MAX_PATTERN_GROUP_DEPTH. The walk stops at the limit, so it
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
    if (typeof node.pattern === "string" && patternGroupDepth(node.pattern) > MAX_PATTERN_GROUP_DEPTH)
      throw grammarErrors.create("schema_too_complex", {
        where,
        path: pointer([...path, "pattern"]),
        detail: `nests groups deeper than ${MAX_PATTERN_GROUP_DEPTH}`,
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
