/**
 * Worker metrics with vLLM's names (so vLLM dashboards, alerts and KEDA triggers work unchanged),
 * plus the scheduler's own step timing. Label: model_name.
 */
import { Counter, Gauge, Histogram, type Registry } from "@expertmesh/common";
import type { EngineObserver } from "./engine-observer.ts";

const latency = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];

export function createEngineMetrics(registry: Registry, modelName: string) {
  const labelNames = ["model_name"] as const;
  const l = { model_name: modelName };
  const m = {
    running: new Gauge({ name: "vllm:num_requests_running", help: "Requests in the running batch", labelNames, registers: [registry] }),
    waiting: new Gauge({ name: "vllm:num_requests_waiting", help: "Requests waiting to be scheduled", labelNames, registers: [registry] }),
    kvUsage: new Gauge({ name: "vllm:kv_cache_usage_perc", help: "Fraction of KV blocks in use (0-1)", labelNames, registers: [registry] }),
    ttft: new Histogram({
      name: "vllm:time_to_first_token_seconds",
      help: "Time to first token",
      labelNames,
      buckets: latency,
      registers: [registry],
    }),
    itl: new Histogram({
      name: "vllm:inter_token_latency_seconds",
      help: "Time between tokens of a request",
      labelNames,
      buckets: latency,
      registers: [registry],
    }),
    queue: new Histogram({
      name: "vllm:request_queue_time_seconds",
      help: "Time waiting before first scheduled",
      labelNames,
      buckets: latency,
      registers: [registry],
    }),
    e2e: new Histogram({
      name: "vllm:e2e_request_latency_seconds",
      help: "Request latency end to end",
      labelNames,
      buckets: latency,
      registers: [registry],
    }),
    promptTokens: new Counter({ name: "vllm:prompt_tokens_total", help: "Prompt tokens processed", labelNames, registers: [registry] }),
    generationTokens: new Counter({ name: "vllm:generation_tokens_total", help: "Tokens generated", labelNames, registers: [registry] }),
    prefixQueries: new Counter({
      name: "vllm:prefix_cache_queries_total",
      help: "Prompt tokens looked up in the prefix cache",
      labelNames,
      registers: [registry],
    }),
    prefixHits: new Counter({
      name: "vllm:prefix_cache_hits_total",
      help: "Prompt tokens served from the prefix cache",
      labelNames,
      registers: [registry],
    }),
    kvBytesPerToken: new Gauge({
      name: "expertmesh_kv_cache_bytes_per_token",
      help: "KV cache bytes one token takes in every layer on this rank (its element type: WORKER_KV_DTYPE)",
      labelNames,
      registers: [registry],
    }),
    kvTokens: new Gauge({
      name: "expertmesh_kv_cache_tokens",
      help: "Tokens the full-attention KV pool holds on this rank (blocks × block size)",
      labelNames,
      registers: [registry],
    }),
    kvSlidingBlocks: new Gauge({
      name: "expertmesh_kv_cache_sliding_blocks",
      help: "Blocks of the sliding-window KV pool on this rank: running sequences' windows plus cached prefixes' (WORKER_KV_CACHED_WINDOWS)",
      labelNames,
      registers: [registry],
    }),
    prefixHitRate: new Gauge({
      name: "expertmesh_prefix_cache_hit_rate",
      help: "Prompt tokens served from the prefix cache / prompt tokens looked up, since start (0-1)",
      labelNames,
      registers: [registry],
    }),
    pinnedBlocks: new Gauge({
      name: "expertmesh_prefix_pinned_blocks",
      help: "Full-attention KV blocks pinned for tool loops (GATEWAY_TOOL_PIN_MS)",
      labelNames,
      registers: [registry],
    }),
    pinsReleased: new Counter({
      name: "expertmesh_tool_pins_released_total",
      help: "Tool-loop pins ended, by reason: follow_up (the next turn arrived), expired (TTL), pressure (live requests needed the blocks)",
      labelNames: ["model_name", "reason"] as const,
      registers: [registry],
    }),
    preemptions: new Counter({
      name: "vllm:num_preemptions_total",
      help: "Sequences preempted (recomputed later)",
      labelNames,
      registers: [registry],
    }),
    stepSeconds: new Histogram({
      name: "expertmesh_engine_step_seconds",
      help: "Wall time of one engine step",
      labelNames,
      buckets: latency,
      registers: [registry],
    }),
    schedulerSeconds: new Histogram({
      name: "expertmesh_scheduler_overhead_seconds",
      help: "Scheduler time per step outside the engine call",
      labelNames,
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05],
      registers: [registry],
    }),
    stepTokens: new Histogram({
      name: "expertmesh_engine_step_tokens",
      help: "Token rows per engine step",
      labelNames,
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096],
      registers: [registry],
    }),
    grammarCompileSeconds: new Histogram({
      name: "expertmesh_grammar_compile_seconds",
      help: "Time to compile a request's constraint (the first time; cache hits are counted apart)",
      labelNames,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5],
      registers: [registry],
    }),
    grammarCacheHits: new Counter({
      name: "expertmesh_grammar_cache_hits_total",
      help: "Constraints served from the compiled-grammar cache",
      labelNames,
      registers: [registry],
    }),
    grammarMaskSeconds: new Histogram({
      name: "expertmesh_grammar_mask_seconds",
      help: "Time to compute the allowed-token masks of one step (all constrained sequences)",
      labelNames,
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05],
      registers: [registry],
    }),
    forcedTokens: new Counter({
      name: "expertmesh_forced_tokens_total",
      help: "Tokens appended without sampling: jump-forward continuations and reasoning-budget headers",
      labelNames,
      registers: [registry],
    }),
    reasoningTruncations: new Counter({
      name: "expertmesh_reasoning_truncated_total",
      help: "Generations whose reasoning a budget (max_reasoning_tokens) cut",
      labelNames,
      registers: [registry],
    }),
  };
  return {
    ...m,
    labels: l,
  };
}

export type EngineMetrics = ReturnType<typeof createEngineMetrics>;

/** The batch engine's observer port over these metrics. */
export function metricsObserver(m: EngineMetrics): EngineObserver {
  const l = m.labels;
  return {
    queued: (promptTokens) => m.promptTokens.inc(l, promptTokens),
    started: (queueSeconds) => m.queue.observe(l, queueSeconds),
    prefixLookup: (queried, hit, hitRate) => {
      m.prefixQueries.inc(l, queried);
      m.prefixHits.inc(l, hit);
      m.prefixHitRate.set(l, hitRate);
    },
    preempted: () => m.preemptions.inc(l),
    load: (running, waiting, kvUsage) => {
      m.running.set(l, running);
      m.waiting.set(l, waiting);
      m.kvUsage.set(l, kvUsage);
    },
    stepped: (seconds, rows) => {
      m.stepSeconds.observe(l, seconds);
      m.stepTokens.observe(l, rows);
    },
    scheduled: (seconds) => m.schedulerSeconds.observe(l, seconds),
    masked: (seconds) => m.grammarMaskSeconds.observe(l, seconds),
    firstToken: (seconds) => m.ttft.observe(l, seconds),
    interToken: (seconds) => m.itl.observe(l, seconds),
    generated: (tokens) => m.generationTokens.inc(l, tokens),
    finished: (e2eSeconds) => m.e2e.observe(l, e2eSeconds),
    pins: (pinnedBlocks, released) => {
      m.pinnedBlocks.set(l, pinnedBlocks);
      if (released && released.count > 0) m.pinsReleased.inc({ ...l, reason: released.reason }, released.count);
    },
  };
}
