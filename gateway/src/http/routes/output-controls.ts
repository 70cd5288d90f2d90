/**
 * The output controls of a Chat or Responses body — function tools and their `strict`, tool_choice,
 * response_format / text.format, `harmony_guard`, the reasoning budget — read from each API's shape and
 * turned into the worker's `constraint` and `max_reasoning_tokens`. This file knows where the fields
 * sit in each API; what they mean is domain/constraints. /v1/completions has none of them.
 */
import type { ToolChoice } from "@expertmesh/grammar/spec";
import type { Constraint } from "@expertmesh/proto/worker";
import type { ChatTool, ResponseFormat } from "../../domain/chat/conversation.ts";
import {
  buildConstraintSpec,
  CHAT_FIELDS,
  type ConstraintFields,
  checkedConstraint,
  RESPONSES_FIELDS,
} from "../../domain/constraints/constraint-builder.ts";
import { type BudgetRequest, type ReasoningBudgets, reasoningBudget } from "../../domain/constraints/reasoning-budget.ts";
import { gatewayErrors } from "../../errors.ts";
import { MAX_TOKENS_LIMIT } from "./generation.ts";

/** The deployment's side: GATEWAY_HARMONY_GUARD, GATEWAY_REASONING_BUDGET_*, GATEWAY_DEFAULT_MAX_TOKENS. */
export interface OutputControlsConfig {
  harmonyGuard: boolean;
  reasoningBudgets: ReasoningBudgets;
  defaultMaxTokens: number;
}

export interface OutputControls {
  toolChoice: ToolChoice;
  /** undefined: nothing is constrained (the field is left off the request). */
  constraint: Constraint | undefined;
  maxReasoningTokens: number;
}

/** Body-schema properties both APIs have at the top level; tool_choice's shapes are checked in code, for exact messages. */
export const CONTROL_PROPERTIES = {
  tool_choice: { type: ["string", "object", "null"] },
  /** Extension: false turns the Harmony structure guard off for the request. */
  harmony_guard: { type: ["boolean", "null"] },
};
/** The reasoning budget's schema: Chat's max_reasoning_tokens, Responses' reasoning.max_tokens. */
export const REASONING_BUDGET_SCHEMA = { type: ["integer", "null"], minimum: 1, maximum: MAX_TOKENS_LIMIT };

type Api = "chat" | "responses";

const FIELDS: Record<Api, ConstraintFields> = { chat: CHAT_FIELDS, responses: RESPONSES_FIELDS };

/** How each API spells a named function: Chat nests the name under `function`, Responses does not. */
const NAMED_FUNCTION: Record<Api, string> = {
  chat: '{"type": "function", "function": {"name": …}}',
  responses: '{"type": "function", "name": …}',
};

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** The name in the API's named-function tool_choice, if `v` is one. */
function namedFunction(v: unknown, api: Api): unknown {
  if (!isObject(v) || v.type !== "function") return undefined;
  if (api === "responses") return v.name;
  return isObject(v.function) ? v.function.name : undefined;
}

/** tool_choice: "auto" (also when absent), "none", "required", or the API's named-function object. */
export function parseToolChoice(v: unknown, api: Api): ToolChoice {
  if (v === null || v === undefined || v === "auto") return { kind: "auto" };
  if (v === "none" || v === "required") return { kind: v };
  const named = namedFunction(v, api);
  if (typeof named === "string") return { kind: "function", name: named };
  throw gatewayErrors.create(
    "invalid_request_error",
    { detail: `tool_choice must be "auto", "none", "required" or ${NAMED_FUNCTION[api]}` },
    { param: "tool_choice" },
  );
}

export interface ControlFields {
  api: Api;
  /** The function tools, in Chat's shape (Responses' are converted first). */
  tools: readonly ChatTool[];
  toolChoice: unknown;
  format: ResponseFormat | null;
  harmonyGuard: boolean | null | undefined;
  budget: Omit<BudgetRequest, "defaultMaxTokens">;
}

export function outputControls(f: ControlFields, config: OutputControlsConfig): OutputControls {
  const toolChoice = parseToolChoice(f.toolChoice, f.api);
  const spec = buildConstraintSpec({
    guard: f.harmonyGuard ?? config.harmonyGuard,
    tools: f.tools.map((t) => ({ name: t.function.name, strict: t.function.strict === true, parameters: t.function.parameters })),
    toolChoice,
    format: f.format,
  });
  return {
    toolChoice,
    constraint: checkedConstraint(spec, FIELDS[f.api]),
    maxReasoningTokens: reasoningBudget({ ...f.budget, defaultMaxTokens: config.defaultMaxTokens }, config.reasoningBudgets),
  };
}
