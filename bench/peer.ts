#!/usr/bin/env node
/**
 * bench/peer — ExpertMesh's CPU engine beside llama.cpp on the same machine and the same model shape
 * (issue #25). llama.cpp runs a random-weight gpt-oss GGUF (/work/shared/peer/make_gptoss_gguf.py: MXFP4
 * experts, bf16 dense weights); ExpertMesh runs bench/engine on its synthetic checkpoint of the same shape.
 *
 * Method. The two programs run alternately, `--repeats` rounds, in ABBA order (llama.cpp first in even
 * rounds, ExpertMesh first in odd ones) so that slow drift of a shared host falls on both sides. Each
 * program's turn begins with a warm-up pass: the other model's files are dropped from the page cache
 * (`dd iflag=nocache count=0`; the machine cannot hold both 20b models in memory) and this model's files
 * are read once end to end, so neither program measures disk reads. Then, with llama.cpp on `--threads`
 * threads (default 2) and flash attention on:
 *   - batch-1 decode and prefill:  llama-bench -p 64,1024 -n TG -r 1 -fa 1 -o json   (tgTG, pp64, pp1024)
 *   - batched decode (with --batched-bench):  llama-batched-bench -npp 16 -ntg TG -npl 4,16 -fa on
 *     --output-format jsonl  (S_TG: aggregate decode tok/s over the sequences, prefill excluded)
 * against `node bench/engine.ts --steps TG --batches 1,4,16 --prefill 64,1024 --json` (decode after a
 * 16-token prompt; aggregate tok/s over the batch). The table shows every round's figure for each side
 * and the median over rounds of the paired ratio ExpertMesh / llama.cpp.
 *
 *   node bench/peer.ts --llama-bench PATH --gguf FILE [--batched-bench PATH] [--repeats 3] [--dir DIR]
 *                      [--shape 20b] [--precision default|exact] [--dense bf16|q8|q8-attention] [--mapped] [--tg 32] [--prefill 64,1024]
 *                      [--batches 4,16] [--threads 2]
 *
 * Without --llama-bench and --gguf it prints that it skipped and exits 0. It neither builds llama.cpp
 * nor writes a GGUF or a checkpoint: `--dir` must hold a finished checkpoint (node bench/engine.ts
 * --prepare). Numbers from a busy machine are not results: run it on a quiet one.
 */
import { spawn, spawnSync } from "node:child_process";
import { accessSync, constants, existsSync, readdirSync, statSync } from "node:fs";
import { open } from "node:fs/promises";
import { availableParallelism, cpus, loadavg, release, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  comparisonTable,
  decodeMetric,
  type LlamaBenchInfo,
  parseBatchedBench,
  parseEngine,
  parseLlamaBench,
  prefillMetric,
  type Rates,
  type Round,
} from "./peer-report.ts";

const SHAPES = ["20b", "120b"];
const PRECISIONS = ["default", "exact"];
const DENSE_WEIGHTS = ["bf16", "q8", "q8-attention"];
const PROMPT_FOR_BATCHED = 16;
/**
 * A 1-minute load average above this before the run means another process holds a core for part of it.
 * llama.cpp's decode at -t 2 then collapses: its threads spin at a barrier after every op, and a thread
 * that lost its core costs whole scheduler ticks (measured here with one busy neighbour: tg4 at 0.45–0.69
 * tok/s on 2 threads, 2.3–3.4 tok/s on 1). Such a run is printed, and marked as not a result.
 */
const BUSY_LOAD = 0.5;

interface Options {
  llamaBench: string;
  gguf: string;
  batchedBench: string | undefined;
  repeats: number;
  dir: string;
  shape: string;
  precision: string;
  /** bench/engine's --dense: compare q8 or q8-attention dense weights with a --dense q8_0 GGUF, or bf16 with bf16. */
  dense: string;
  /** bench/engine's --mapped: its weights read from the checkpoint's mapping, not copied into huge pages. */
  mapped: boolean;
  tg: number;
  prefill: number[];
  batches: number[];
  threads: number;
}

/** Exit 2 with one clear line: a usage error is not a crash. */
function usage(message: string): never {
  console.error(`bench/peer: ${message}`);
  process.exit(2);
}

function positiveInt(name: string, s: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) usage(`--${name} must be a positive integer, got '${s}'`);
  return n;
}

function positiveList(name: string, s: string): number[] {
  const out = s.split(",").map(Number);
  if (s === "" || out.some((n) => !Number.isInteger(n) || n < 1)) usage(`--${name} must list positive integers, got '${s}'`);
  return out;
}

function executable(name: string, path: string): void {
  try {
    accessSync(path, constants.X_OK);
    if (statSync(path).isFile()) return;
  } catch {}
  usage(`--${name} ${path}: not an executable file`);
}

