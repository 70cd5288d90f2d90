/*
 * gptoss.h — the C ABI of the ExpertMesh native engine.
 *
 * Style of gpt-oss's functions.h: every call returns a gptoss_status, objects are opaque handles, and
 * nothing here knows about JavaScript, tokenization or HTTP. The Node binding (binding/) is the only
 * caller today; the ABI is plain C so a future Python or Rust host can use the same library.
 */
#ifndef GPTOSS_H
#define GPTOSS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gptoss_status {
  gptoss_status_success = 0,
  gptoss_status_invalid_argument = 1,
  gptoss_status_unsupported_argument = 2,
  gptoss_status_invalid_state = 3,
  gptoss_status_io_error = 4,
  gptoss_status_insufficient_memory = 5,
  gptoss_status_insufficient_resources = 6,
  gptoss_status_unsupported_system = 7,
  gptoss_status_context_overflow = 8,
  gptoss_status_invalid_checkpoint = 9,
  gptoss_status_communicator_error = 10,
  gptoss_status_numeric_error = 11, /* a step produced NaN or infinite logits (broken weights or config) */
} gptoss_status;

/* What the host can do. Filled by gptoss_query_capabilities; strings are static. */
typedef struct gptoss_capabilities {
  /* CPU ISA extensions usable by this process (CPUID and OS-enabled state both checked). */
  int cpu_avx2;
  int cpu_fma;
  int cpu_avx512f;
  int cpu_avx512bw;
  int cpu_avx512_bf16;
  int cpu_avx512_vnni;
  int cpu_avx_vnni;
  int cpu_amx_bf16;
  int cpu_amx_int8;
  int cpu_logical_cores;
  /* CUDA: compiled into this build, and devices the driver reports (0 without a driver). */
  int cuda_compiled;
  int cuda_device_count;
  const char* cuda_architectures; /* e.g. "80;90", empty when not compiled */
  const char* cuda_error;         /* why cuda_device_count is 0, or empty */
  /* NCCL: found by dlopen at run time (never linked). */
  int nccl_loadable;
  int nccl_version; /* ncclGetVersion code, 0 when not loadable */
  /* Gloo: linked, and a TCP device on loopback could be created. */
  int gloo_compiled;
  int gloo_usable;
} gptoss_capabilities;

gptoss_status gptoss_query_capabilities(gptoss_capabilities* out);

/* The message of the last failed call on this thread (names file, tensor, shape...). */
const char* gptoss_last_error(void);

/* ---- model: a checkpoint's weights, or one rank's share of them --------------------------------- */
typedef struct gptoss_model* gptoss_model_t;

typedef struct gptoss_model_config {
  int32_t num_layers, hidden, intermediate, num_experts, experts_per_token;
  int32_t num_q_heads, num_kv_heads, head_dim, vocab, sliding_window, max_positions, eos_token_id;
  int32_t original_format;
} gptoss_model_config;

typedef struct gptoss_shard_info {
  int32_t rank, world, q_head_begin, q_head_end, kv_head_begin, kv_head_end, num_experts;
  uint64_t expert_bytes;
} gptoss_shard_info;

/* Loads <dir> (config.json + safetensors, sharded or not). rank/world select a share; experts (may be
 * NULL) is the explicit placement of this rank, else a contiguous split. */
gptoss_status gptoss_model_load(const char* dir, int32_t rank, int32_t world, const int32_t* experts, size_t num_experts,
                                gptoss_model_t* out);
gptoss_status gptoss_model_get_config(gptoss_model_t model, gptoss_model_config* out);
/* Reads and validates <dir>/config.json alone (no tensors are opened): the check a host runs before it
 * offers to serve a checkpoint. Fails like gptoss_model_load would on that file. */
gptoss_status gptoss_model_read_config(const char* dir, gptoss_model_config* out);
/* Fills info; writes up to capacity expert ids of this rank into experts. */
gptoss_status gptoss_model_get_shard(gptoss_model_t model, gptoss_shard_info* info, int32_t* experts, size_t capacity);
void gptoss_model_release(gptoss_model_t model);

/* ---- engine: a model plus its paged KV cache; runs batched steps --------------------------------- */
typedef struct gptoss_engine* gptoss_engine_t;

