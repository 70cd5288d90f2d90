import { HarmonyTokenizer, Special } from "@expertmesh/grammar/tokenizer";
import { describe, expect, it } from "vitest";
import { type OutputBuilderOptions, type OutputToken, ResponseOutputBuilder } from "./output.ts";

const tok = new HarmonyTokenizer();
const ids = tok.encodeWithSpecials("<|channel|>analysis<|message|>Hmm<|end|><|start|>assistant<|channel|>final<|message|>Yes<|return|>");
const cut = ids.indexOf(Special.end);

/** The items' statuses and the reasoning item's status in its output_item.done event. */
function run(tokens: OutputToken[], options: OutputBuilderOptions, truncated = false) {
  let n = 0;
  const b = new ResponseOutputBuilder(tok, (p) => `${p}_${n++}`, options);
  const events = b.push(tokens);
  if (truncated) b.reasoningTruncated();
  events.push(...b.finish());
  const done = events.filter((e) => e.type === "response.output_item.done").map((e) => (e.item as { status: string }).status);
  return { statuses: b.items.map((i) => i.status), done };
}

describe("ResponseOutputBuilder: reasoning cut by a budget", () => {
  const forcedEnd = ids.map((tokenId, i) => ({ tokenId, forced: i >= cut && i <= ids.indexOf(Special.message, cut) }));

  it("a forced <|end|> under a budget ends the reasoning item incomplete, in its done event too", () => {
    expect(run(forcedEnd, { reasoningBudget: true })).toEqual({ statuses: ["incomplete", "completed"], done: ["incomplete", "completed"] });
  });

  it("without a budget a forced <|end|> is no cut (jump-forward); a sampled one never is", () => {
    expect(run(forcedEnd, {}).statuses).toEqual(["completed", "completed"]);
    expect(
      run(
        ids.map((tokenId) => ({ tokenId })),
        { reasoningBudget: true },
      ).statuses,
    ).toEqual(["completed", "completed"]);
  });

  it("the worker's reasoning_truncated marks the last reasoning item when its end was not seen as the cut", () => {
    expect(
      run(
        ids.map((tokenId) => ({ tokenId })),
        { reasoningBudget: true },
        true,
      ),
    ).toEqual({
      statuses: ["incomplete", "completed"],
      done: ["completed", "completed"],
    });
  });
});
