/**
 * Cache-aware routing: which ready group a generation goes to, from what the groups publish (their
 * prefix summaries and loads, via heartbeats → the orchestrator's roster) and the prompt alone, so that
 * replicated gateways reading the same roster choose the same group without talking to each other.
 *
 * For a prompt of P tokens, group g is expected to hold cached(g) of them: the leading blocks of the
 * prompt's hash chain its summary holds (× the block size, at most P − 1: one token is always computed).
 * Its load(g) is the requests it reported running and waiting plus its pinned tool loops (publishedLoad),
 * or, when more, the generations this gateway has open there (fresher than a heartbeat during a burst).
 * The cost of sending the prompt to g is
 *
 *     cost(g) = (P − cached(g)) + weight × P × load(g)
 *
 * prefill tokens to compute, plus each request already there counted as `weight` prompts' worth of
 * work; the cheapest group wins, ties to the lowest address. When no group holds any block of the
 * prompt, the router falls back to least-load (the caller's live count of outstanding tokens).
 *
 * A tool loop's next turn goes to the group holding its pinned prefix (staysWith) unless that group
 * carries more than PIN_YIELD_LOAD × the mean load of the ready groups; then it goes to the cheapest
 * group by the cost above (its holder counted as holding the pinned blocks). Turns stay where their
 * conversation's KV is however the loads fluctuate between turns, but pins cannot pile conversations
 * onto one group beyond that bound.
 */
import { blockHashes, PrefixSummary, prefixRoot } from "@expertmesh/common/prefix";
import type { Member } from "@expertmesh/proto/cluster";

export type RoutingPolicy = "cache_aware" | "least_load";

/** Why a group was chosen (a metric label). */
export type RouteReason = "pinned" | "prefix" | "least_load";

/** One ready group as the router scores it. */
export interface GroupScore {
  address: string;
  /** Prompt tokens it is expected to hold. */
  cached: number;
  /** Requests it reported running + waiting. */
  load: number;
}

/** The group of least cost (see the header), or undefined when none holds any of the prompt. */
export function cheapest(groups: readonly GroupScore[], promptTokens: number, weight: number): GroupScore | undefined {
  let best: GroupScore | undefined;
  let bestCost = Number.POSITIVE_INFINITY;
  for (const g of groups) {
    const cost = promptTokens - g.cached + weight * promptTokens * g.load;
    if (cost < bestCost || (cost === bestCost && best !== undefined && g.address < best.address)) {
      best = g;
      bestCost = cost;
    }
  }
  return best && groups.some((g) => g.cached > 0) ? best : undefined;
}

/** A pinned turn leaves its holder only when the holder's load is above this multiple of the mean. */
export const PIN_YIELD_LOAD = 1.5;

/** Where a tool loop's next turn goes: its holder (one of `groups`), or past the load bound the cheapest (see the header). */
export function staysWith(holder: GroupScore, groups: readonly GroupScore[], promptTokens: number, weight: number): GroupScore {
  const mean = groups.reduce((n, g) => n + g.load, 0) / groups.length;
  if (holder.load <= PIN_YIELD_LOAD * mean) return holder;
  return cheapest(groups, promptTokens, weight) ?? holder;
}

/**
 * A prompt's block-hash chains, one per engine salt and block size among the groups (usually one), each
 * computed once, and the groups' decoded summaries.
 */
export class PromptChains {
  readonly #prompt: readonly number[];
  readonly #chains = new Map<string, string[]>();

  constructor(prompt: readonly number[]) {
    this.#prompt = prompt;
  }

  get promptTokens(): number {
    return this.#prompt.length;
  }

  /** The chain under `member`'s published salt and block size (empty without a summary). */
  chainFor(member: Member): string[] {
    const p = member.load?.prefix;
    if (!p || p.blockSize === 0) return [];
    const key = `${p.blockSize}\0${p.salt}`;
    let chain = this.#chains.get(key);
    if (!chain) {
      chain = blockHashes(prefixRoot(p.salt), this.#prompt, p.blockSize);
      this.#chains.set(key, chain);
    }
    return chain;
  }

  /** Prompt tokens `member` is expected to hold (its summary's match of the chain, at most P − 1). */
  cachedOn(member: Member): number {
    const p = member.load?.prefix;
    if (!p || p.bloom.length === 0) return 0;
    const blocks = new PrefixSummary(p.bloom).matched(this.chainFor(member));
    return Math.min(blocks * p.blockSize, this.#prompt.length - 1);
  }

  /** The key of a tool loop started by this prompt on `member`: the hash of its last complete block. */
  loopKey(member: Member): string | undefined {
    return this.chainFor(member).at(-1);
  }
}

/**
 * Published load of a member: the requests it reported running and waiting, plus its pinned tool loops
 * (conversations between turns whose next turn is expected there: agent traffic's load is conversations,
 * and a conversation in its tool's think time has no request running).
 */
export function publishedLoad(member: Member): number {
  const l = member.load;
  return (l?.requestsRunning ?? 0) + (l?.requestsWaiting ?? 0) + (l?.prefix?.pinnedLoops ?? 0);
}
