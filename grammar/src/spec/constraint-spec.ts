/**
 * The constraint spec: what a request asks of the output, in Harmony terms, as plain JSON data. The
 * gateway builds it from OpenAI fields (tools, tool_choice, response_format) and sends it with the
 * generation request; the worker parses it back, compiles it to a grammar and runs one matcher per
 * sequence. It is versioned so a worker refuses a spec it does not understand instead of misreading
 * it. This module knows nothing about xgrammar or tokens.
 */
import { createHash } from "node:crypto";
import { grammarErrors } from "../errors.ts";
import { assertSchemaSupported, type JsonSchema } from "./schema-support.ts";

export const CONSTRAINT_SPEC_VERSION = 1;

/** A function tool as declared in the request (OpenAI `tools[]` of type function). */
export interface FunctionToolSpec {
  readonly name: string;
  /** strict: the arguments must validate against `parameters`; otherwise they are free (or any JSON object when a call is forced). */
  readonly strict: boolean;
  readonly parameters: JsonSchema;
}

export type ToolChoice =
  | { readonly kind: "auto" }
  | { readonly kind: "none" }
  | { readonly kind: "required" }
  | { readonly kind: "function"; readonly name: string };

/** What the final channel's text must be; the analysis channel stays free whatever this says. */
export type FinalFormat =
  | { readonly kind: "text" }
  | { readonly kind: "json_object" }
  | { readonly kind: "json_schema"; readonly name: string; readonly schema: JsonSchema };

export interface ConstraintSpec {
  readonly version: typeof CONSTRAINT_SPEC_VERSION;
  /** The Harmony structure guard: valid headers only. Always applied when anything else is constrained. */
  readonly guard: boolean;
  readonly tools: readonly FunctionToolSpec[];
  readonly toolChoice: ToolChoice;
  readonly finalFormat: FinalFormat;
}

/** OpenAI's function-name rule; it also keeps names safe to splice into grammar literals. */
const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Bound on a spec's JSON size: compile time grows with schema size, and this bounds it. */
export const MAX_SPEC_BYTES = 256 * 1024;

const invalid = (field: string, problem: string) => grammarErrors.create("invalid_constraint", { field, problem });

/** True when the spec asks for nothing: no grammar, no matcher, today's sampling path. */
export function isUnconstrained(spec: ConstraintSpec): boolean {
  const forcesTools = spec.toolChoice.kind === "required" || spec.toolChoice.kind === "function";
  const strictTools = spec.toolChoice.kind !== "none" && spec.tools.some((t) => t.strict);
  return !spec.guard && !forcesTools && !strictTools && spec.finalFormat.kind === "text";
}

/** Checks a spec's consistency and that every schema is within what the engine enforces. */
export function validateConstraintSpec(spec: ConstraintSpec): ConstraintSpec {
  if (spec.version !== CONSTRAINT_SPEC_VERSION)
    throw invalid("version", `is ${String(spec.version)}; this build reads version ${CONSTRAINT_SPEC_VERSION}`);
  const names = new Set<string>();
  spec.tools.forEach((tool, i) => {
    if (!TOOL_NAME.test(tool.name)) throw invalid(`tools[${i}].name`, "must match ^[A-Za-z0-9_-]{1,64}$");
    if (names.has(tool.name)) throw invalid(`tools[${i}].name`, `"${tool.name}" is declared twice`);
    names.add(tool.name);
    if (tool.strict) assertSchemaSupported(tool.parameters, `tools[${i}].parameters`);
  });
  const choice = spec.toolChoice;
  if (choice.kind === "required" && spec.tools.length === 0) throw invalid("tool_choice", '"required" needs at least one tool');
  if (choice.kind === "function" && !names.has(choice.name))
    throw invalid("tool_choice", `names "${choice.name}", which is not a declared tool`);
  if (spec.finalFormat.kind === "json_schema") assertSchemaSupported(spec.finalFormat.schema, "response_format");
  if (Buffer.byteLength(JSON.stringify(spec)) > MAX_SPEC_BYTES) throw invalid("size", `is over ${MAX_SPEC_BYTES} bytes`);
  return spec;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isSchema = (v: unknown): v is JsonSchema => isObject(v) || typeof v === "boolean";

function parseToolChoice(v: unknown): ToolChoice {
  if (!isObject(v)) throw invalid("tool_choice", "is not an object");
  if (v.kind === "auto" || v.kind === "none" || v.kind === "required") return { kind: v.kind };
  if (v.kind === "function" && typeof v.name === "string") return { kind: "function", name: v.name };
  throw invalid("tool_choice", "is not one of auto, none, required, function");
}

function parseFinalFormat(v: unknown): FinalFormat {
  if (!isObject(v)) throw invalid("final_format", "is not an object");
  if (v.kind === "text" || v.kind === "json_object") return { kind: v.kind };
  if (v.kind === "json_schema" && typeof v.name === "string" && isSchema(v.schema))
    return { kind: "json_schema", name: v.name, schema: v.schema };
  throw invalid("final_format", "is not one of text, json_object, json_schema with a name and a schema");
}

function parseTool(v: unknown, i: number): FunctionToolSpec {
  if (!isObject(v) || typeof v.name !== "string" || typeof v.strict !== "boolean" || !isSchema(v.parameters))
    throw invalid(`tools[${i}]`, "needs name (string), strict (boolean) and parameters (a schema)");
  return { name: v.name, strict: v.strict, parameters: v.parameters };
}

/** The worker's side: a spec as received (parsed JSON), checked field by field, then validated. */
export function parseConstraintSpec(wire: unknown): ConstraintSpec {
  if (!isObject(wire)) throw invalid("spec", "is not an object");
  if (wire.version !== CONSTRAINT_SPEC_VERSION)
    throw invalid("version", `is ${String(wire.version)}; this build reads version ${CONSTRAINT_SPEC_VERSION}`);
  if (typeof wire.guard !== "boolean") throw invalid("guard", "is not a boolean");
  if (!Array.isArray(wire.tools)) throw invalid("tools", "is not a list");
  return validateConstraintSpec({
    version: CONSTRAINT_SPEC_VERSION,
    guard: wire.guard,
    tools: wire.tools.map(parseTool),
    toolChoice: parseToolChoice(wire.toolChoice),
    finalFormat: parseFinalFormat(wire.finalFormat),
  });
}

/** JSON with object keys sorted, so equal specs give equal text whatever order their keys came in. */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (isObject(v))
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`)
      .join(",")}}`;
  return JSON.stringify(v);
}

/** The content hash a compiled grammar is cached under. */
export function constraintKey(spec: ConstraintSpec): string {
  return createHash("sha256").update(canonicalJson(spec)).digest("hex");
}
