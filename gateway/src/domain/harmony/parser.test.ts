/** Every parsing case of test/fixtures/harmony (the repository's copy of the Harmony conformance cases), plus the tolerance the gateway relies on. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { HarmonyTokenizer, Special } from "@expertmesh/grammar/tokenizer";
import { fixturesDir } from "@expertmesh/kernels/testing";
import { describe, expect, it } from "vitest";
import { HarmonyStreamParser, MAX_HEADER_TOKENS, parseCompletion } from "./parser.ts";
import type { Role } from "./types.ts";

interface ParseCase {
  name: string;
  tokens: number[];
  role_hint: Role | null;
  expected_messages: Array<{
    role: Role;
    name: string | null;
    channel: string | null;
    recipient: string | null;
    content_type: string | null;
    content: string;
  }>;
}

const cases: ParseCase[] = JSON.parse(readFileSync(join(fixturesDir(), "harmony", "parse-cases.json"), "utf8"));
const tok = new HarmonyTokenizer();

describe("Harmony parsing conformance", () => {
  it("has the 10 published cases", () => expect(cases).toHaveLength(10));
  it.each(cases)("$name", (c) => {
    expect(parseCompletion(tok, c.tokens, c.role_hint)).toEqual(c.expected_messages);
  });

  it.each(cases)("$name, streamed: deltas concatenate to each message's content", (c) => {
    const p = new HarmonyStreamParser(tok, c.role_hint);
    const deltas = new Map<number, string>();
    for (const t of [...c.tokens]) {
      for (const e of p.push(t)) if (e.kind === "delta") deltas.set(e.index, (deltas.get(e.index) ?? "") + e.text);
    }
    for (const e of p.finish()) if (e.kind === "delta") deltas.set(e.index, (deltas.get(e.index) ?? "") + e.text);
    for (const [i, m] of c.expected_messages.entries()) expect(deltas.get(i) ?? "").toBe(m.content);
  });
});

describe("tolerance (never throws; best-effort content)", () => {
  const enc = (s: string) => tok.encodeWithSpecials(s);

  it("holds back a character split across tokens until it is complete", () => {
    const ids = tok.encode("héllo 👋🏽 world");
    const p = new HarmonyStreamParser(tok, null);
    p.push(Special.start);
    for (const t of enc("assistant<|channel|>final<|message|>")) p.push(t);
    let text = "";
    for (const id of ids)
      for (const e of p.push(id))
        if (e.kind === "delta") {
          expect(e.text).not.toContain("\uFFFD");
          text += e.text;
        }
    expect(text).toBe("héllo 👋🏽 world");
  });

  it("stray stop tokens, text outside messages, and a stop inside a header", () => {
    const msgs = parseCompletion(
      tok,
      [Special.end, Special.return, ...tok.encode("garbage"), Special.end, ...enc("<|start|>assistant<|channel|>final<|end|>")],
      null,
    );
    expect(msgs).toEqual([
      { role: "assistant", name: null, recipient: null, channel: null, content_type: null, content: "garbage" },
      { role: "assistant", name: null, recipient: null, channel: null, content_type: null, content: "assistant<|channel|>final" },
    ]);
  });

  it("a <|start|> inside content closes the message; a tool call on the analysis channel parses", () => {
    const msgs = parseCompletion(
      tok,
      enc(
        "<|channel|>analysis<|message|>thinking<|start|>assistant<|channel|>analysis to=functions.lookup <|constrain|>json<|message|>{}<|call|>",
      ),
    );
    expect(msgs.map((m) => [m.channel, m.recipient, m.content_type, m.content])).toEqual([
      ["analysis", null, null, "thinking"],
      ["analysis", "functions.lookup", "<|constrain|>json", "{}"],
    ]);
  });

  it("random token ids never throw", () => {
    let seed = 1;
    for (let run = 0; run < 200; run++) {
      const ids = Array.from({ length: 64 }, () => {
        seed = (seed * 48271) % 2147483647;
        return seed % 3 === 0 ? 200000 + (seed % 20) : seed % 201088;
      });
      expect(() => parseCompletion(tok, ids)).not.toThrow();
    }
  });
});

describe("a header that cannot be one is content at once (bounded header buffer)", () => {
  const deltasOf = (p: HarmonyStreamParser, ids: number[]) => {
    const out: string[] = [];
    for (const id of ids) for (const e of p.push(id)) if (e.kind === "delta") out.push(e.text);
    return out;
  };

  it("prose where a header should be streams token by token from the first impossible token", () => {
    const ids = tok.encode("Hello, world! This is plain text.\nNo header here.");
    const p = new HarmonyStreamParser(tok, "assistant");
    const deltas = deltasOf(p, ids);
    // "Hello" could start a header; "," cannot: it releases "Hello", and from there every token is its own delta.
    expect(deltas.slice(0, 2)).toEqual(["Hello", ","]);
    expect(deltas).toHaveLength(ids.length);
    expect(deltas.join("")).toBe("Hello, world! This is plain text.\nNo header here.");
    p.finish();
    expect(p.messages).toEqual([
      {
        role: "assistant",
        name: null,
        recipient: null,
        channel: null,
        content_type: null,
        content: "Hello, world! This is plain text.\nNo header here.",
      },
    ]);
  });

  it("a header-like run longer than any header is recovered after MAX_HEADER_TOKENS tokens", () => {
    const word = tok.encode(" word");
    expect(word).toHaveLength(1);
    const ids = new Array<number>(MAX_HEADER_TOKENS + 10).fill(word[0] as number);
    const p = new HarmonyStreamParser(tok, "assistant");
    const deltas = deltasOf(p, ids);
    expect(deltas[0]).toBe(" word".repeat(MAX_HEADER_TOKENS));
    expect(deltas).toHaveLength(11);
    expect(p.recovered).toBe(0);
  });

  it("reports how many held tokens the recovering push turned into content", () => {
    const p = new HarmonyStreamParser(tok, "assistant");
    for (const id of tok.encode("abc def")) p.push(id);
    expect(p.recovered).toBe(0);
    p.push(tok.encode("!")[0] as number);
    expect(p.recovered).toBe(tok.encode("abc def").length);
  });

  it("real headers still parse: recipient, channel and constrained content type", () => {
    const ids = tok.encodeWithSpecials(
      ' to=functions.get_weather<|channel|>commentary <|constrain|>json<|message|>{"city":"Paris"}<|call|>',
    );
    expect(parseCompletion(tok, ids, "assistant")).toEqual([
      {
        role: "assistant",
        name: null,
        recipient: "functions.get_weather",
        channel: "commentary",
        content_type: "<|constrain|>json",
        content: '{"city":"Paris"}',
      },
    ]);
  });
});
