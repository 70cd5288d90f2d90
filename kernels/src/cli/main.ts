#!/usr/bin/env node
/**
 * expertmesh — command-line access to the native engine.
 *   expertmesh logits --model DIR --tokens 1,2,3 [--out F.json] [--precision exact|default] [--world W] [--device D]
 *   expertmesh generate --model DIR --tokens 1,2,3 --max-tokens N [--temperature T] [--seed S] [--top-p P] [--top-k K] [--precision P] [--device D]
 *   expertmesh make-checkpoint --shape tiny|20b|120b|custom [--layers N ...] --out DIR [--seed N] [--format hf|original]
 *   expertmesh info [--model DIR]
 *   expertmesh batch submit|status|results|list ...   (the Batch API client, from @expertmesh/orchestrator)
 *   expertmesh pull OWNER/NAME [--dir D] ...   (a model from the Hugging Face hub; see ./pull.ts)
 * Exit status: 0 ok, 2 bad usage, 1 failure (the message names the file/tensor at fault).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { capabilities } from "../capabilities.ts";
import { type ModelShape, parameterCount, SHAPES, type ShapeName } from "../checkpoint/shapes.ts";
import { writeSyntheticCheckpoint } from "../checkpoint/synthetic.ts";
import { Communicator } from "../communicator.ts";
import { type Backend, Engine, isBackend, PRECISIONS, type Precision } from "../engine.ts";
import { BlockPool } from "../kv-blocks.ts";
import { Model } from "../model.ts";
import { LocalSequence } from "../sequence.ts";

class UsageError extends Error {}

const USAGE = `usage:
  expertmesh logits --model DIR --tokens 1,2,3 [--out F.json] [--precision exact|default] [--world W] [--device D]
      --world W: W local ranks (this process and W-1 children), heads and experts split W ways; they
                 meet over Gloo, or over NCCL on GPUs
      --precision: exact = fp32 activations everywhere; default = int8 activations in the expert products
      --device: cpu (default), cuda-emu (the CUDA kernels on the CPU under the emulator: slow, for checks)
                or cuda:N (GPU N); with --world W every rank runs on cpu or cuda-emu alike, and on
                cuda:N rank r takes GPU N + r
  expertmesh generate --model DIR --tokens 1,2,3 --max-tokens N [--temperature T] [--top-p P] [--top-k K] [--seed S] [--precision P] [--device D] [--no-stop-on-eos]
  expertmesh make-checkpoint --shape tiny|20b|120b|custom --out DIR [--seed N] [--format hf|original] [--shard-gib G]
      custom: --layers --hidden --intermediate --experts --experts-per-token --heads --kv-heads --head-dim --vocab --window
  expertmesh info [--model DIR]
  expertmesh batch submit FILE | status ID [--wait] | results ID | list   (see expertmesh batch --help)
  expertmesh pull OWNER/NAME [--dir D] [--revision R] [--include GLOB]... [--connections N] [--verify] [--endpoint URL]`;

function parseTokens(s: string | undefined): number[] {
  if (!s) throw new UsageError("--tokens is required (comma-separated token ids)");
  const out = s.split(",").map((x) => x.trim());
  for (const x of out) if (!/^\d+$/.test(x)) throw new UsageError(`--tokens: '${x}' is not a token id`);
  return out.map(Number);
}

function int(name: string, s: string | undefined, dflt?: number): number {
  if (s === undefined) {
    if (dflt === undefined) throw new UsageError(`--${name} is required`);
    return dflt;
  }
  if (!/^\d+$/.test(s)) throw new UsageError(`--${name} must be a non-negative integer, got '${s}'`);
  return Number(s);
}

function float(name: string, s: string | undefined, dflt: number): number {
  if (s === undefined) return dflt;
  const v = Number(s);
  if (!Number.isFinite(v)) throw new UsageError(`--${name} must be a number, got '${s}'`);
  return v;
}

interface Rank {
  rank: number;
  world: number;
  rendezvous: string;
}

function precisionOf(s: string | undefined): Precision {
  if (s === undefined) return "default";
  if (!(PRECISIONS as readonly string[]).includes(s))
    throw new UsageError(`--precision must be one of ${PRECISIONS.join(", ")}, got '${s}'`);
  return s as Precision;
}

function deviceOf(s: string | undefined): Backend {
  if (s === undefined) return "cpu";
  if (!isBackend(s)) throw new UsageError(`--device must be cpu, cuda-emu or cuda:N, got '${s}'`);
  return s;
}

/** The device of rank r when rank 0 runs on `device`: GPUs are one per rank, in order. */
function rankDevice(device: Backend, r: number): Backend {
  const gpu = /^cuda:(\d+)$/.exec(device);
  return gpu ? `cuda:${Number(gpu[1]) + r}` : device;
}