/* Sampling of one sequence's next token, from its last row (cpu/sample.cpp has the exact order). */
typedef struct gptoss_sampling {
  float temperature; /* 0 = greedy */
  float top_p;       /* 1 = off */
  int32_t top_k;     /* 0 = off */
  float min_p;       /* 0 = off */
  float presence_penalty, frequency_penalty;
  float repetition_penalty; /* 1 = off */
  uint64_t seed;
  uint64_t counter;  /* index of the token being sampled: makes draws independent of batching */
  int32_t num_top_logprobs;
  const int32_t* bias_ids;
  const float* bias_values;
  int32_t num_bias;
  const int32_t* prompt;
  int32_t num_prompt;
  const int32_t* output;
  int32_t num_output;
  /* Allowed-token bitmask (constrained decoding), xgrammar's layout: bit (id & 31) of word (id >> 5) set
   * = token id allowed. A disallowed token is out before logit_bias, penalties and every cut, and the
   * logprobs are those of the masked distribution. NULL: every token allowed. Otherwise at least
   * ceil(vocab / 32) words (bits of ids >= vocab are ignored), allowing some token: else the step fails
   * with gptoss_status_invalid_argument. */
  const uint32_t* allowed;
  int32_t allowed_words;
} gptoss_sampling;

typedef struct gptoss_sample_result {
  int32_t token;
  float logprob; /* log-softmax of the raw logits (over the allowed tokens, with a mask) */
  int32_t num_top; /* min(num_top_logprobs, allowed tokens) */
  int32_t top_ids[20];
  float top_logprobs[20];
} gptoss_sample_result;

typedef struct gptoss_seq_chunk {
  int32_t num_tokens;         /* rows of this sequence in the step */
  int32_t pos_begin;          /* absolute position of its first row */
  const int32_t* full_blocks; /* KV blocks of full-attention layers, covering [0, pos_begin + num_tokens) */
  int32_t num_full_blocks;
  const int32_t* sliding_blocks; /* KV blocks of sliding-window layers, by position; entries wholly before
                                   pos_begin - window + 1 may be -1 (freed by the caller) */
  int32_t num_sliding_blocks;
  int32_t all_logits;         /* 1: logits for every row; 0: the last row only */
  int32_t return_logits;      /* 1: copy this sequence's logits rows out */
  const gptoss_sampling* sampling; /* NULL: no token is sampled */
} gptoss_seq_chunk;

gptoss_status gptoss_engine_create(gptoss_model_t model, int32_t block_size, int32_t num_full_blocks,
                                   int32_t num_sliding_blocks, gptoss_engine_t* out);
/* One step. logits receives [rows, vocab] float32 for the sequences with return_logits, in order;
 * samples[i] is filled for every sequence with sampling != NULL. */
gptoss_status gptoss_engine_step(gptoss_engine_t engine, const int32_t* tokens, size_t num_tokens,
                                 const gptoss_seq_chunk* seqs, size_t num_seqs, float* logits, size_t logits_capacity,
                                 gptoss_sample_result* samples);
void gptoss_engine_release(gptoss_engine_t engine);

/* Numerics of an engine's steps (set before the first step; every rank of a group must agree).
 * exact: fp32 activations and accumulation everywhere (new engines start here).
 * serving: the MXFP4 expert products quantize activations to int8 per 32-element block and use integer
 * dot products (AVX512-VNNI; hosts without it keep exact), the default of the Node binding. */
typedef enum gptoss_precision { gptoss_precision_exact = 0, gptoss_precision_serving = 1 } gptoss_precision;
gptoss_status gptoss_engine_set_precision(gptoss_engine_t engine, gptoss_precision precision);

/* How the KV cache stores keys and values (gptoss_engine_options.kv_type): fp32; bf16 rounded to
 * nearest even on store; or fp8 e4m3 codes with one fp32 scale per row of head_dim elements (the row's
 * largest magnitude maps to 448). Attention widens to fp32 on load. */
typedef enum gptoss_kv_type { gptoss_kv_f32 = 0, gptoss_kv_bf16 = 1, gptoss_kv_fp8 = 2 } gptoss_kv_type;

/* How the engine reads the dense weights (gptoss_engine_options.dense_weights): bf16 as the checkpoint
 * holds them; q8: the unembedding converted at engine creation to 8-bit codes with one fp32 scale per 32
 * weights (within the serving tolerances); q8_attention: the attention projections too (fewer bytes per
 * decode step, a larger deviation: docs/PERFORMANCE.md). The router and the embedding stay bf16. Products
 * over q8 weights quantize their activations as the serving precision does, in either precision. */
