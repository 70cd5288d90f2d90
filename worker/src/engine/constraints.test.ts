/**
 * Constrained decoding through a real worker (tiny synthetic model with the full o200k_harmony
 * vocabulary, real gRPC): the native sampler takes each step's grammar mask, so whatever the random
 * model prefers, outputs satisfy the constraint; forced tokens (jump-forward, a budget's header) are
 * flagged; bad specs get typed errors. Outputs of a random model end only by chance, so the
 * structured-output cases bias the few tokens that close JSON values and free messages (logit_bias, as
 * a client may send): every token still comes through the mask, which is what is judged.
 */
import { encodeText, HarmonyToken as T } from "@expertmesh/grammar";
import { CONSTRAINT_SPEC_VERSION, type ConstraintSpec } from "@expertmesh/grammar/spec";
import { headerParts, type ParsedMessage, splitMessages, TEST_SCHEMAS } from "@expertmesh/grammar/testing";
import { ErrorKind, type GenerateRequest, type WorkerClient } from "@expertmesh/proto/worker";
import { type ServiceError, status } from "@grpc/grpc-js";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collectGeneration, type Generation, generateRequest } from "../testing/generation.ts";
import { startTinyWorker, type TinyWorker } from "../testing/tiny-worker.ts";
import { errorDetailOf } from "../transport/grpc-errors.ts";
import { SequenceConstraint } from "./constraints.ts";

const VOCAB = 201088;
const STOPS: number[] = [T.return, T.call];
const PROMPT = [T.start, ...encodeText("user"), T.message, ...encodeText("Answer in JSON."), T.end, T.start, ...encodeText("assistant")];
/** Tokens that end a JSON value or a free message, and the final channel's name: a random model picks them, when allowed, often. */
const CLOSERS = Object.fromEntries(
  [...['"', '"}', "}", "]", '"]', ",", "true", "final"].map((s) => encodeText(s)[0]), T.end].map((id) => [id, 14]),
);

let tiny: TinyWorker;
let client: WorkerClient;
const ajv = new Ajv2020({ strict: false });
addFormats.default(ajv);

beforeAll(async () => {
  tiny = await startTinyWorker(7, undefined, VOCAB);
  client = tiny.client;
});
afterAll(() => tiny?.close());

const spec = (s: Partial<ConstraintSpec>): string =>
  JSON.stringify({ version: 1, guard: true, tools: [], toolChoice: { kind: "auto" }, finalFormat: { kind: "text" }, ...s });

type Outcome = Generation;

let ids = 0;
function generate(extra: Partial<GenerateRequest>, seed: number, logitBias: Record<number, number> = CLOSERS): Promise<Outcome> {
  const request = { requestId: `c${ids++}`, promptTokenIds: PROMPT, stopTokenIds: STOPS, maxTokens: 400, ...extra };
  return collectGeneration(client, generateRequest(request, { temperature: 1, seed, logitBias, logprobs: true }));
}

/** Runs `n` seeds, `width` at a time (the worker batches them). */
async function seeds(n: number, width: number, run: (seed: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < n) await run(next++);
    }),
  );
}

function messagesOf(o: Outcome, seed: number): ParsedMessage[] {
  expect(o.error, `seed ${seed}: ${o.error?.message}`).toBeUndefined();
  const messages = splitMessages(o.tokens.map((t) => t.tokenId));
  for (const m of messages) expect(headerParts(m.header), `seed ${seed}: header ${JSON.stringify(m.header)}`).not.toBeNull();
  return messages;
}

describe("structured output through the worker", () => {
  it.each(["nested_objects", "integer_bounds", "any_of", "array_of_objects"])(
    "json_schema %s: every final answer validates (24 seeds)",
    async (name) => {
      const schema = TEST_SCHEMAS[name] as Record<string, unknown>;
      const validate = ajv.compile(schema);
      const constraint = { version: CONSTRAINT_SPEC_VERSION, specJson: spec({ finalFormat: { kind: "json_schema", name, schema } }) };
      await seeds(24, 8, async (seed) => {
        const o = await generate({ constraint }, seed);
        const messages = messagesOf(o, seed);
        const last = messages.at(-1) as ParsedMessage;
        const shape = messages.map((m) => `${m.header} (${m.length})`).join(", ");
        expect(headerParts(last.header)?.channel, `seed ${seed}: ${o.tokens.length} tokens, ${shape}`).toBe("final");
        expect(last.terminator).toBe(T.return);
        expect(validate(JSON.parse(last.content)), `seed ${seed}: ${last.content}`).toBe(true);
        expect(o.finished?.reason).toBe(1); // STOP
      });
    },
  );

  it("a named tool: every generation calls it with valid arguments; forced tokens are flagged with logprob 0", async () => {
    const parameters = TEST_SCHEMAS.refs as Record<string, unknown>;
    const constraint = {
      version: 1,
      specJson: spec({ tools: [{ name: "route", strict: true, parameters }], toolChoice: { kind: "function", name: "route" } }),
    };
    let forced = 0;
    await seeds(16, 8, async (seed) => {
      const o = await generate({ constraint }, seed);
      const last = messagesOf(o, seed).at(-1) as ParsedMessage;
      expect(headerParts(last.header)?.recipient).toBe("route");
      expect(last.terminator).toBe(T.call);
      expect(ajv.validate(parameters, JSON.parse(last.content)), last.content).toBe(true);
      for (const t of o.tokens.filter((t) => t.forced)) expect(t.logprob).toBe(0);
      forced += o.tokens.filter((t) => t.forced).length;
    });
    expect(forced).toBeGreaterThan(0); // <|constrain|>json<|message|> and the arguments' fixed keys
  });
});

