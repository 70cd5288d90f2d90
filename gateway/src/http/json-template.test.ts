import { describe, expect, it } from "vitest";
import { jsonTemplate, SSE_EVENT, TEXT } from "./json-template.ts";

describe("jsonTemplate", () => {
  const texts = ["", " word", 'quote " and \\ backslash', "line\nbreak\ttab", "\u0000nul", "emoji 😀 and é", "\u2028\u2029", "{}[],:"];
  const shape = (t: string) => ({
    id: "chatcmpl-1",
    created: 1,
    model: "m",
    choices: [{ index: 0, delta: { content: t }, finish_reason: null }],
  });

  it("gives the bytes JSON.stringify gives for the object with the text in place", () => {
    const t = jsonTemplate(shape(TEXT), 1);
    expect(t).not.toBeNull();
    for (const text of texts) expect(t?.(text)).toBe(JSON.stringify(shape(text)));
  });

  it("replaces every placeholder", () => {
    const two = (t: string) => ({ delta: { reasoning_content: t, reasoning: t } });
    const t = jsonTemplate(two(TEXT), 2);
    for (const text of texts) expect(t?.(text)).toBe(JSON.stringify(two(text)));
  });

  it("puts the frame around the JSON (an SSE event's data line)", () => {
    const one = jsonTemplate(shape(TEXT), 1, SSE_EVENT);
    const two = jsonTemplate({ a: TEXT, b: TEXT }, 2, SSE_EVENT);
    for (const text of texts) {
      expect(one?.(text)).toBe(`data: ${JSON.stringify(shape(text))}\n\n`);
      expect(two?.(text)).toBe(`data: ${JSON.stringify({ a: text, b: text })}\n\n`);
    }
  });

  it("declines a shape whose placeholder count differs (e.g. a model name that contains it)", () => {
    expect(jsonTemplate({ model: TEXT, delta: { content: TEXT } }, 1)).toBeNull();
    expect(jsonTemplate({ delta: { content: "x" } }, 1)).toBeNull();
  });
});
