#!/usr/bin/env node
/**
 * bench/agent — agent traffic against cache-aware routing and tool-loop pinning (issue #26). Simulated
 * agents hold multi-turn tool-calling conversations with the gateway (the official openai SDK, streamed
 * chat completions with tools and tool_choice "required", which the constrained decoder turns into a tool
 * call even from the random-weight tiny model): conversations come in families that share a system +
 * developer prompt; each turn ends in a tool call, the "tool" runs for a think time and returns a result,
 * and the next turn resends the whole history. The same workload (same seed) runs against G engine
 * groups twice: least-load routing without pins (the baseline), then cache-aware routing with pins.
 *
 * Reported per run: prefill tokens computed (the workers' prompt tokens minus prefix-cache hits; split
 * into first turns and follow-ups by the responses' usage.prompt_tokens_details.cached_tokens), the
 * follow-up turns' TTFT p50 (to the first streamed token, reasoning included) and their first answer
 * p50 (to the first content or tool-call delta, after the reasoning budget's tokens: the TTFT of the
 * records before 2026-12-06 04:10), the busiest group's requests over the mean,
 * and the gateway's routing decisions by reason; then the ratios cache-aware / least-load.
 *
 *   node bench/agent.ts [--groups 2,4] [--quick] [--seed 1] [--json]
 *
 * Each run's cluster is fresh and warmed (agent-cluster.ts: one constrained generation per worker, not
 * counted), so its first turns do not all wait for the grammar compiler's one-time start.
 *
 * --quick: 2 families × 4 conversations, 3 turns, a 400-token shared prompt, short think times (the CI
 * test, agent.test.ts). Full: 6 families × 8 = 48 conversations, 6 tool-call turns each, a ~1,500-token
 * shared prompt, tool results of 50–300 tokens, think times 0.2–2 s.
 */
import { parseArgs } from "node:util";
import { seededRandom } from "@expertmesh/common/testing";
import { encodeText } from "@expertmesh/grammar";
import OpenAI from "openai";
import type { ChatCompletionMessageParam, ChatCompletionTool } from "openai/resources/chat/completions";
import { AGENT_MODEL, type AgentCluster, startAgentCluster, tinyCheckpoint } from "./agent-cluster.ts";
import { median } from "./stats.ts";

export interface AgentWorkload {
  families: number;
  perFamily: number;
  turns: number;
  sharedPromptTokens: number;
  toolResultTokens: [number, number];
  thinkMs: [number, number];
  /** Conversations start spread over this many ms. */
  staggerMs: number;
  kvBlocks: number;
}

export const FULL: AgentWorkload = {
  families: 6,
  perFamily: 8,
  turns: 6,
  sharedPromptTokens: 1500,
  toolResultTokens: [50, 300],
  thinkMs: [200, 2000],
  staggerMs: 4000,
  kvBlocks: 8192,
};

export const QUICK: AgentWorkload = {
  families: 2,
  perFamily: 4,
  turns: 3,
  sharedPromptTokens: 400,
  toolResultTokens: [50, 150],
  thinkMs: [100, 400],
  staggerMs: 1000,
  kvBlocks: 2048,
};

export interface AgentRun {
  label: string;
  groups: number;
  /** Prompt tokens the workers computed (prompt tokens − prefix-cache hits). */
  prefillTokens: number;
  promptTokens: number;
  followUpTtftP50Ms: number;
  /** Follow-ups' first content or tool-call delta, p50 (after the reasoning tokens). */
  followUpAnswerP50Ms: number;
  /** Prompt tokens computed by first turns and by follow-ups (the responses' usage: prompt − cached). */
  computedFirst: number;
  computedFollowUps: number;
  /** Mean time a request waited in a worker's queue before it started (vllm:request_queue_time_seconds). */
  queueMeanMs: number;
  /** Requests served by each group. */
  perGroup: number[];
  /** Turns that ended in a tool call / all turns. */
  toolCalls: number;
  turns: number;
  decisions: Record<string, number>;
  seconds: number;
}

export const TOOLS: ChatCompletionTool[] = [
  {
    type: "function",
    function: {
      name: "lookup",
      description: "Looks something up.",
      parameters: { type: "object", properties: {}, additionalProperties: false },
      strict: true,
    },
  },
];

// Common English words, one o200k token each with their leading space: n words ≈ n tokens.
const WORDS =
  "the of and to in is that for it as with was on be by this are from at or have an they which one you had not but what all were when we there can been has more if will their would so about out up into them some could time these two may then do first any my now such like our over man me even most made after also did many before must through back years where much your way well down should because each just those people how too little state good very make world still own see men work long get here between both life being under never day same another know while last might us great old year off come since against go came right used take three".split(
    " ",
  );

export function words(rand: () => number, n: number): string {
  return Array.from({ length: n }, () => WORDS[Math.floor(rand() * WORDS.length)]).join(" ");
}