async function open(dir: string | undefined, positions: number, precision: Precision, device: Backend, rank?: Rank) {
  if (!dir) throw new UsageError("--model is required");
  const model = await Model.load(dir, rank ? { rank: rank.rank, world: rank.world } : {});
  const communicator = rank ? await Communicator.connectOn(device, { ...rank, timeoutMs: 60_000 }) : undefined;
  const blockSize = 16;
  const fullBlocks = Math.ceil(positions / blockSize) + 1;
  const engine = new Engine(model, {
    blockSize,
    numFullBlocks: fullBlocks,
    numSlidingBlocks: fullBlocks,
    precision,
    backend: device,
    ...(communicator ? { communicator } : {}),
  });
  return { model, engine, seq: new LocalSequence(engine, new BlockPool(fullBlocks), new BlockPool(fullBlocks)) };
}

/**
 * Starts ranks 1..W-1 as child processes following this process's steps; returns the rendezvous and a
 * function that waits for them (after stopFollowers) — or kills them when this rank failed.
 */
function spawnFollowers(dir: string, positions: number, world: number, precision: Precision, device: Backend) {
  const store = mkdtempSync(join(tmpdir(), "expertmesh-rdzv-"));
  const rendezvous = `file://${store}`;
  const children: ChildProcess[] = [];
  const exits: Promise<number | null>[] = [];
  for (let r = 1; r < world; r++) {
    const args = [
      "_follow",
      "--model",
      dir,
      "--positions",
      String(positions),
      "--rank",
      String(r),
      "--world",
      String(world),
      "--rendezvous",
      rendezvous,
      "--precision",
      precision,
      "--device",
      rankDevice(device, r),
    ];
    const child = spawn(process.execPath, [process.argv[1] as string, ...args], { stdio: ["ignore", "ignore", "inherit"] });
    children.push(child);
    exits.push(new Promise((resolve) => child.on("exit", (code) => resolve(code))));
  }
  const cleanup = () => rmSync(store, { recursive: true, force: true });
  return {
    rendezvous,
    async join() {
      const codes = await Promise.all(exits);
      cleanup();
      const bad = codes.findIndex((c) => c !== 0);
      if (bad >= 0) throw new Error(`rank ${bad + 1} exited with ${codes[bad]}`);
    },
    kill() {
      for (const c of children) c.kill("SIGKILL");
      cleanup();
    },
  };
}

/** A follower rank of `logits --world W` (started by the CLI itself). */
async function follow(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: "string" },
      positions: { type: "string" },
      rank: { type: "string" },
      world: { type: "string" },
      rendezvous: { type: "string" },
      precision: { type: "string" },
      device: { type: "string" },
    },
  });
  const rank = { rank: int("rank", values.rank), world: int("world", values.world), rendezvous: values.rendezvous ?? "" };
  const { engine } = await open(
    values.model,
    int("positions", values.positions),
    precisionOf(values.precision),
    deviceOf(values.device),
    rank,
  );
  await engine.follow();
}

async function logits(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: "string" },
      tokens: { type: "string" },
      out: { type: "string" },
      precision: { type: "string", default: "default" },
      world: { type: "string", default: "1" },
      device: { type: "string" },
    },
  });
  const precision = precisionOf(values.precision);
  const device = deviceOf(values.device);
  const tokens = parseTokens(values.tokens);
  const world = int("world", values.world);
  if (world < 1) throw new UsageError("--world must be at least 1");
  if (!values.model) throw new UsageError("--model is required");
  const followers = world > 1 ? spawnFollowers(values.model, tokens.length, world, precision, device) : undefined;
  let flat: Float32Array | undefined;
  let model: Model;
  try {
    const opened = await open(
      values.model,
      tokens.length,
      precision,
      device,
      followers ? { rank: 0, world, rendezvous: followers.rendezvous } : undefined,
    );
    model = opened.model;
    [flat] = await opened.seq.feed(tokens);
    if (followers) {
      await opened.engine.stopFollowers();
      await followers.join();
    }
  } catch (err) {
    followers?.kill();
    throw err;
  }
  const V = model.config.vocab;
  const rows: number[][] = [];
  for (let t = 0; t < tokens.length; t++) rows.push(Array.from((flat as Float32Array).subarray(t * V, (t + 1) * V)));
  const json = JSON.stringify({ logits: rows });
  if (values.out) writeFileSync(values.out, json);
  else process.stdout.write(`${json}\n`);
}

async function generate(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: "string" },
      tokens: { type: "string" },
      "max-tokens": { type: "string" },
      temperature: { type: "string" },
      "top-p": { type: "string" },
      "top-k": { type: "string" },
      seed: { type: "string" },
      precision: { type: "string" },
      device: { type: "string" },
      "stop-on-eos": { type: "boolean", default: true },
    },
    allowNegative: true,
  });
  const prompt = parseTokens(values.tokens);
  const maxTokens = int("max-tokens", values["max-tokens"]);
  const { model, engine, seq } = await open(
    values.model,
    prompt.length + maxTokens,
    precisionOf(values.precision),
    deviceOf(values.device),
  );
  const sampling = {
    temperature: float("temperature", values.temperature, 0),
    topP: float("top-p", values["top-p"], 1),
    topK: int("top-k", values["top-k"], 0),
    seed: int("seed", values.seed, 0),
  };
  const stops = new Set([200002, 200012, 199999, model.config.eosTokenId]);
  const out: number[] = [];
  let input = prompt;
  const started = performance.now();
  for (let i = 0; i < maxTokens; i++) {
    if (!seq.reserve(input.length)) throw new Error("KV cache is full");
    const [r] = await engine.step([seq.entry(input, { sampling: { ...sampling, counter: i } })]);
    seq.advance(input.length);
    const token = r?.token as number;
    out.push(token);
    if (values["stop-on-eos"] && stops.has(token)) break;
    input = [token];
  }
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(`${JSON.stringify({ tokens: out })}\n`);
  process.stderr.write(`${out.length} tokens in ${seconds.toFixed(2)}s\n`);
}