typedef enum gptoss_dense_weights {
  gptoss_dense_bf16 = 0,
  gptoss_dense_q8 = 1,
  gptoss_dense_q8_attention = 2
} gptoss_dense_weights;

/* ---- expert parallelism: a communicator joins the W ranks of a group ------------------------------
 * rendezvous: "file:///dir" (local ranks) or "redis://host:port/?prefix=..." (the cluster's Redis).
 * timeout_ms bounds the join and every collective (the watchdog): a peer that died or hangs makes the
 * call fail with gptoss_status_communicator_error, and gptoss_last_comm_failure() says which. Every
 * rank calls the same collectives in the same order with the same sizes; calls never overlap. */
typedef struct gptoss_comm* gptoss_comm_t;

/* Why the last call on this thread failed with gptoss_status_communicator_error. */
typedef enum gptoss_comm_failure {
  gptoss_comm_failure_none = 0,
  gptoss_comm_failure_timeout = 1,    /* a peer did not answer within the timeout (hung) */
  gptoss_comm_failure_peer_lost = 2,  /* a peer's connection broke (it died, or aborted) */
  gptoss_comm_failure_aborted = 3,    /* the communicator was aborted or failed earlier */
  gptoss_comm_failure_rendezvous = 4, /* the ranks did not all join within the timeout */
  gptoss_comm_failure_transport = 5,  /* the transport is unavailable or failed (no NCCL, CUDA error) */
} gptoss_comm_failure;
gptoss_comm_failure gptoss_last_comm_failure(void);
const char* gptoss_comm_failure_name(gptoss_comm_failure failure);

/* Gloo over TCP (CPU ranks). */
gptoss_status gptoss_comm_connect(int32_t rank, int32_t world, const char* rendezvous, int32_t timeout_ms, gptoss_comm_t* out);
/* NCCL (GPU ranks): unique_id is the 128 bytes rank 0 got from gptoss_comm_nccl_unique_id and
 * published; device is this rank's CUDA device (-1: current). Host buffers are staged. */
gptoss_status gptoss_comm_nccl_unique_id(uint8_t* out, size_t capacity);
gptoss_status gptoss_comm_connect_nccl(int32_t rank, int32_t world, const uint8_t* unique_id, size_t unique_id_bytes,
                                       int32_t device, int32_t timeout_ms, gptoss_comm_t* out);
/* NCCL with the unique id shared through the rendezvous a Gloo rank would take (rank 0 makes and
 * publishes it, the others wait for it within the timeout). */
gptoss_status gptoss_comm_connect_nccl_at(int32_t rank, int32_t world, const char* rendezvous, int32_t device, int32_t timeout_ms,
                                          gptoss_comm_t* out);
gptoss_status gptoss_comm_all_reduce_sum(gptoss_comm_t comm, float* data, int64_t count);
/* root's `bytes` bytes into every rank's data. */
gptoss_status gptoss_comm_broadcast(gptoss_comm_t comm, void* data, int64_t bytes, int32_t root);
/* Every rank's `bytes` bytes of in, concatenated by rank into out (world × bytes). */
gptoss_status gptoss_comm_all_gather(gptoss_comm_t comm, const void* in, void* out, int64_t bytes);
gptoss_status gptoss_comm_barrier(gptoss_comm_t comm);
/* Marks the communicator failed: later calls fail at once (gptoss_comm_failure_aborted). Callable from any
 * thread; a collective already waiting on Gloo still ends by its own timeout or a peer's failure. */
gptoss_status gptoss_comm_abort(gptoss_comm_t comm, const char* reason);
void gptoss_comm_release(gptoss_comm_t comm);

/* An engine on rank r of a group (the model loaded as that rank's shard). Rank 0 (the leader) runs
 * gptoss_engine_step as usual and broadcasts each step's plan; other ranks call gptoss_engine_follow,
 * which runs the leader's steps in lockstep until the leader stops them (or the communicator fails). */
gptoss_status gptoss_engine_create_ranked(gptoss_model_t model, int32_t block_size, int32_t num_full_blocks,
                                          int32_t num_sliding_blocks, gptoss_comm_t comm, gptoss_engine_t* out);
