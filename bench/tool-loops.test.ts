/**
 * Tool loops end to end, in real processes (Redis, the orchestrator, two worker processes heartbeating
 * their prefix summaries, the gateway over the orchestrator's roster, the openai SDK): the turn after a
 * tool call goes to the group holding its pinned KV and releases the pin there; and when that group's
 * worker dies mid-loop, the next turn still completes on the other group. Timeouts are generous and
 * every wait is on a condition (a loaded 2-core machine).
 */

import { seededRandom } from "@expertmesh/common/testing";
import type { WorkerProcess } from "@expertmesh/worker/testing";
import OpenAI from "openai";
import type { ChatCompletionMessageParam } from "openai/resources/chat/completions";
import { afterEach, describe, expect, it } from "vitest";
import { toolTurn, words } from "./agent.ts";
import { type AgentCluster, startAgentCluster, tinyCheckpoint, waitFor } from "./agent-cluster.ts";

const checkpoint = tinyCheckpoint();
let cluster: AgentCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

/** Requests each worker served (its e2e latency histogram's count). */
const served = (workers: WorkerProcess[]) => Promise.all(workers.map((w) => w.metric("vllm:e2e_request_latency_seconds_count")));

/** A counter's value in a Prometheus text, for the series whose labels include `labels`. */
function sample(text: string, name: string, labels: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
}

/** A conversation's opening: a 300-token developer prompt and a task. */
function opening(): ChatCompletionMessageParam[] {
  const rand = seededRandom(26);
  return [
    { role: "developer", content: words(rand, 300) },
    { role: "user", content: `Task: ${words(rand, 20)}` },
  ];
}

/** The first turn (a tool call) and the messages of the follow-up (its call and a result appended). */
async function firstTurn(client: OpenAI) {
  const messages = opening();
  const { call } = await toolTurn(client, messages, 1);
  if (!call) throw new Error("the first turn ended without a tool call");
  messages.push({
    role: "assistant",
    tool_calls: [{ id: call.id, type: "function", function: { name: call.name, arguments: call.arguments } }],
  });
  messages.push({ role: "tool", tool_call_id: call.id, content: words(seededRandom(27), 120) });
  return messages;
}

async function start(): Promise<{ c: AgentCluster; client: OpenAI }> {
  const c = await startAgentCluster(checkpoint, { groups: 2, policy: "cache_aware", toolPinMs: 120_000, kvBlocks: 256 });
  cluster = c;
  return { c, client: new OpenAI({ apiKey: "unused", baseURL: `${c.base}/v1`, maxRetries: 0, timeout: 120_000 }) };
}

describe("tool loops across groups", () => {
  it("the follow-up turn goes to the group holding the pinned KV and releases the pin there", { timeout: 240_000 }, async () => {
    const { c, client } = await start();
    const messages = await firstTurn(client);
    const after1 = await served(c.workers);
    const holder = after1.findIndex((n) => n === 1);
    expect(after1.reduce((a, b) => a + b, 0)).toBe(1);
    const pinned = await c.workers[holder]?.metric("expertmesh_prefix_pinned_blocks");
    expect(pinned).toBeGreaterThan(0);

    await toolTurn(client, messages, 2);
    const after2 = await served(c.workers);
    expect(after2[holder]).toBe(2);
    const metrics = await c.gatewayMetrics();
    expect(sample(metrics, "expertmesh_gateway_routing_decisions_total", 'reason="pinned"')).toBe(1);
    const holderMetrics = await (await fetch(c.workers[holder]?.metricsUrl ?? "")).text();
    expect(sample(holderMetrics, "expertmesh_tool_pins_released_total", 'reason="follow_up"')).toBe(1);
    // The follow-up computed only what the first turn had not: its prompt came from the pinned blocks.
    const hits = await c.workers[holder]?.metric("vllm:prefix_cache_hits_total");
    expect(hits).toBeGreaterThanOrEqual(Math.floor(330 / 16) * 16);
  });

  it("the pinned group's worker killed mid-loop: the next turn completes on the other group", { timeout: 240_000 }, async () => {
    const { c, client } = await start();
    const messages = await firstTurn(client);
    const after1 = await served(c.workers);
    const holder = after1.findIndex((n) => n === 1);
    const other = 1 - holder;
    const dead = c.workers[holder]?.process;
    const exited = new Promise((resolve) => dead?.once("exit", resolve));
    dead?.kill("SIGKILL");
    await exited;

    const { call } = await toolTurn(client, messages, 2);
    if (!call) throw new Error("the follow-up turn ended without a tool call");
    expect(call.name).toBe("lookup");
    expect(await c.workers[other]?.metric("vllm:e2e_request_latency_seconds_count")).toBe(1);
    // Later turns keep going on the survivor, whether or not the roster has dropped the dead worker yet.
    messages.push({
      role: "assistant",
      tool_calls: [{ id: call.id, type: "function", function: { name: call.name, arguments: call.arguments } }],
    });
    messages.push({ role: "tool", tool_call_id: call.id, content: "done" });
    await toolTurn(client, messages, 3);
    await waitFor(() => c.directory.members().length === 1, 60_000, "the roster to drop the dead worker");
  });
});
