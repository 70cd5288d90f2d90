/**
 * The reasoning budget sent as `GenerateRequest.max_reasoning_tokens`: the client's own
 * (`max_reasoning_tokens`, `reasoning.max_tokens`) or else the deployment's default for the request's
 * reasoning effort. The worker enforces it (it ends the analysis channel and forces the answer's
 * header); this module only picks the number and refuses a budget that leaves no room for the answer.
 */
import { gatewayErrors } from "../../errors.ts";

export type ReasoningEffort = "low" | "medium" | "high";

/** Per effort, the budget of a request that names none; 0 = no budget. */
export type ReasoningBudgets = Readonly<Record<ReasoningEffort, number>>;

export interface BudgetRequest {
  /** The client's budget (≥ 1), or null/undefined for the effort's default. */
  readonly requested: number | null | undefined;
  readonly effort: ReasoningEffort;
  /** The client's max_tokens, or null when it gave none (then `defaultMaxTokens` applies). */
  readonly maxTokens: number | null;
  readonly defaultMaxTokens: number;
  /** The request's names of the two fields, for the 400. */
  readonly param: string;
  readonly maxTokensParam: string;
}

/** The budget to send (0: none). */
export function reasoningBudget(r: BudgetRequest, defaults: ReasoningBudgets): number {
  // A deployment default larger than a client's max_tokens is harmless (max_tokens ends the generation
  // first), so only a budget the client asked for is held to the limit.
  if (r.requested === null || r.requested === undefined) return defaults[r.effort];
  const limit = r.maxTokens ?? r.defaultMaxTokens;
  if (r.requested >= limit) {
    const named =
      r.maxTokens === null ? `the default ${r.maxTokensParam} (${limit}, GATEWAY_DEFAULT_MAX_TOKENS)` : `${r.maxTokensParam} (${limit})`;
    throw gatewayErrors.create(
      "invalid_request_error",
      {
        detail: `${r.param} (${r.requested}) must be less than ${named}: the reasoning counts toward ${r.maxTokensParam}, and the answer needs tokens after it.`,
      },
      { param: r.param },
    );
  }
  return r.requested;
}
