import { HarmonyTokenizer } from "@expertmesh/grammar/tokenizer";
import { describe, expect, it } from "vitest";
import { ChatAssembler, type ChatDelta } from "./assembler.ts";

const tok = new HarmonyTokenizer();
const completions: Array<{ name: string; text: string; stops?: string[] }> = [
  {
    name: "reasoning then an answer",
    text: "<|channel|>analysis<|message|>Think é 😀.<|end|><|start|>assistant<|channel|>final<|message|>The answer.<|return|>",
  },
  {
    name: "a preamble, a tool call, then a second answer message",
    text:
      "<|channel|>commentary<|message|>Looking it up.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>" +
      '{"city":"Paris"}<|call|>',
  },
  {
    name: "two answer messages read as paragraphs",
    text: "<|channel|>final<|message|>One.<|end|><|start|>assistant<|channel|>final<|message|>Two.<|return|>",
  },
  { name: "a stop string ends the content", text: "<|channel|>final<|message|>keep this STOP not this<|return|>", stops: ["STOP"] },
];

function run(keepText: boolean, ids: number[], stops: string[]): { a: ChatAssembler; deltas: ChatDelta[] } {
  let n = 0;
  const a = new ChatAssembler(tok, stops, () => `call_${++n}`, { keepText });
  const deltas: ChatDelta[] = [];
  // The streaming route's way: one id at a time into a sink that is not an array.
  const sink = { push: (d: ChatDelta) => deltas.push(d) };
  for (const id of ids) a.pushOne(id, sink);
  deltas.push(...a.finish());
  return { a, deltas };
}

describe("ChatAssembler", () => {
  for (const c of completions) {
    it(`${c.name}: the same deltas one id at a time into a sink as push(ids), with or without the text kept`, () => {
      const ids = tok.encodeWithSpecials(c.text);
      const whole = new ChatAssembler(
        tok,
        c.stops ?? [],
        (() => {
          let n = 0;
          return () => `call_${++n}`;
        })(),
      );
      const expected = [...whole.push(ids), ...whole.finish()];
      const kept = run(true, ids, c.stops ?? []);
      const streamed = run(false, ids, c.stops ?? []);
      expect(kept.deltas).toEqual(expected);
      expect(streamed.deltas).toEqual(expected);
      for (const r of [kept.a, streamed.a]) {
        expect(r.toolCalls).toEqual(whole.toolCalls);
        expect(r.reasoningTokens).toBe(whole.reasoningTokens);
        expect(r.stopped).toBe(whole.stopped);
      }
      // Kept: the totals are the deltas joined; not kept: nothing is held.
      const joined = (kind: "content" | "reasoning") =>
        expected
          .filter((d) => d.kind === kind)
          .map((d) => (d as { text: string }).text)
          .join("");
      expect(kept.a.content).toBe(joined("content"));
      expect(kept.a.reasoning).toBe(joined("reasoning"));
      expect(streamed.a.content).toBe("");
      expect(streamed.a.reasoning).toBe("");
    });
  }

  it("separates answer messages with a blank line whether or not the text is kept", () => {
    const ids = tok.encodeWithSpecials(completions[2]?.text ?? "");
    for (const keepText of [true, false]) {
      const text = run(keepText, ids, [])
        .deltas.filter((d) => d.kind === "content")
        .map((d) => (d as { text: string }).text)
        .join("");
      expect(text).toBe("One.\n\nTwo.");
    }
  });

  it("marks which pushed tokens were answer text (for logprobs)", () => {
    const ids = tok.encodeWithSpecials("<|channel|>analysis<|message|>hm<|end|><|start|>assistant<|channel|>final<|message|>yes<|return|>");
    const a = new ChatAssembler(tok, [], () => "call_1", { keepText: false });
    const content: number[] = [];
    for (const id of ids) {
      a.pushOne(id, []);
      if (a.lastWasContent) content.push(id);
    }
    expect(tok.decode(content)).toBe("yes");
  });
});