describe("the Harmony guard", () => {
  it("300 generations at temperature 1 with no bias: every header is well formed", async () => {
    const constraint = { version: 1, specJson: spec({ tools: [{ name: "lookup", strict: false, parameters: { type: "object" } }] }) };
    await seeds(300, 8, async (seed) => {
      const o = await generate({ constraint, maxTokens: 24 }, seed, {});
      messagesOf(o, seed); // also the unfinished last header, when there is one
    });
  });
});

describe("reasoning budget", () => {
  const ANALYSIS = encodeText("analysis")[0] as number;

  it.each([1, 16, 64])("budget %i: reasoning is cut at the budget and a final answer follows", async (budget) => {
    // Biased toward "analysis", the model reasons first; the guard keeps the headers valid.
    const constraint = { version: 1, specJson: spec({}) };
    await seeds(8, 8, async (seed) => {
      const o = await generate({ constraint, maxReasoningTokens: budget, maxTokens: budget + 40 }, seed, { [ANALYSIS]: 30 });
      const tokens = o.tokens.map((t) => t.tokenId);
      const ended = STOPS.includes(tokens.at(-1) as number);
      const messages = messagesOf(
        { ...o, tokens: ended ? o.tokens : [...o.tokens, { tokenId: T.return, logprob: 0, topLogprobs: [], forced: false }] },
        seed,
      );
      const reasoning = messages.filter((m) => headerParts(m.header)?.channel === "analysis" && !headerParts(m.header)?.recipient);
      const body = reasoning.reduce((n, m) => n + m.length, 0);
      if (o.finished?.reasoningTruncated) expect(body, `seed ${seed}`).toBe(budget);
      else expect(body, `seed ${seed}`).toBeLessThan(budget);
      const last = messages.at(-1) as ParsedMessage;
      expect(headerParts(last.header)?.channel, `seed ${seed}`).toBe("final");
      expect(last.length, `seed ${seed}`).toBeGreaterThan(0);
    });
  });

  it("without a constraint, the cut forces <|end|><|start|>assistant<|channel|>final<|message|>", async () => {
    const c = new SequenceConstraint(undefined, undefined, 2, undefined);
    const header = [T.channel, ...encodeText("analysis"), T.message];
    for (const t of header) expect(await c.advance(t)).toEqual([]);
    expect(await c.advance(encodeText("Hmm")[0] as number)).toEqual([]);
    const forced = await c.advance(encodeText(" ok")[0] as number);
    expect(forced).toEqual([T.end, T.start, ...encodeText("assistant"), T.channel, ...encodeText("final"), T.message]);
    expect(c.truncated).toBe(true);
    expect(await c.advance(encodeText("Paris")[0] as number)).toEqual([]); // the answer is not reasoning
  });
});

describe("bad constraints are INVALID_ARGUMENT", () => {
  it.each([
    [{ version: 2, specJson: spec({}) }, /version 2 is not the version this worker reads \(1\)/],
    [{ version: 1, specJson: "{" }, /spec_json is not JSON/],
    [{ version: 1, specJson: spec({ toolChoice: { kind: "function", name: "nope" } }) }, /names "nope", which is not a declared tool/],
    [
      {
        version: 1,
        specJson: spec({ finalFormat: { kind: "json_schema", name: "x", schema: { type: "object", not: { type: "null" } } } }),
      },
      /keyword "not"/,
    ],
  ])("%#", async (constraint, message) => {
    const o = await generate({ constraint }, 1);
    expect(o.error?.code).toBe(status.INVALID_ARGUMENT);
    expect(errorDetailOf(o.error as ServiceError)?.kind).toBe(ErrorKind.ERROR_KIND_INVALID_ARGUMENT);
    expect(o.error?.details).toMatch(message);
  });
});
