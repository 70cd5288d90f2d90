#!/usr/bin/env node
/**
 * bench/relay-chain — what the gateway's per-token promise chain costs: one million events pulled through
 * 0–3 stacked `relay()` decorators (domain/generation-backend.ts, as admission, telemetry and token limits
 * stack on the worker pool) by a `for await` consumer, from a source that resolves at once. Prints CPU
 * time per event by depth; the difference between rows is what one decorator adds per streamed token.
 *
 *   node bench/relay-chain.ts [--events 1000000] [--rounds 5]
 */
import { parseArgs } from "node:util";
import { relay } from "@expertmesh/gateway/testing";

const { values } = parseArgs({ options: { events: { type: "string", default: "1000000" }, rounds: { type: "string", default: "5" } } });
const events = Number(values.events);
const rounds = Number(values.rounds);

function source(): AsyncIterator<number> {
  let i = 0;
  return {
    next: () => Promise.resolve(i === events ? { done: true, value: undefined } : { done: false, value: i++ }),
    return: () => Promise.resolve({ done: true, value: undefined }),
  };
}

let sink = 0;
function chain(depth: number): AsyncIterable<number> {
  let it: AsyncIterable<number> = { [Symbol.asyncIterator]: source };
  for (let d = 0; d < depth; d++) {
    const inner = it;
    it = relay(() => inner[Symbol.asyncIterator](), {
      onEvent: (e) => {
        sink += e;
      },
      onEnd: () => {},
    });
  }
  return it;
}

/** CPU ns per event, median over the rounds (the first round, JIT warm-up, is dropped). */
async function measure(depth: number): Promise<number> {
  const runs: number[] = [];
  for (let r = 0; r <= rounds; r++) {
    const c0 = process.cpuUsage();
    for await (const _ of chain(depth)) {
    }
    const c = process.cpuUsage(c0);
    if (r > 0) runs.push(((c.user + c.system) * 1000) / events);
  }
  return runs.sort((a, b) => a - b)[Math.floor(runs.length / 2)] ?? Number.NaN;
}

const rows: [number, number][] = [];
for (const depth of [0, 1, 2, 3]) rows.push([depth, await measure(depth)]);
console.log(`bench/relay-chain — ${events} events per round, median of ${rounds} rounds, ${new Date().toISOString()}`);
console.log("| relays stacked | CPU ns per event | added by the relays |\n|---|---|---|");
const base = rows[0]?.[1] ?? 0;
for (const [depth, ns] of rows) console.log(`| ${depth} | ${ns.toFixed(0)} | ${(ns - base).toFixed(0)} |`);
if (sink < 0) console.log(sink);
