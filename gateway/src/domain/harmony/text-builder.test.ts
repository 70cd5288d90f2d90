import { describe, expect, it } from "vitest";
import { TextBuilder } from "./text-builder.ts";

describe("TextBuilder", () => {
  it("reads as the concatenation of its pieces, before, between and after reads", () => {
    const t = new TextBuilder();
    expect(t.empty).toBe(true);
    expect(t.toString()).toBe("");
    for (const p of ["Hel", "", "lo", " wo"]) t.append(p);
    expect(t.empty).toBe(false);
    expect(t.toString()).toBe("Hello wo");
    t.append("rld ☃");
    expect(`${t}`).toBe("Hello world ☃");
    expect(t.toString()).toBe("Hello world ☃");
  });
});
