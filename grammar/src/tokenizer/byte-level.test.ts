/** The byte-level alphabet: one printable character per byte, both ways, with Hugging Face's names for space and newline. */
import { describe, expect, it } from "vitest";
import { byteLevelBytes, byteLevelString } from "./byte-level.ts";

describe("byte-level alphabet", () => {
  it("maps the 256 bytes to 256 distinct printable characters and back", () => {
    const all = Uint8Array.from({ length: 256 }, (_, b) => b);
    const s = byteLevelString(all);
    expect(s).toHaveLength(256);
    expect(new Set(s).size).toBe(256);
    expect(s).not.toMatch(/[\s\p{Cc}]/u);
    expect(byteLevelBytes(s)).toEqual(all);
  });

  it("keeps printable Latin-1 as itself and moves the rest above U+00FF, as GPT-2's bytes_to_unicode does", () => {
    expect(byteLevelString(new TextEncoder().encode("Hi!~"))).toBe("Hi!~");
    expect(byteLevelString(Uint8Array.of(0x20, 0x0a, 0x00, 0xad, 0xa0))).toBe("ĠĊĀŃł");
    expect(byteLevelString(Uint8Array.of(0xe9))).toBe("é");
  });

  it("refuses characters outside the alphabet", () => {
    expect(byteLevelBytes(" ")).toBeNull();
    expect(byteLevelBytes("東")).toBeNull();
  });
});
