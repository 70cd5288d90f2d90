import { describe, expect, it } from "vitest";
import { prefixRules } from "./ebnf-embed.ts";

describe("prefixRules", () => {
  it("renames rules, not literals, classes or built-ins", () => {
    const ebnf = String.raw`root ::= ("{" "\"root\"" ":" value [a-z\]root]) (=([ \n]* "x"))
value ::= TagDispatch(("a", value), stop_eos=true) | "val\\" value`;
    expect(prefixRules(ebnf, "p_")).toBe(String.raw`p_root ::= ("{" "\"root\"" ":" p_value [a-z\]root]) (=([ \n]* "x"))
p_value ::= TagDispatch(("a", p_value), stop_eos=true) | "val\\" p_value`);
  });
});