gptoss_status gptoss_engine_follow(gptoss_engine_t engine);
/* Leader: ends the followers' gptoss_engine_follow. */
gptoss_status gptoss_engine_stop_followers(gptoss_engine_t engine);
/* Leader, while idle: an empty plan, so that followers' waits (bounded by the watchdog) stay alive. */
gptoss_status gptoss_engine_keepalive(gptoss_engine_t engine);

/* ---- engine creation with options -----------------------------------------------------------------
 * backend picks the ops every step of the engine runs on, once: "cpu" (NULL means "cpu"), "cuda:N" (GPU N:
 * gptoss_status_invalid_argument "backend not built" in a build without CUDA, "not available" without
 * device N; several ranks need an NCCL communicator) or "cuda-emu" (the CUDA op set run on the CPU by the
 * emulator); any other name fails with invalid_argument as unknown. comm NULL: a single rank; otherwise as
 * gptoss_engine_create_ranked. gptoss_engine_create and _create_ranked are this with backend "cpu". */
typedef struct gptoss_engine_options {
  int32_t block_size;
  int32_t num_full_blocks;
  int32_t num_sliding_blocks;
  const char* backend;
  gptoss_comm_t comm;
  /* Decode steps replayed from captured launch graphs: 0 = the backend's default (on for cuda:N, off
   * elsewhere), 1 = on where the backend can (cuda:N, cuda-emu), -1 = off. Several ranks: always off. */
  int32_t decode_graphs;
  int32_t kv_type; /* gptoss_kv_type (0: fp32) */
  int32_t dense_weights; /* gptoss_dense_weights (0: bf16) */
  /* cpu backend: 1 copies the weights once into anonymous memory in 2 MiB huge pages (one TLB entry per
   * 2 MiB of a weight stream instead of per 4 KiB page of the checkpoint's mapping); 0 reads them where
   * the checkpoint is mapped. Other backends copy into their own memory either way. */
  int32_t resident_weights;
  /* The gptoss_precision the engine starts in (0: exact; gptoss_engine_set_precision changes it later). With
   * resident weights on the cpu backend, serving also places the dense matrices in the layout its serving
   * kernel reads (exact products read that layout too, unpacking it as they go). */
  int32_t precision;
} gptoss_engine_options;
gptoss_status gptoss_engine_create_with_options(gptoss_model_t model, const gptoss_engine_options* options, gptoss_engine_t* out);
/* The backend the engine's steps run on ("cpu"); valid while the engine lives. */
const char* gptoss_engine_backend(gptoss_engine_t engine);
/* How many decode graphs the engine captured and how many steps replayed one (0 and 0 without graphs). */
gptoss_status gptoss_engine_graph_stats(gptoss_engine_t engine, uint64_t* captures, uint64_t* replays);

/* What the engine's KV cache holds, on this rank (one GPU on a device backend). */
typedef struct gptoss_kv_capacity {
  uint64_t bytes;           /* both pools, in the backend's memory (a decode graph's padding block included) */
  uint64_t bytes_per_token; /* one token's keys and values in every layer */
  int64_t full_tokens;      /* tokens the full-attention pool holds: blocks × block_size */
  int64_t sliding_tokens;   /* tokens the sliding-window pool holds */
  int32_t kv_type;          /* gptoss_kv_type */
} gptoss_kv_capacity;
gptoss_status gptoss_engine_kv_capacity(gptoss_engine_t engine, gptoss_kv_capacity* out);

/* ---- machine probes (benchmarks) ---------------------------------------------------------------- */
/* Read bandwidth over a buffer of `bytes` on all OpenMP threads, each summing the chunk it first touched,
 * in GB/s (1e9 bytes): writes one figure per timed pass to gb_per_s[0..passes). Page faults and one
 * warm-up pass are not timed. Choose `bytes` well above the last-level cache or it measures the cache.
 * `on_cpu` (may be NULL) receives, per pass, the least over threads of thread CPU time / pass wall time:
 * near 1 when no thread lost its core during the pass. */
gptoss_status gptoss_probe_read_bandwidth(uint64_t bytes, int32_t passes, double* gb_per_s, double* on_cpu);
/* Peak fp32 FMA throughput on all threads with the host's widest vectors, in GFLOP/s (FMA = 2 flops). */
gptoss_status gptoss_probe_fma_rate(double* gflops);

const char* gptoss_status_name(gptoss_status status);

#ifdef __cplusplus
}
#endif

#endif /* GPTOSS_H */
