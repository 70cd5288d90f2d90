/**
 * Cache-aware routing: which ready group a generation goes to, from what the groups publish (their
 * prefix summaries and loads, via heartbeats → the orchestrator's roster) and the prompt alone, so that
 * replicated gateways reading the same roster choose the same group without talking to each other.
 *
 * For a prompt of P tokens, group g is expected to hold cached(g) of them: the leading blocks of the
 * prompt's hash chain its summary holds (× the block size, at most P − 1: one token is always computed).
 * Its load(g) is the requests it reported running and waiting. The cost of sending the prompt to g is
 *
 *     cost(g) = (P − cached(g)) + weight × P × load(g)
 *
 * prefill tokens to compute, plus each request already there counted as `weight` prompts' worth of
 * work; the cheapest group wins, ties to the lowest address. When no group holds any block of the
 * prompt, the router falls back to least-load (the caller's live count of outstanding tokens).
 *
 * A tool loop's next turn goes to the group holding its pinned prefix (cached: at least the pinned
 * blocks) unless another group is cheaper by the same cost (staysWith): only a load difference
 * worth more than the prefix it would recompute moves a conversation, so pins cannot pile a
 * conversation's turns onto a group that others have long left behind.
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

/** The holder of a tool loop's pinned prefix, unless another group is strictly cheaper (see the header). */
export function staysWith(holder: GroupScore, groups: readonly GroupScore[], promptTokens: number, weight: number): GroupScore {
  const cost = (g: GroupScore) => promptTokens - g.cached + weight * promptTokens * g.load;
  const best = cheapest(groups, promptTokens, weight);
  return best && cost(best) < cost(holder) ? best : holder;
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

/** Published load of a member: the requests it reported running and waiting. */
export function publishedLoad(member: Member): number {
  return (member.load?.requestsRunning ?? 0) + (member.load?.requestsWaiting ?? 0);
}
