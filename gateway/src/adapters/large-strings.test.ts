/** Large strings taken out of a job and put back (adapters/large-strings.ts). */
import { describe, expect, it } from "vitest";
import { putLargeString, slices, takeLargeStrings } from "./large-strings.ts";

describe("takeLargeStrings / putLargeString", () => {
  it("empties strings of at least `min` characters wherever they are, and restores the value exactly", () => {
    const shared = new SharedArrayBuffer(4);
    const value = { shared, a: "x".repeat(10), list: [{ b: "short", c: "y".repeat(12) }, "z".repeat(20)], n: 3, t: true, none: null };
    const { skeleton, large } = takeLargeStrings(value, 10);
    expect(skeleton.shared).toBe(shared);
    expect(skeleton).toEqual({ shared, a: "", list: [{ b: "short", c: "" }, ""], n: 3, t: true, none: null });
    expect(large.map((l) => l.path)).toEqual([["a"], ["list", 0, "c"], ["list", 1]]);
    const text = [...slices(large, 7)].join("");
    let offset = 0;
    for (const l of large) {
      putLargeString(skeleton, l.path, text.slice(offset, offset + l.text.length));
      offset += l.text.length;
    }
    expect(skeleton).toEqual(value);
  });

  it("slices have the given size, the last the remainder", () => {
    expect([...slices([{ path: [], text: "abcdefg" }], 3)]).toEqual(["abc", "def", "g"]);
  });
});
