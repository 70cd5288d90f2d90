/**
 * The structure guard at the full 201,088-token vocabulary, against real xgrammar: each mask is compared
 * with the set of tokens computed independently from the token bytes (a token is allowed exactly when
 * its text is a prefix of a valid continuation up to the next special token).
 */
import { beforeAll, describe, expect, it } from "vitest";
import { ConstraintCompiler } from "../engine/compiler.ts";
import { BITMASK_WORDS, type ConstraintMatcher } from "../engine/matcher.ts";
import { FIRST_SPECIAL, harmonyVocabulary, VOCAB_SIZE } from "../engine/vocabulary.ts";
import type { ConstraintSpec } from "../spec/constraint-spec.ts";
import { HarmonyToken as T } from "./markers.ts";

const ASSISTANT = 173781;
const ANALYSIS = 35644;
const FINAL = 17196;
const JSON_TOKEN = 4108;

const tool = (name: string, strict: boolean) => ({
  name,
  strict,
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false },
});

const guardOnly: ConstraintSpec = {
  version: 1,
  guard: true,
  tools: [tool("get_weather", true), tool("lookup", false)],
  toolChoice: { kind: "auto" },
  finalFormat: { kind: "text" },
};

let compiler: ConstraintCompiler;
const vocab = harmonyVocabulary();
const text = (id: number) => Buffer.from(vocab.bytes[id] as Uint8Array).toString("latin1");

async function allowed(m: ConstraintMatcher): Promise<Set<number>> {
  const mask = new Int32Array(BITMASK_WORDS);
  await m.fillNextTokenBitmask(mask);
  const set = new Set<number>();
  for (let id = 0; id < VOCAB_SIZE; id++) if ((mask[id >> 5] as number) & (1 << (id & 31))) set.add(id);
  return set;
}

/** Ordinary tokens whose text is a non-empty prefix of one of `continuations`, plus `specials`. */
function expected(continuations: string[], specials: number[]): Set<number> {
  const set = new Set(specials);
  for (let id = 0; id < FIRST_SPECIAL; id++) {
    const t = text(id);
    if (t.length > 0 && continuations.some((c) => c.startsWith(t))) set.add(id);
  }
  return set;
}

async function walk(spec: ConstraintSpec, ids: number[]): Promise<ConstraintMatcher> {
  const m = await compiler.matcher((await compiler.compile(spec)) as NonNullable<Awaited<ReturnType<ConstraintCompiler["compile"]>>>);
  for (const id of ids) expect(m.accept(id), `token ${id}`).toBe(true);
  return m;
}

const encodeAll = (s: string): number[] => {
  // Only for short ASCII headers: pick the longest vocabulary token at each position.
  const ids: number[] = [];
  let rest = s;
  while (rest.length > 0) {
    let best = -1;
    for (let id = 0; id < FIRST_SPECIAL; id++) {
      const t = text(id);
      if (t.length > 0 && rest.startsWith(t) && (best < 0 || t.length > text(best).length)) best = id;
    }
    ids.push(best);
    rest = rest.slice(text(best).length);
  }
  return ids;
};

beforeAll(async () => {
  compiler = await ConstraintCompiler.create();
});

describe("Harmony structure guard masks", () => {
  it("allows exactly <|channel|> or a declared recipient at the start of a header", async () => {
    const m = await walk(guardOnly, []);
    const recipients = [" to=functions.get_weather", " to=functions.lookup"];
    expect(await allowed(m)).toEqual(expected(recipients, [T.channel]));
  });

  it("allows exactly the three channels after <|channel|>", async () => {
    const m = await walk(guardOnly, [T.channel]);
    const channels = ["analysis", "commentary", "final"];
    const calls = ["analysis", "commentary"].flatMap((c) => [`${c} to=functions.get_weather`, `${c} to=functions.lookup`]);
    expect(await allowed(m)).toEqual(expected([...channels, ...calls], []));
  });

  it("allows only <|message|> after final, and only the recipient or <|message|> after analysis", async () => {
    expect(await allowed(await walk(guardOnly, [T.channel, FINAL]))).toEqual(new Set([T.message]));
    const afterAnalysis = await allowed(await walk(guardOnly, [T.channel, ANALYSIS]));
    expect(afterAnalysis).toEqual(expected([" to=functions.get_weather", " to=functions.lookup"], [T.message]));
  });

  it("forces <|constrain|>json on a function call", async () => {
    const head = [T.channel, ...encodeAll("commentary to=functions.lookup")];
    expect(await allowed(await walk(guardOnly, head))).toEqual(expected([" "], [T.constrain]));
    const m = await walk(guardOnly, [...head, T.constrain]);
    expect(await allowed(m)).toEqual(expected(["json"], []));
    expect(m.accept(JSON_TOKEN)).toBe(true);
    expect(await allowed(m)).toEqual(new Set([T.message]));
  });

  it("refuses an undeclared recipient", async () => {
    const m = await walk(guardOnly, [T.channel, ...encodeAll("commentary to=functions.")]);
    for (const id of encodeAll("delete_all")) {
      if (!m.accept(id)) return; // refused somewhere along the name
    }
    expect.unreachable("an undeclared function name was accepted");
  });

  it("leaves analysis text free and ends it only with <|end|>, then <|start|>assistant", async () => {
    const m = await walk(guardOnly, [T.channel, ANALYSIS, T.message, ...encodeAll("Let me think.")]);
    const free = await allowed(m);
    expect(free.has(T.end)).toBe(true);
    for (const id of [T.return, T.call, T.start, T.channel, T.message, T.constrain]) expect(free.has(id)).toBe(false);
    // Every ordinary token that is whole UTF-8 text without the marker byte stays allowed.
    const decoder = new TextDecoder("utf-8", { fatal: true });
    for (let id = 0; id < FIRST_SPECIAL; id++) {
      const bytes = vocab.bytes[id] as Uint8Array;
      let whole = true;
      try {
        decoder.decode(bytes);
      } catch {
        whole = false;
      }
      if (whole && !bytes.includes(0x1f)) expect(free.has(id), `token ${id}`).toBe(true);
    }
    expect(m.accept(T.end)).toBe(true);
    expect(await allowed(m)).toEqual(new Set([T.start]));
    expect(m.accept(T.start)).toBe(true);
    expect(await allowed(m)).toEqual(expected(["assistant"], []));
    expect(m.accept(ASSISTANT)).toBe(true);
    expect(await allowed(m)).toEqual(expected([" to=functions.get_weather", " to=functions.lookup"], [T.channel]));
  });

  it("ends the final message with <|return|> only, then is terminated", async () => {
    const m = await walk(guardOnly, [T.channel, FINAL, T.message, ...encodeAll("Hi")]);
    const free = await allowed(m);
    expect(free.has(T.return)).toBe(true);
    expect(free.has(T.end) || free.has(T.call)).toBe(false);
    expect(m.accept(T.return)).toBe(true);
    expect(m.isTerminated).toBe(true);
    expect(await allowed(m)).toEqual(new Set());
  });
});

