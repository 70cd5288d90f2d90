import { describe, expect, it } from "vitest";
import { thrownAppError } from "../../testing/thrown-app-error.ts";
import { type BudgetRequest, reasoningBudget } from "./reasoning-budget.ts";

const defaults = { low: 256, medium: 1024, high: 0 };
const ask = (over: Partial<BudgetRequest>): BudgetRequest => ({
  requested: null,
  effort: "medium",
  maxTokens: null,
  defaultMaxTokens: 4096,
  param: "max_reasoning_tokens",
  maxTokensParam: "max_tokens",
  ...over,
});

const refusal = thrownAppError;

describe("reasoningBudget", () => {
  it("takes the client's budget, else the default of the request's effort (0: none)", () => {
    expect(reasoningBudget(ask({ requested: 100, maxTokens: 500 }), defaults)).toBe(100);
    expect(reasoningBudget(ask({ effort: "low" }), defaults)).toBe(256);
    expect(reasoningBudget(ask({ effort: "medium" }), defaults)).toBe(1024);
    expect(reasoningBudget(ask({ effort: "high" }), defaults)).toBe(0);
  });

  it("a budget that leaves the answer no room is a 400 naming the budget and saying why", () => {
    const err = refusal(() => reasoningBudget(ask({ requested: 500, maxTokens: 500 }), defaults));
    expect(err.http).toBe(400);
    expect(err.param).toBe("max_reasoning_tokens");
    expect(err.message).toBe(
      "max_reasoning_tokens (500) must be less than max_tokens (500): the reasoning counts toward max_tokens, and the answer needs tokens after it.",
    );
    // Without max_tokens the default limit applies, and the message says which.
    const byDefault = refusal(() =>
      reasoningBudget(ask({ requested: 4096, param: "reasoning.max_tokens", maxTokensParam: "max_output_tokens" }), defaults),
    );
    expect(byDefault.param).toBe("reasoning.max_tokens");
    expect(byDefault.message).toContain("the default max_output_tokens (4096, GATEWAY_DEFAULT_MAX_TOKENS)");
    expect(reasoningBudget(ask({ requested: 4095 }), defaults)).toBe(4095);
  });

  it("a deployment default above the client's max_tokens is sent as is (max_tokens ends the generation first)", () => {
    expect(reasoningBudget(ask({ maxTokens: 10 }), defaults)).toBe(1024);
  });
});