const OPTIONS = {
  "llama-bench": { type: "string" },
  gguf: { type: "string" },
  "batched-bench": { type: "string" },
  repeats: { type: "string", default: "3" },
  dir: { type: "string" },
  shape: { type: "string", default: "20b" },
  precision: { type: "string", default: "default" },
  dense: { type: "string", default: "bf16" },
  mapped: { type: "boolean", default: false },
  tg: { type: "string", default: "32" },
  prefill: { type: "string", default: "64,1024" },
  batches: { type: "string", default: "4,16" },
  threads: { type: "string", default: "2" },
} as const;

/** The options, validated in the order they are given on the usage line; undefined when the peer is not named. */
function parseOptions(argv: string[]): Options | undefined {
  let values: ReturnType<typeof parseArgs<{ args: string[]; options: typeof OPTIONS }>>["values"];
  try {
    values = parseArgs({ args: argv, options: OPTIONS }).values;
  } catch (e) {
    usage((e as Error).message);
  }
  const [llamaBench, gguf] = [values["llama-bench"], values.gguf];
  if (llamaBench === undefined && gguf === undefined) return undefined;
  if (llamaBench === undefined || gguf === undefined) usage("--llama-bench and --gguf go together: give both or neither");
  executable("llama-bench", llamaBench);
  if (!existsSync(gguf) || !statSync(gguf).isFile()) usage(`--gguf ${gguf}: no such file`);
  const batchedBench = values["batched-bench"];
  if (batchedBench !== undefined) executable("batched-bench", batchedBench);
  const repeats = positiveInt("repeats", values.repeats);
  if (!SHAPES.includes(values.shape)) usage(`--shape must be one of ${SHAPES.join(", ")}, got '${values.shape}'`);
  if (!PRECISIONS.includes(values.precision)) usage(`--precision must be one of ${PRECISIONS.join(", ")}, got '${values.precision}'`);
  if (!DENSE_WEIGHTS.includes(values.dense)) usage(`--dense must be one of ${DENSE_WEIGHTS.join(", ")}, got '${values.dense}'`);
  const root = join(dirname(fileURLToPath(import.meta.url)), "..");
  const dir = values.dir ?? join(root, ".cache", "bench", `gpt-oss-${values.shape}-synthetic`);
  if (!existsSync(join(dir, ".complete")))
    usage(`--dir ${dir}: no finished checkpoint (write one with: node bench/engine.ts --shape ${values.shape} --dir ${dir} --prepare)`);
  return {
    llamaBench,
    gguf,
    batchedBench,
    repeats,
    dir,
    shape: values.shape,
    precision: values.precision,
    dense: values.dense,
    mapped: values.mapped,
    tg: positiveInt("tg", values.tg),
    prefill: positiveList("prefill", values.prefill),
    batches: positiveList("batches", values.batches),
    threads: positiveInt("threads", values.threads),
  };
}

/** The files a program maps: the GGUF, or the checkpoint's safetensors shards. */
function modelFiles(dirOrFile: string): string[] {
  if (statSync(dirOrFile).isFile()) return [dirOrFile];
  return readdirSync(dirOrFile)
    .filter((f) => f.endsWith(".safetensors"))
    .map((f) => join(dirOrFile, f));
}

/** Drops files from the page cache (GNU dd: count=0 with iflag=nocache advises DONTNEED on the whole file). */
function evict(files: string[]): void {
  for (const f of files) spawnSync("dd", [`if=${f}`, "iflag=nocache", "count=0", "status=none"]);
}

/** Reads files end to end so the next run finds them in the page cache; returns GB read per second. */
async function warm(files: string[]): Promise<number> {
  const buf = Buffer.allocUnsafe(16 << 20);
  const t0 = performance.now();
  let total = 0;
  for (const f of files) {
    const fh = await open(f, "r");
    try {
      for (let n = -1; n !== 0; total += n) n = (await fh.read(buf, 0, buf.length, null)).bytesRead;
    } finally {
      await fh.close();
    }
  }
  return total / 1e9 / ((performance.now() - t0) / 1000);
}

