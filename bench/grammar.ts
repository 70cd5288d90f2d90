#!/usr/bin/env node
/**
 * bench/grammar — time to compute one allowed-token bitmask at the full 201,088-token vocabulary, per
 * generated token, for the Harmony structure guard alone and for each test JSON schema in the final
 * channel (grammar/src/testing/schemas.ts). Tokens come from the seeded random walk the tests use
 * (grammar/src/testing/driven-generation.ts), so every mask is one a real sequence could need. Also
 * prints each spec's compile time, and what creating the compiler costs. Targets (issue #24, dev-2c): guard p99 ≤ 0.5 ms, JSON schema p99 ≤ 2 ms.
 * With --decode, also decode tokens/s of a batch with and without constraints (grammar-decode.ts) on
 * bench/engine's synthetic checkpoint of --shape; target (issue #24): constrained ≥ 0.95× free.
 *
 *   node bench/grammar.ts [--seeds 20] [--decode [--shape 20b] [--batch 16] [--steps 4] [--rounds 3]]
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ConstraintCompiler, type ConstraintSpec } from "@expertmesh/grammar";
import { drive, seededRandom, TEST_SCHEMAS } from "@expertmesh/grammar/testing";
import { decodeWithConstraints } from "./grammar-decode.ts";

const { values } = parseArgs({
  options: {
    seeds: { type: "string", default: "20" },
    decode: { type: "boolean", default: false },
    shape: { type: "string", default: "20b" },
    batch: { type: "string", default: "16" },
    steps: { type: "string", default: "4" },
    rounds: { type: "string", default: "3" },
  },
});
const SEEDS = Number(values.seeds);

const tool = (name: string) => ({ name, strict: false, parameters: { type: "object" } });
const guardOnly: ConstraintSpec = {
  version: 1,
  guard: true,
  tools: [tool("get_weather"), tool("search")],
  toolChoice: { kind: "auto" },
  finalFormat: { kind: "text" },
};
const cases: Array<[string, ConstraintSpec]> = [
  ["guard only (2 tools, auto)", guardOnly],
  ...Object.entries(TEST_SCHEMAS).map(([name, schema]): [string, ConstraintSpec] => [
    `json_schema: ${name}`,
    { version: 1, guard: true, tools: [], toolChoice: { kind: "auto" }, finalFormat: { kind: "json_schema", name, schema } },
  ]),
];

const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;

// What a worker spends at startup (worker/src/engine/load-native-engine.ts: prepareConstraints).
const heapBefore = process.memoryUsage().heapUsed;
const createStarted = performance.now();
const compiler = await ConstraintCompiler.create();
const createMs = performance.now() - createStarted;
const createHeapMb = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
const rows: string[] = [];
const all: Record<"guard" | "schema", number[]> = { guard: [], schema: [] };
for (const [name, spec] of cases) {
  const compiled = await compiler.compile(spec);
  if (!compiled) throw new Error(`${name} compiled to nothing`);
  const times: number[] = [];
  for (let seed = 0; seed < SEEDS; seed++) {
    const matcher = await compiler.matcher(compiled);
    await drive(matcher, seededRandom(seed), { maxTokens: 4000, onMask: (ms) => times.push(ms) });
    matcher.dispose();
  }
  times.sort((a, b) => a - b);
  all[spec.finalFormat.kind === "text" ? "guard" : "schema"].push(...times);
  const f = (x: number) => x.toFixed(3);
  rows.push(
    `| ${name} | ${compiled.compileMs.toFixed(0)} | ${times.length} | ${f(quantile(times, 0.5))} | ${f(quantile(times, 0.99))} | ${f(times.at(-1) as number)} |`,
  );
}
for (const kind of ["guard", "schema"] as const) all[kind].sort((a, b) => a - b);
console.log(`compiler created (tokenizer, vocabulary, TokenizerInfo) in ${createMs.toFixed(0)} ms, heap +${createHeapMb.toFixed(0)} MiB\n`);
console.log(`grammar masks at the full vocabulary, ${SEEDS} seeds per case\n`);
console.log("| case | compile ms | masks | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|");
for (const row of rows) console.log(row);
console.log(
  `\nguard only: p99 ${quantile(all.guard, 0.99).toFixed(3)} ms (target ≤ 0.5); all JSON schemas together: p99 ${quantile(all.schema, 0.99).toFixed(3)} ms (target ≤ 2)`,
);

if (values.decode) {
  const dir = join(dirname(fileURLToPath(import.meta.url)), "..", ".cache", "bench", `gpt-oss-${values.shape}-synthetic`);
  const spec = cases[1]?.[1] as ConstraintSpec; // json_schema: nested_objects
  const o = { dir, batch: Number(values.batch), steps: Number(values.steps), rounds: Number(values.rounds), spec };
  const r = await decodeWithConstraints(o, compiler);
  console.log(`\ndecode, ${values.shape} shape, batch ${o.batch}, ${o.steps} timed steps, median of ${o.rounds} alternating rounds\n`);
  console.log("| run | tok/s |\n|---|---|");
  console.log(`| free | ${r.free.toFixed(2)} |\n| constrained (${cases[1]?.[0]}) | ${r.constrained.toFixed(2)} |`);
  console.log(`\nconstrained / free: ${(r.constrained / r.free).toFixed(3)} (target ≥ 0.95)`);
}
