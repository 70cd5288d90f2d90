/** Every rendering case of test/fixtures/harmony (the repository's copy of the Harmony conformance cases): exact text and exact token ids. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { HarmonyTokenizer } from "@expertmesh/grammar/tokenizer";
import { fixturesDir } from "@expertmesh/kernels/testing";
import { describe, expect, it } from "vitest";
import { renderConversation } from "./render.ts";
import type { HarmonyMessage, RenderOptions } from "./types.ts";

interface RenderCase {
  name: string;
  input: { messages: HarmonyMessage[]; options: RenderOptions };
  expected_text: string;
  expected_tokens: number[];
}

const cases: RenderCase[] = JSON.parse(readFileSync(join(fixturesDir(), "harmony", "render-cases.json"), "utf8"));
const tok = new HarmonyTokenizer();

describe("Harmony rendering conformance", () => {
  it("has the 19 published cases", () => expect(cases).toHaveLength(19));
  it.each(cases)("$name", (c) => {
    const out = renderConversation(tok, c.input.messages, c.input.options);
    expect(out.text.trimEnd()).toBe(c.expected_text);
    expect(out.tokens).toEqual(c.expected_tokens);
    expect(tok.encodeWithSpecials(c.expected_text)).toEqual(c.expected_tokens);
  });
});

describe("rendering long conversations", () => {
  it("renders a conversation of over 300k tokens without a stack overflow", () => {
    const words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"];
    const text = Array.from({ length: 400_000 }, (_, i) => words[(i * 7) % words.length]).join(" ");
    const r = renderConversation(tok, [{ role: "user", name: null, recipient: null, channel: null, content_type: null, content: text }], {
      for_completion: true,
      auto_drop_analysis: false,
    });
    expect(r.tokens.length).toBeGreaterThan(300_000);
  });
});