const between = (rand: () => number, [lo, hi]: [number, number]) => lo + Math.floor(rand() * (hi - lo + 1));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * One turn of an agent: a streamed chat completion that must call the tool (the grammar forces it, with
 * a 4-token reasoning budget); its call (undefined: it ended otherwise, see the caller), its finish
 * reason and content, its TTFT (ms to the first streamed token, reasoning included), its first answer (ms to
 * the first content or tool-call delta) and the prompt tokens the worker computed
 * (usage: prompt − cached).
 */
export async function toolTurn(client: OpenAI, messages: ChatCompletionMessageParam[], seed: number) {
  const t0 = performance.now();
  let first = 0;
  let firstToken = 0;
  const call = { id: "", name: "", arguments: "" };
  const stream = await client.chat.completions.create({
    model: AGENT_MODEL,
    messages,
    tools: TOOLS,
    tool_choice: "required",
    max_tokens: 64,
    max_reasoning_tokens: 4,
    temperature: 1,
    seed,
    stream: true,
    stream_options: { include_usage: true },
  } as OpenAI.ChatCompletionCreateParamsStreaming);
  let finish = "";
  let content = "";
  let computed = 0;
  for await (const chunk of stream) {
    if (chunk.usage) computed = chunk.usage.prompt_tokens - (chunk.usage.prompt_tokens_details?.cached_tokens ?? 0);
    finish = chunk.choices[0]?.finish_reason ?? finish;
    const d = chunk.choices[0]?.delta;
    content += d?.content ?? "";
    if (!first && (d?.tool_calls?.length || d?.content)) first = performance.now();
    if (!firstToken && (d?.tool_calls?.length || d?.content || (d as { reasoning_content?: string } | undefined)?.reasoning_content))
      firstToken = performance.now();
    for (const t of d?.tool_calls ?? []) {
      call.id ||= t.id ?? "";
      call.name += t.function?.name ?? "";
      call.arguments += t.function?.arguments ?? "";
    }
  }
  const end = performance.now();
  return { call: call.id ? call : undefined, finish, content, computed, ttftMs: (firstToken || end) - t0, answerMs: (first || end) - t0 };
}

/** One conversation's turns; returns the follow-up TTFTs (ms) and how many turns ended in a tool call. */
async function converse(client: OpenAI, w: AgentWorkload, family: number, index: number, seed: number) {
  const rand = seededRandom(seed * 1_000_003 + family * 1009 + index);
  const shared = seededRandom(seed * 7919 + family);
  const messages: ChatCompletionMessageParam[] = [
    { role: "system", content: `You are agent ${family} of the fleet.` },
    { role: "developer", content: words(shared, w.sharedPromptTokens) },
    { role: "user", content: `Task ${family}.${index}: ${words(rand, 30)}` },
  ];
  const ttfts: number[] = [];
  const answers: number[] = [];
  const computed = { first: 0, followUps: 0 };
  let calls = 0;
  await sleep(Math.floor(rand() * w.staggerMs));
  for (let turn = 0; turn < w.turns; turn++) {
    const { call, content, ttftMs, answerMs, computed: n } = await toolTurn(client, messages, seed * 100 + turn);
    if (turn > 0) ttfts.push(ttftMs);
    if (turn > 0) answers.push(answerMs);
    if (turn === 0) computed.first += n;
    else computed.followUps += n;
    await sleep(between(rand, w.thinkMs)); // the tool runs
    const result = words(rand, between(rand, w.toolResultTokens));
    if (call) {
      calls++;
      messages.push({
        role: "assistant",
        tool_calls: [{ id: call.id, type: "function", function: { name: call.name, arguments: call.arguments } }],
      });
      messages.push({ role: "tool", tool_call_id: call.id, content: result });
    } else {
      // Rarely the random model's turn ends without a call (counted, reported): the agent answers as the user.
      messages.push({ role: "assistant", content }, { role: "user", content: result });
    }
  }
  return { ttfts, answers, calls, computed };
}

