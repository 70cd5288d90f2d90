import { describe, expect, it } from "vitest";
import { prefixRules, withoutMarker } from "./ebnf-embed.ts";

describe("prefixRules", () => {
  it("renames rules, not literals or built-ins", () => {
    const ebnf = String.raw`root ::= ("{" "\"root\"" ":" value) (=(" "* "x"))
value ::= TagDispatch(("a", value), stop_eos=true) | "val\\" value`;
    expect(prefixRules(ebnf, "p_")).toBe(String.raw`p_root ::= ("{" "\"root\"" ":" p_value) (=(" "* "x"))
p_value ::= TagDispatch(("a", p_value), stop_eos=true) | "val\\" p_value`);
  });

  it("rewrites classes, so a name inside a class is not renamed", () => {
    expect(prefixRules(String.raw`root ::= [a\]root]`, "p_")).toBe(
      String.raw`p_root ::= [\U00000061\U0000005d\U00000072\U0000006f\U0000006f\U00000074]`,
    );
  });
});

describe("withoutMarker", () => {
  it("adds 0x1F to negated classes", () => {
    expect(withoutMarker(String.raw`[^"\\\r\n]`)).toBe(String.raw`[^\U00000022\U0000005c\U0000000d\U0000000a\U0000001f]`);
  });

  it("cuts 0x1F out of positive ranges and keeps the rest", () => {
    expect(withoutMarker(String.raw`[\0-\U0010ffff]`)).toBe(String.raw`[\U00000000-\U0000001e\U00000020-\U0010ffff]`);
    expect(withoutMarker(String.raw`[\x1f-~]`)).toBe(String.raw`[\U00000020-\U0000007e]`);
    expect(withoutMarker(String.raw`[ !#-[\]-~]`)).toBe(String.raw`[\U00000020\U00000021\U00000023-\U0000005b\U0000005d-\U0000007e]`);
  });
});