describe("matcher state", () => {
  it("rolls back to the exact earlier mask", async () => {
    const m = await walk(guardOnly, [T.channel]);
    const before = await allowed(m);
    for (const id of [ANALYSIS, T.message, ...encodeAll("some text"), T.end]) expect(m.accept(id)).toBe(true);
    expect(m.acceptedTokens).toBe(1 + 2 + encodeAll("some text").length + 1);
    m.rollback(m.acceptedTokens - 1);
    expect(await allowed(m)).toEqual(before);
    expect(() => m.rollback(2)).toThrow(/cannot roll back 2 tokens, 1 were accepted/);
  });

  it("refuses a token the mask forbids without changing state", async () => {
    const m = await walk(guardOnly, [T.channel, FINAL]);
    expect(m.accept(T.end)).toBe(false);
    expect(m.acceptedTokens).toBe(2);
    expect(await allowed(m)).toEqual(new Set([T.message]));
  });

  it("jumps forward over <|constrain|>json<|message|> and the forced start of the arguments", async () => {
    const named: ConstraintSpec = { ...guardOnly, toolChoice: { kind: "function", name: "get_weather" } };
    const m = await walk(named, [T.channel, ...encodeAll("commentary to=functions.get_weather ")]);
    expect(m.jumpForward()).toEqual([{ token: T.constrain }, { text: "json" }, { token: T.message }, { text: '{"city":"' }]);
  });

  it("serves a cached compile for the same spec", async () => {
    const first = await compiler.compile(guardOnly);
    const again = await compiler.compile(JSON.parse(JSON.stringify(guardOnly)));
    expect(again?.key).toBe(first?.key);
    expect(again?.cached).toBe(true);
    expect(again?.compileMs).toBe(first?.compileMs);
  });
});

describe("the answer grammar (after a reasoning budget's cut)", () => {
  const answerMatcher = async (spec: ConstraintSpec) =>
    compiler.matcher((await compiler.compile(spec, "answer")) as NonNullable<Awaited<ReturnType<ConstraintCompiler["compile"]>>>);

  it("forces the final header when no call is forced, even with tools declared", async () => {
    const m = await answerMatcher(guardOnly);
    expect(m.jumpForward()).toEqual([{ token: T.channel }, { text: "final" }, { token: T.message }]);
  });

  it("forces a call when tool_choice names a function", async () => {
    const m = await answerMatcher({ ...guardOnly, toolChoice: { kind: "function", name: "lookup" } });
    expect(await allowed(m)).toEqual(expected([" to=functions.lookup"], [T.channel]));
    expect(m.accept(T.channel)).toBe(true);
    expect(await allowed(m)).toEqual(expected(["analysis to=functions.lookup", "commentary to=functions.lookup"], []));
  });

  it("is cached apart from the completion grammar of the same spec", async () => {
    const completion = await compiler.compile(guardOnly);
    const answer = await compiler.compile(guardOnly, "answer");
    expect(answer?.key).not.toBe(completion?.key);
    expect(answer?.ebnf).not.toContain("free_message \\x1f");
  });
});

describe("before a formatted final answer", () => {
  it("allows reasoning but no commentary preamble when no call can follow (it would join the content)", async () => {
    const json: ConstraintSpec = { ...guardOnly, tools: [], finalFormat: { kind: "json_object" } };
    expect(await allowed(await walk(json, [T.channel]))).toEqual(expected(["analysis", "final"], []));
    const withTools: ConstraintSpec = { ...guardOnly, finalFormat: { kind: "json_object" } };
    const channels = ["analysis", "commentary", "final"];
    const calls = ["analysis", "commentary"].flatMap((c) => [`${c} to=functions.get_weather`, `${c} to=functions.lookup`]);
    expect(await allowed(await walk(withTools, [T.channel]))).toEqual(expected([...channels, ...calls], []));
  });
});
