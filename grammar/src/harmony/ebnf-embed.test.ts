import { describe, expect, it } from "vitest";
import { jsonSafeClass, prefixRules } from "./ebnf-embed.ts";

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

describe("jsonSafeClass", () => {
  it("makes negated (string content) classes exclude control characters, quote and backslash", () => {
    expect(jsonSafeClass(String.raw`[^"\\\r\n]`)).toBe(
      String.raw`[^\U00000022\U0000005c\U0000000d\U0000000a\U00000000-\U0000001f\U00000022\U0000005c]`,
    );
  });

  it("cuts them out of positive ranges, keeps single characters but the marker", () => {
    expect(jsonSafeClass(String.raw`[\0-\U0010ffff]`)).toBe(String.raw`[\U00000020-\U00000021\U00000023-\U0000005b\U0000005d-\U0010ffff]`);
    expect(jsonSafeClass(String.raw`[\x1f-~]`)).toBe(String.raw`[\U00000020-\U00000021\U00000023-\U0000005b\U0000005d-\U0000007e]`);
    expect(jsonSafeClass(String.raw`[ \n\t]`)).toBe(String.raw`[\U00000020\U0000000a\U00000009]`);
    expect(jsonSafeClass(String.raw`["\\/bfnrt]`)).toBe(
      String.raw`[\U00000022\U0000005c\U0000002f\U00000062\U00000066\U0000006e\U00000072\U00000074]`,
    );
    expect(jsonSafeClass(String.raw`[\x1f]`)).toBe(String.raw`[\x1f]`);
  });
});