/** Sums a counter over a Prometheus text by one label's values. */
function byLabel(text: string, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    const value = new RegExp(`${label}="([^"]*)"`).exec(line)?.[1] ?? "";
    out[value] = (out[value] ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return out;
}

/** Runs the workload once against a started cluster. */
export async function runAgents(cluster: AgentCluster, w: AgentWorkload, seed: number, label: string): Promise<AgentRun> {
  const client = new OpenAI({ apiKey: "unused", baseURL: `${cluster.base}/v1`, maxRetries: 0, timeout: 600_000 });
  // The workers' counters since now (the cluster's warm-up is not the workload).
  const counters = () =>
    Promise.all(
      [
        "vllm:prompt_tokens_total",
        "vllm:prefix_cache_hits_total",
        "vllm:e2e_request_latency_seconds_count",
        "vllm:request_queue_time_seconds_sum",
      ].map((m) => Promise.all(cluster.workers.map((x) => x.metric(m)))),
    );
  const [prompt0, hits0, requests0, queued0] = await counters();
  const t0 = performance.now();
  const convs = [];
  for (let f = 0; f < w.families; f++) for (let i = 0; i < w.perFamily; i++) convs.push(converse(client, w, f, i, seed));
  const results = await Promise.all(convs);
  const seconds = (performance.now() - t0) / 1000;
  const [prompt1, hits1, requests1, queued1] = await counters();
  const delta = (a: number[] = [], b: number[] = []) => a.map((x, i) => x - (b[i] ?? 0));
  const promptTokens = delta(prompt1, prompt0).reduce((a, b) => a + b, 0);
  const perGroup = delta(requests1, requests0);
  return {
    label,
    groups: cluster.workers.length,
    promptTokens,
    prefillTokens: promptTokens - delta(hits1, hits0).reduce((a, b) => a + b, 0),
    followUpTtftP50Ms: median(results.flatMap((r) => r.ttfts)),
    followUpAnswerP50Ms: median(results.flatMap((r) => r.answers)),
    computedFirst: results.reduce((n, r) => n + r.computed.first, 0),
    computedFollowUps: results.reduce((n, r) => n + r.computed.followUps, 0),
    queueMeanMs: (1000 * delta(queued1, queued0).reduce((a, b) => a + b, 0)) / perGroup.reduce((a, b) => a + b, 0),
    perGroup,
    toolCalls: results.reduce((n, r) => n + r.calls, 0),
    turns: w.families * w.perFamily * w.turns,
    decisions: byLabel(await cluster.gatewayMetrics(), "expertmesh_gateway_routing_decisions_total", "reason"),
    seconds,
  };
}

/** The busiest group's requests over the mean. */
export function imbalance(perGroup: readonly number[]): number {
  const mean = perGroup.reduce((a, b) => a + b, 0) / perGroup.length;
  return Math.max(...perGroup) / mean;
}

/** Least-load without pins, then cache-aware with pins, on `groups` fresh groups each time. */
export async function compare(
  groups: number,
  w: AgentWorkload,
  seed: number,
  checkpoint = tinyCheckpoint(),
): Promise<[AgentRun, AgentRun]> {
  const runs: AgentRun[] = [];
  for (const [label, policy, toolPinMs] of [
    ["least-load", "least_load", 0],
    ["cache-aware+pins", "cache_aware", 120_000],
  ] as const) {
    const warmTools = TOOLS.flatMap((t) =>
      t.type === "function" ? [{ name: t.function.name, parameters: t.function.parameters ?? {} }] : [],
    );
    const cluster = await startAgentCluster(checkpoint, { groups, policy, toolPinMs, kvBlocks: w.kvBlocks, warmTools });
    try {
      runs.push(await runAgents(cluster, w, seed, label));
    } finally {
      await cluster.close();
    }
  }
  return runs as [AgentRun, AgentRun];
}

function table(pairs: Array<[AgentRun, AgentRun]>): string {
  const rows = [
    "| groups | routing | prefill tokens computed | of prompt tokens | first turns / follow-ups | follow-up TTFT p50 | first answer p50 | worker queue mean | max group / mean | requests per group | decisions | wall |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const pair of pairs) {
    for (const r of pair) {
      const decisions = Object.entries(r.decisions)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ");
      rows.push(
        `| ${r.groups} | ${r.label} | ${r.prefillTokens} | ${((100 * r.prefillTokens) / r.promptTokens).toFixed(1)} % | ${r.computedFirst} / ${r.computedFollowUps} | ${r.followUpTtftP50Ms.toFixed(0)} ms | ${r.followUpAnswerP50Ms.toFixed(0)} ms | ${r.queueMeanMs.toFixed(0)} ms | ${imbalance(r.perGroup).toFixed(2)} | ${r.perGroup.join(" / ")} | ${decisions} | ${r.seconds.toFixed(0)} s |`,
      );
    }
    const [base, cache] = pair;
    rows.push(
      `| ${base.groups} | **ratio** | **${(cache.prefillTokens / base.prefillTokens).toFixed(3)}×** (target ≤ 0.25) | | ${(cache.computedFollowUps / base.computedFollowUps).toFixed(3)}× follow-ups | **${(cache.followUpTtftP50Ms / base.followUpTtftP50Ms).toFixed(2)}×** (≤ 0.5) | ${(cache.followUpAnswerP50Ms / base.followUpAnswerP50Ms).toFixed(2)}× | | ${imbalance(cache.perGroup).toFixed(2)} (≤ 1.5) | | | |`,
    );
  }
  return rows.join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      groups: { type: "string", default: "2,4" },
      quick: { type: "boolean", default: false },
      seed: { type: "string", default: "1" },
      json: { type: "boolean", default: false },
    },
  });
  const w = values.quick ? QUICK : FULL;
  const checkpoint = tinyCheckpoint();
  const shared = encodeText(words(seededRandom(1), w.sharedPromptTokens)).length;
  console.error(`shared developer prompt: ${shared} tokens; ${w.families * w.perFamily} conversations × ${w.turns} turns`);
  const pairs: Array<[AgentRun, AgentRun]> = [];
  for (const g of values.groups.split(",").map(Number)) pairs.push(await compare(g, w, Number(values.seed), checkpoint));
  console.log(values.json ? JSON.stringify(pairs, null, 2) : table(pairs));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
