/**
 * OpenAI output controls → the grammar package's ConstraintSpec (issue #24): function tools with their
 * `strict` flag, tool_choice, the answer's format, and the Harmony structure guard, checked against
 * what constrained decoding enforces and put on the wire as `GenerateRequest.constraint`. Pure: the
 * routes flatten Chat's and Responses' request shapes into a ConstraintRequest first.
 *
 * It does not render anything: the prompt still shows the tools and the response format (spec §6.6,
 * §6.11; the model should see what the grammar will hold it to), and it never loads the grammar engine
 * (only `@expertmesh/grammar/spec`, plain data and checks).
 */
import { AppError } from "@expertmesh/common";
import {
  assertSchemaSupported,
  CONSTRAINT_SPEC_VERSION,
  type ConstraintSpec,
  type FinalFormat,
  isUnconstrained,
  type JsonSchema,
  type ToolChoice,
  validateConstraintSpec,
} from "@expertmesh/grammar/spec";
import type { Constraint } from "@expertmesh/proto/worker";
import { gatewayErrors } from "../../errors.ts";
import type { ResponseFormat } from "../chat/conversation.ts";

/** A function tool as either API declares it, flattened. */
export interface DeclaredTool {
  readonly name: string;
  /** Only `strict: true` holds the arguments to `parameters`; OpenAI's other values leave them free. */
  readonly strict: boolean;
  readonly parameters: JsonSchema | null | undefined;
}

export interface ConstraintRequest {
  readonly guard: boolean;
  readonly tools: readonly DeclaredTool[];
  readonly toolChoice: ToolChoice;
  /** response_format (Chat) or text.format (Responses); null: free text. */
  readonly format: ResponseFormat | null;
}

/**
 * Where each constrained field sits in the request, for the 400's `param`: Chat nests a tool under
 * `function` and its format under `response_format.json_schema`, Responses does neither.
 */
export interface ConstraintFields {
  readonly tool: (i: number) => string;
  readonly toolName: (i: number) => string;
  readonly toolParameters: (i: number) => string;
  readonly toolChoice: string;
  readonly formatSchema: string;
}

export const CHAT_FIELDS: ConstraintFields = {
  tool: (i) => `tools[${i}]`,
  toolName: (i) => `tools[${i}].function.name`,
  toolParameters: (i) => `tools[${i}].function.parameters`,
  toolChoice: "tool_choice",
  formatSchema: "response_format.json_schema.schema",
};

export const RESPONSES_FIELDS: ConstraintFields = {
  tool: (i) => `tools[${i}]`,
  toolName: (i) => `tools[${i}].name`,
  toolParameters: (i) => `tools[${i}].parameters`,
  toolChoice: "tool_choice",
  formatSchema: "text.format.schema",
};

/** OpenAI's reading of a function without parameters: it takes an empty object. */
const NO_PARAMETERS: JsonSchema = { type: "object", properties: {} };

function finalFormat(format: ResponseFormat | null): FinalFormat {
  if (!format || format.type === "text") return { kind: "text" };
  if (format.type === "json_object") return { kind: "json_object" };
  // Enforced whether or not the client said strict: a json_schema format that may not hold is no format.
  return { kind: "json_schema", name: format.name, schema: format.schema ?? {} };
}

/** The spec of a request, unchecked (see checkedConstraint). */
export function buildConstraintSpec(req: ConstraintRequest): ConstraintSpec {
  return {
    version: CONSTRAINT_SPEC_VERSION,
    guard: req.guard,
    // With tool_choice none no tool can be called (nor is one shown): a strict schema of a tool that
    // cannot be called is not checked, so it cannot fail the request.
    tools:
      req.toolChoice.kind === "none"
        ? []
        : req.tools.map((t) => ({ name: t.name, strict: t.strict, parameters: t.parameters ?? NO_PARAMETERS })),
    toolChoice: req.toolChoice,
    finalFormat: finalFormat(req.format),
  };
}

/**
 * The wire constraint of a spec, or undefined when it asks for nothing (the worker then samples freely,
 * as before constraints existed). A spec that constrained decoding cannot enforce is a 400 naming the
 * request's field (constraintError).
 */
export function checkedConstraint(spec: ConstraintSpec, fields: ConstraintFields): Constraint | undefined {
  if (isUnconstrained(spec)) return undefined;
  const refuse = (param: string | null, check: () => unknown) => {
    try {
      check();
    } catch (err) {
      throw constraintError(err, param ?? paramOfSpecField(err, spec, fields));
    }
  };
  // Each schema is checked here, not only inside validateConstraintSpec, so the refusal names its field.
  spec.tools.forEach((tool, i) => {
    const param = fields.toolParameters(i);
    if (tool.strict) refuse(param, () => assertSchemaSupported(tool.parameters, param));
  });
  const format = spec.finalFormat;
  if (format.kind === "json_schema") refuse(fields.formatSchema, () => assertSchemaSupported(format.schema, fields.formatSchema));
  refuse(null, () => validateConstraintSpec(spec));
  return { version: spec.version, specJson: JSON.stringify(spec) };
}

/** "constraint FIELD: problem", the grammar package's invalid_constraint message (grammar/src/errors.ts). */
const CONSTRAINT_FIELD = /^constraint ([^:\s]+):/;

/**
 * The request's param for a field the grammar package names in spec terms (`tools[2].name`,
 * `tool_choice`, `size`); null for one that has no counterpart in the request (`version`).
 */
function paramOfSpecField(err: unknown, spec: ConstraintSpec, fields: ConstraintFields): string | null {
  const field = err instanceof Error ? (CONSTRAINT_FIELD.exec(err.message)?.[1] ?? "") : "";
  const tool = /^tools\[(\d+)\](\.name)?/.exec(field);
  if (tool) return tool[2] ? fields.toolName(Number(tool[1])) : fields.tool(Number(tool[1]));
  if (field === "tool_choice") return fields.toolChoice;
  // A spec is large only through its schemas.
  if (field === "size") return spec.tools.length > 0 ? "tools" : fields.formatSchema;
  return null;
}

/**
 * The one mapping of grammar-package refusals to the gateway's OpenAI-shaped 400s: the grammar's
 * message (naming the unsupported keyword and its JSON Pointer, or the inconsistent field) passed
 * through, with `param`. Anything else is returned as it is.
 */
function constraintError(err: unknown, param: string | null): unknown {
  if (!(err instanceof AppError)) return err;
  const extra = param === null ? { cause: err } : { cause: err, param };
  if (err.code === "unsupported_schema_keyword") return gatewayErrors.create("unsupported_schema_keyword", { detail: err.message }, extra);
  if (err.code === "invalid_constraint" || err.code === "schema_too_complex")
    return gatewayErrors.create("invalid_request_error", { detail: err.message }, extra);
  return err;
}