/** Runs a program to completion; its stdout is returned, its stderr kept for the error message only. */
function capture(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      err = (err + d.toString()).slice(-8000);
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} exited with ${code}; last stderr:\n${err.split("\n").slice(-20).join("\n")}`));
    });
  });
}

/** The command lines, built once so the printed commands are the ones that ran. */
function commands(o: Options): { llama: string[]; batched: string[] | undefined; engine: string[] } {
  const t = String(o.threads);
  const llama = ["-m", o.gguf, "-t", t, "-fa", "1", "-p", o.prefill.join(","), "-n", String(o.tg), "-r", "1", "-o", "json"];
  // A context of max(batches)·(prompt + tg), rounded up to 256, holds the largest case with no spare.
  const ctx = Math.ceil((Math.max(...o.batches) * (PROMPT_FOR_BATCHED + o.tg)) / 256) * 256;
  const batched = o.batchedBench
    ? ["-m", o.gguf, "-t", t, "-tb", t, "-fa", "on", "-c", String(ctx), "-npp", String(PROMPT_FOR_BATCHED)].concat([
        "-ntg",
        String(o.tg),
        "-npl",
        o.batches.join(","),
        "--output-format",
        "jsonl",
      ])
    : undefined;
  const engineScript = fileURLToPath(new URL("./engine.ts", import.meta.url));
  const engineBatches = [1, ...(o.batchedBench ? o.batches : [])].join(",");
  const engine = [
    engineScript,
    "--shape",
    o.shape,
    "--dir",
    o.dir,
    "--precision",
    o.precision,
    "--dense",
    o.dense,
    "--steps",
    String(o.tg),
  ].concat(["--batches", engineBatches, "--prefill", o.prefill.join(","), "--json"], o.mapped ? ["--mapped"] : []);
  return { llama, batched, engine };
}

const log = (s: string) => process.stderr.write(`[peer] ${s}\n`);

async function turn(what: string, files: string[], others: string[], run: () => Promise<Rates>): Promise<Rates> {
  evict(others);
  const rate = await warm(files);
  log(`${what}: model files read into the page cache at ${rate.toFixed(2)} GB/s`);
  const t0 = performance.now();
  const rates = await run();
  log(`${what}: measured in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  return rates;
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  if (o === undefined) {
    console.log("bench/peer: skipped (no --llama-bench and --gguf given; see the header of bench/peer.ts)");
    return;
  }
  const cmd = commands(o);
  const [gguf, ckpt] = [modelFiles(o.gguf), modelFiles(o.dir)];
  let info: LlamaBenchInfo | undefined;
  const peer = () =>
    turn("llama.cpp", gguf, ckpt, async () => {
      const lb = parseLlamaBench(await capture(o.llamaBench, cmd.llama));
      info = lb.info;
      if (cmd.batched && o.batchedBench)
        for (const [k, v] of parseBatchedBench(await capture(o.batchedBench, cmd.batched))) lb.rates.set(k, v);
      return lb.rates;
    });
  const health: string[] = [];
  const ours = () =>
    turn("ExpertMesh", ckpt, gguf, async () => {
      const e = parseEngine(await capture(process.execPath, cmd.engine));
      const cores = e.health.decodeCores === undefined ? "?" : e.health.decodeCores.toFixed(2);
      health.push(`${cores} of ${availableParallelism()} cores during batch-1 decode; bandwidth probe: ${e.health.bandwidthNote ?? "?"}`);
      return e.rates;
    });
  const load0 = loadavg()[0] as number;
  if (load0 > BUSY_LOAD) log(`the host is busy (load average ${load0.toFixed(2)}): these figures will not be results`);
  const rounds: Round[] = [];
  for (let r = 0; r < o.repeats; r++) {
    log(`round ${r + 1}/${o.repeats}`);
    if (r % 2 === 0) {
      const p = await peer();
      rounds.push({ peer: p, ours: await ours() });
    } else {
      const e = await ours();
      rounds.push({ peer: await peer(), ours: e });
    }
  }
  const metrics = [decodeMetric(1), ...(o.batchedBench ? o.batches.map(decodeMetric) : []), ...o.prefill.map(prefillMetric)];
  console.log(comparisonTable(metrics, rounds));
  console.log("");
  const cpu = cpus()[0]?.model ?? "?";
  console.log(`command: node bench/peer.ts ${process.argv.slice(2).join(" ")}`);
  console.log(`machine: ${cpu}, ${availableParallelism()} cores, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, Linux ${release()}`);
  console.log(`date: ${new Date().toISOString()}`);
  // Anything else on the CPU spoils both sides' figures: the load average and the engine's own account say whether it was quiet.
  console.log(
    `load average (1 min) before the run / at the end (includes this run): ${load0.toFixed(2)} / ${(loadavg()[0] as number).toFixed(2)}` +
      (load0 > BUSY_LOAD ? ` — the host was busy before the run: these figures are not results` : ""),
  );
  for (const [i, h] of health.entries()) console.log(`ExpertMesh round ${i + 1}: ${h}`);
  console.log(`llama.cpp: build ${info?.buildNumber} (${info?.buildCommit}), model ${info?.modelType}, ${info?.threads} threads`);
  console.log(
    `llama.cpp commands: llama-bench ${cmd.llama.join(" ")}${cmd.batched ? `; llama-batched-bench ${cmd.batched.join(" ")}` : ""}`,
  );
  console.log(`ExpertMesh command: node ${cmd.engine.join(" ")}`);
}

await main();
