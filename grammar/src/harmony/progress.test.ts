/** HarmonyProgress against completions written out token by token: which body tokens count as reasoning. */
import { describe, expect, it } from "vitest";
import { encodeText } from "../engine/vocabulary.ts";
import { HarmonyToken as T } from "./markers.ts";
import { HarmonyProgress } from "./progress.ts";

const run = (tokens: number[]) => {
  const p = new HarmonyProgress();
  const inReasoning: boolean[] = [];
  for (const t of tokens) {
    p.push(t);
    inReasoning.push(p.inReasoning);
  }
  return { p, inReasoning };
};

describe("HarmonyProgress", () => {
  it("counts the body tokens of analysis messages only, across messages", () => {
    const body = encodeText("Let me think about it.");
    const answer = encodeText("Paris.");
    const { p, inReasoning } = run([
      T.channel,
      ...encodeText("analysis"),
      T.message,
      ...body,
      T.end,
      T.start,
      ...encodeText("assistant"),
      T.channel,
      ...encodeText("final"),
      T.message,
      ...answer,
      T.return,
    ]);
    expect(p.reasoningTokens).toBe(body.length);
    expect(inReasoning.filter(Boolean).length).toBe(body.length + 1); // from its <|message|> through its last body token
    expect(p.inReasoning).toBe(false);
  });

  it("does not count a call on the analysis channel, nor commentary", () => {
    const { p } = run([
      T.channel,
      ...encodeText("commentary"),
      T.message,
      ...encodeText("preamble"),
      T.end,
      T.start,
      ...encodeText("assistant"),
      T.channel,
      ...encodeText("analysis to=functions.lookup "),
      T.constrain,
      ...encodeText("json"),
      T.message,
      ...encodeText('{"q":1}'),
      T.call,
    ]);
    expect(p.reasoningTokens).toBe(0);
  });

  it("reads a channel named like analysis but longer as another channel", () => {
    const { p } = run([T.channel, ...encodeText("analysis2"), T.message, ...encodeText("x y z")]);
    expect(p.inReasoning).toBe(false);
    expect(p.reasoningTokens).toBe(0);
  });
});