function makeCheckpoint(argv: string[]): void {
  const { values } = parseArgs({
    args: argv,
    options: {
      shape: { type: "string" },
      out: { type: "string" },
      seed: { type: "string", default: "0" },
      format: { type: "string", default: "hf" },
      "shard-gib": { type: "string" },
      layers: { type: "string" },
      hidden: { type: "string" },
      intermediate: { type: "string" },
      experts: { type: "string" },
      "experts-per-token": { type: "string" },
      heads: { type: "string" },
      "kv-heads": { type: "string" },
      "head-dim": { type: "string" },
      vocab: { type: "string" },
      window: { type: "string" },
    },
  });
  if (!values.out) throw new UsageError("--out is required");
  if (values.format !== "hf" && values.format !== "original") throw new UsageError("--format must be hf or original");
  let shape: ModelShape;
  if (values.shape === "custom") {
    const base = SHAPES.tiny;
    shape = {
      numLayers: int("layers", values.layers, base.numLayers),
      hidden: int("hidden", values.hidden, base.hidden),
      intermediate: int("intermediate", values.intermediate, base.intermediate),
      numExperts: int("experts", values.experts, base.numExperts),
      expertsPerToken: int("experts-per-token", values["experts-per-token"], base.expertsPerToken),
      numQHeads: int("heads", values.heads, base.numQHeads),
      numKvHeads: int("kv-heads", values["kv-heads"], base.numKvHeads),
      headDim: int("head-dim", values["head-dim"], base.headDim),
      vocab: int("vocab", values.vocab, base.vocab),
      slidingWindow: int("window", values.window, base.slidingWindow),
    };
  } else if (values.shape && values.shape in SHAPES) {
    shape = SHAPES[values.shape as ShapeName];
  } else {
    throw new UsageError("--shape must be tiny, 20b, 120b or custom");
  }
  const started = performance.now();
  let lastReport = 0;
  const files = writeSyntheticCheckpoint({
    shape,
    out: values.out,
    seed: int("seed", values.seed),
    format: values.format,
    ...(values["shard-gib"] ? { shardBytes: Math.floor(float("shard-gib", values["shard-gib"], 4) * 1024 ** 3) } : {}),
    onProgress: (written, total) => {
      const now = performance.now();
      if (now - lastReport > 1000 || written === total) {
        lastReport = now;
        const mbps = written / 1e6 / ((now - started) / 1000);
        process.stderr.write(
          `\r[make-checkpoint] ${((100 * written) / total).toFixed(1)}% of ${(total / 1e9).toFixed(2)} GB, ${mbps.toFixed(0)} MB/s   `,
        );
      }
    },
  });
  process.stderr.write("\n");
  process.stdout.write(
    `${JSON.stringify({ out: values.out, files, parameters: parameterCount(shape), seconds: (performance.now() - started) / 1000 })}\n`,
  );
}

async function info(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { model: { type: "string" } } });
  const out: Record<string, unknown> = { capabilities: capabilities() };
  if (values.model) {
    const m = await Model.load(values.model);
    out.model = { dir: m.dir, config: m.config, shard: m.shard };
  }
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}

const [command, ...rest] = process.argv.slice(2);

/** The process's environment and streams, as the subcommands that take them as arguments want them. */
function processIo() {
  return {
    env: process.env,
    out: (t: string) => process.stdout.write(t),
    err: (t: string) => process.stderr.write(t),
    tty: process.stderr.isTTY === true,
  };
}
try {
  if (command === "logits") await logits(rest);
  else if (command === "_follow") await follow(rest);
  else if (command === "generate") await generate(rest);
  else if (command === "make-checkpoint") makeCheckpoint(rest);
  else if (command === "info") await info(rest);
  else if (command === "batch") {
    // The Batch API client lives with the batch runner (orchestrator); this binary is its front door.
    const { runBatchCli } = await import("@expertmesh/orchestrator/cli/batch");
    process.exitCode = await runBatchCli(rest, processIo());
  } else if (command === "pull") {
    const { runPull } = await import("./pull.ts");
    process.exitCode = await runPull(rest, processIo());
  } else throw new UsageError(command ? `unknown command '${command}'` : "no command given");
} catch (err) {
  if (err instanceof UsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
    process.stderr.write(`expertmesh: ${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  process.stderr.write(`expertmesh: ${(err as Error).message}\n`);
  process.exit(1);
}
