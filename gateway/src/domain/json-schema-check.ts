/**
 * Bounds and sanity checks on client JSON Schemas (tool parameters, response_format), applied before a
 * schema is rendered into the prompt. "Invalid" is what OpenAI refuses too: a schema that is not an
 * object, a `type` that is not a JSON type, subschema keywords holding non-schemas, a `required` that is
 * not a list of names, and a `$ref` that does not resolve inside the schema (remote refs are not
 * fetched). Unknown keywords are accepted (OpenAI ignores them outside strict mode).
 *
 * Bounds (documented in README): at most MAX_TOOLS tools (OpenAI's cap), schemas nested at most
 * MAX_SCHEMA_DEPTH subschema levels (a property's schema is one level below its object's; OpenAI's strict
 * mode allows 5, we do not implement strict mode and allow more), and all tool definitions together at
 * most MAX_TOOLS_BYTES of JSON. The walk is iterative, so no nesting overflows the stack.
 */
import { MAX_SCHEMA_DEPTH, resolvePointer } from "@expertmesh/grammar/spec";
import { gatewayErrors } from "../errors.ts";

export const MAX_TOOLS = 128;
export const MAX_TOOLS_BYTES = 512 * 1024;

const JSON_TYPES = new Set(["string", "number", "integer", "boolean", "object", "array", "null"]);
const SCHEMA_MAPS = ["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"];
const SCHEMA_LISTS = ["oneOf", "anyOf", "allOf", "prefixItems"];
const SCHEMA_VALUES = ["additionalProperties", "items", "not", "if", "then", "else", "contains", "propertyNames"];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isSchema = (v: unknown): boolean => isObject(v) || typeof v === "boolean";

function bad(detail: string, param: string): never {
  throw gatewayErrors.create("invalid_request_error", { detail }, { param });
}

/** The problem with one schema node, or null. */
function nodeProblem(node: Record<string, unknown>, root: unknown): string | null {
  const t = node.type;
  if (t !== undefined && !(typeof t === "string" ? JSON_TYPES.has(t) : Array.isArray(t) && t.every((x) => JSON_TYPES.has(x))))
    return `'${JSON.stringify(t)}' is not a valid type`;
  if (node.required !== undefined && !(Array.isArray(node.required) && node.required.every((r) => typeof r === "string")))
    return "'required' must be an array of property names";
  if (node.enum !== undefined && !Array.isArray(node.enum)) return "'enum' must be an array";
  for (const k of SCHEMA_MAPS)
    if (node[k] !== undefined && !(isObject(node[k]) && Object.values(node[k]).every(isSchema))) return `'${k}' must map names to schemas`;
  for (const k of SCHEMA_LISTS)
    if (node[k] !== undefined && !(Array.isArray(node[k]) && node[k].every(isSchema))) return `'${k}' must be an array of schemas`;
  for (const k of SCHEMA_VALUES) {
    const v = node[k];
    if (v !== undefined && !isSchema(v) && !(k === "items" && Array.isArray(v) && v.every(isSchema))) return `'${k}' must be a schema`;
  }
  if (node.$ref !== undefined && (typeof node.$ref !== "string" || resolvePointer(root, node.$ref) === undefined))
    return `reference '${String(node.$ref)}' can't be resolved`;
  return null;
}

/** The subschemas of a schema node: values of the map keywords, items of the list keywords, the rest. */
function subschemas(node: Record<string, unknown>): unknown[] {
  // Loops, not spreads: a request's list may be long enough to overflow the stack as call arguments.
  const out: unknown[] = [];
  const add = (values: readonly unknown[]) => {
    for (const v of values) out.push(v);
  };
  for (const k of SCHEMA_MAPS) if (isObject(node[k])) add(Object.values(node[k]));
  for (const k of SCHEMA_LISTS) if (Array.isArray(node[k])) add(node[k]);
  for (const k of SCHEMA_VALUES) if (node[k] !== undefined) add(Array.isArray(node[k]) ? node[k] : [node[k]]);
  return out;
}

/** Throws a 400 naming `param` when `schema` is not a usable JSON Schema or nests beyond the bound. */
export function checkJsonSchema(schema: unknown, param: string, what: string): void {
  if (!isObject(schema)) bad(`Invalid schema for ${what}: schema must be a JSON Schema object.`, param);
  const stack: Array<{ node: unknown; depth: number }> = [{ node: schema, depth: 1 }];
  while (stack.length > 0) {
    const { node, depth } = stack.pop() as { node: unknown; depth: number };
    if (!isObject(node)) continue; // true / false schemas
    if (depth > MAX_SCHEMA_DEPTH) bad(`Invalid schema for ${what}: nested deeper than ${MAX_SCHEMA_DEPTH} levels.`, param);
    const problem = nodeProblem(node, schema);
    if (problem) bad(`Invalid schema for ${what}: ${problem}.`, param);
    for (const child of subschemas(node)) stack.push({ node: child, depth: depth + 1 });
  }
}

interface ToolLike {
  type?: string;
  name?: string;
  parameters?: unknown;
  function?: { name?: string; parameters?: unknown };
}

/**
 * Chat (`{type, function: {name, parameters}}`) and Responses (`{type, name, parameters}`) tools alike:
 * the count, the total size, and each parameters schema.
 */
/**
 * Whether the JSON of `value` has at least `limit` bytes, stopping as soon as it knows: each value is
 * at least one byte and each string at least its length in UTF-16 units. A 5 MB description is refused
 * after one look at its length, not after serializing it on the event loop.
 */
function jsonBytesAtLeast(value: unknown, limit: number): boolean {
  let bytes = 0;
  const todo: unknown[] = [value];
  while (todo.length > 0) {
    const v = todo.pop();
    bytes += typeof v === "string" ? v.length : 1;
    if (Array.isArray(v)) {
      // Each element is at least a byte: beyond `limit` of them the answer is known.
      for (let i = 0; i < v.length && i <= limit; i++) todo.push(v[i]);
    } else if (typeof v === "object" && v !== null) {
      for (const [key, child] of Object.entries(v)) {
        bytes += key.length;
        todo.push(child);
      }
    }
    if (bytes >= limit) return true;
  }
  return false;
}

export function checkTools(tools: readonly ToolLike[] | null | undefined): void {
  if (!tools || tools.length === 0) return;
  if (tools.length > MAX_TOOLS)
    bad(
      `Invalid 'tools': array too long. Expected an array with maximum length ${MAX_TOOLS}, but got an array with length ${tools.length} instead.`,
      "tools",
    );
  if (jsonBytesAtLeast(tools, MAX_TOOLS_BYTES + 1) || Buffer.byteLength(JSON.stringify(tools)) > MAX_TOOLS_BYTES)
    bad(`Invalid 'tools': the tool definitions exceed ${MAX_TOOLS_BYTES} bytes of JSON.`, "tools");
  tools.forEach((t, i) => {
    const nested = t.function !== undefined;
    const parameters = nested ? t.function?.parameters : t.parameters;
    if (parameters === undefined || parameters === null) return;
    const name = (nested ? t.function?.name : t.name) ?? "";
    checkJsonSchema(parameters, nested ? `tools[${i}].function.parameters` : `tools[${i}].parameters`, `function '${name}'`);
  });
}
