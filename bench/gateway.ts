#!/usr/bin/env node
import { spawn as spawnProcess } from "node:child_process";
/**
 * bench/gateway — the latency the gateway adds (reliability R19). A scripted worker streams a fixed
 * answer at a fixed rate; S concurrent streams run for D seconds straight to the worker over gRPC (the
 * baseline, on GenerateStream as the gateway itself uses it) and D seconds through the gateway as SSE
 * chat completions, in R alternating rounds of D/R seconds (default 3: this VM's speed and the CPU time
 * its hypervisor steals drift over minutes, and alternating spreads the drift over both paths). Added TTFT / inter-token latency =
 * through-gateway percentile − direct percentile. The scripted worker, the gateway and the load client
 * each run in their own process; with --nice N (default 10) the worker and the client run at a lower
 * CPU priority than the gateway, as on a real deployment where the load generator and the engine are
 * not on the gateway's cores (on a 2-core box they otherwise preempt the gateway at random).
 * TTFT is measured to the first answer token on both paths (the Harmony header tokens come first).
 * A third path, the minimal relay (bench/minimal-relay.ts), puts a process in the gateway's place that
 * does only what any Node relay of SSE over HTTP/1.1 must (decode the worker's messages, one socket write
 * per token): what it adds is the machine's price for the extra hop, the floor under the gateway's figure.
 *
 * Each run of a path first runs a warm-up (connections, JIT, first-request work) whose samples are dropped.
 * Streams start spread over one stream's duration (a steady state: they end and restart at different
 * times); --herd starts all of them at once, and since every scripted stream is equally long they then
 * keep ending and restarting together, 64 new requests in the same millisecond. --paired runs the
 * baseline and the gateway path at the same time, from two client processes, so both see the same
 * machine. The gateway's CPU time per streamed token is read from /proc around the gateway run.
 *
 *   node bench/gateway.ts [--streams 64] [--tokens 256] [--interval-ms 5] [--seconds 30] [--rounds 3] [--warmup-seconds 3] [--nice 10]
 *                         [--idle-load]                    worker and clients under SCHED_IDLE instead of --nice
 *                         [--herd] [--paired] [--probe]    --probe: relate long gaps to gateway stalls / GC
 *                         [--lockstep]                     the worker steps all streams on one clock (a batching engine)
 *                         [--keyed]                        the gateway with API keys and per-key limits on, as deployed
 *                         [--paths direct,relay,gateway]   "gateway" alone skips the others (profiling)
 *                         [--processes 1,2]                the gateway path once per count of gateway processes sharing
 *                                                          the port (http.processes); prints requests/s of each and the
 *                                                          ratio to one process's (gateway-bound: --interval-ms 0)
 *                         [--pin GATEWAY_CPUS:LOAD_CPUS]   e.g. --pin 1:0 gives the gateway a core of its own
 *                         [--rt PRIORITY]                  the gateway under SCHED_FIFO (root / CAP_SYS_NICE)
 *   BENCH_GATEWAY_NODE_FLAGS="--cpu-prof --cpu-prof-dir=DIR"   Node flags for the gateway process only
 */
import cluster from "node:cluster";
import { mkdtempSync } from "node:fs";
import { connect as connectTcp, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { createLogger } from "@expertmesh/common";
import { freePort } from "@expertmesh/common/testing";
import {
  HarmonyTokenizer,
  MemoryRateLimiter,
  MemoryResponseStore,
  type Port,
  PrimaryChannel,
  PrimaryRateLimiter,
  runPrimary,
  sharedStateHandlers,
  startScriptedWorker,
  startTestGateway,
} from "@expertmesh/gateway/testing";
import { type GenerateRequest, Priority } from "@expertmesh/proto/worker";
import { cpuTicks, type GatewayRun, machineTicks, printResults, probeSummary, type Samples } from "./gateway-report.ts";
import { startMinimalRelay } from "./minimal-relay.ts";
import { openRawGenerateStream } from "./raw-generate-stream.ts";

const MODEL = "gpt-oss-bench";
const HEADER = "<|channel|>final<|message|>";
// What the SSE client scans for: end of the response head, its status, an answer token's event, the
// chunked body's last chunk (after `data: [DONE]`).
const HEADERS_END = Buffer.from("\r\n\r\n");
const OK_STATUS = Buffer.from("HTTP/1.1 200");
const WORD = Buffer.from('"content":" word"');
const LAST_CHUNK = Buffer.from("\r\n0\r\n\r\n");
const BENCH_KEY = "sk-em-bench-0123456789abcdef";

interface Job {
  role: "worker" | "gateway" | "relay" | "client";
  tokens: number;
  intervalMs: number;
  address?: string;
  target?: { kind: "direct"; address: string } | { kind: "sse"; url: string };
  streams?: number;
  seconds?: number;
  warmupSeconds?: number;
  herd?: boolean;
  /** Worker: step every stream on one clock (--lockstep). */
  lockstep?: boolean;
  /** Client: record every long gap (wall-clock end, length) for --probe. */
  probe?: boolean;
  /** Gateway: API keys on, with per-key request and token limits; client: sends the key (--keyed). */
  keyed?: boolean;
  /** Gateway: processes sharing its port (--processes); 1: the gateway in this process. */
  processes?: number;
}

const answer = (tok: HarmonyTokenizer, n: number) => tok.encodeWithSpecials(`${HEADER}${" word".repeat(n - 1)}<|return|>`);

async function runWorker(job: Job): Promise<void> {
  const w = await startScriptedWorker([], {
    tokenIntervalMs: job.intervalMs,
    lockstep: job.lockstep,
    fallback: answer(new HarmonyTokenizer(), job.tokens),
  });
  await report(w.address);
}

/** What the direct client and the minimal relay ask the worker for (the gateway renders its own prompt). */
function directRequest(tokens: number): GenerateRequest {
  return {
    requestId: "d",
    promptTokenIds: [200006, 1428, 200008, 12194, 200007, 200006, 173781],
    stopTokenIds: [200002, 200012],
    maxTokens: tokens + 8,
    priority: Priority.PRIORITY_ONLINE,
    deadlineUnixMs: 0,
    clampMaxTokens: false,
    maxReasoningTokens: 0,
  };
}

async function runRelay(job: Job): Promise<void> {
  const url = await startMinimalRelay({
    worker: job.address ?? "",
    headerTokens: new HarmonyTokenizer().encodeWithSpecials(HEADER).length,
    answerTokens: job.tokens - 1,
    request: directRequest(job.tokens),
  });
  await report(url);
  process.once("SIGTERM", () => process.exit(0));
}

async function runGateway(job: Job): Promise<void> {
  const processes = job.processes ?? 1;
  if (processes > 1 && cluster.isPrimary) return runGatewayPrimary(processes);
  // --keyed: as a deployment runs it, every request authenticated and under per-key limits (set far above
  // the bench's load: they are counted and checked, never hit); in-process limiter, or in a child of a
  // multi-process gateway the primary's, as main.ts wires it.
  const keyed = job.keyed ? { api_keys: [BENCH_KEY], limits: { requests_per_minute: 1e7, tokens_per_minute: 1e9 } } : {};
  const config = { default_max_tokens: job.tokens + 8, http: { processes }, ...keyed };
  const channel = cluster.isWorker ? new PrimaryChannel(process as Port, { timeoutMs: 2_000, retryAfterMs: 1_000 }) : null;
  const gw = await startTestGateway({
    address: job.address ?? "",
    model: MODEL,
    config,
    perProcess: true,
    port: Number(process.env.BENCH_GATEWAY_PORT ?? 0),
    ...(channel ? { deps: { limiter: new PrimaryRateLimiter(channel) } } : {}),
  });
  if (cluster.isWorker) return; // the primary reports
  await report(gw.base);
  // Exit cleanly when stopped, so `--cpu-prof` (NODE_OPTIONS) can write the gateway's profile.
  process.once("SIGTERM", () => process.exit(0));
}

/**
 * --processes N: this process is the multi-process gateway's primary (the gateway's own cluster/primary.ts)
 * and its N children each run runGateway, sharing one port chosen here; reports once they all listen.
 */
async function runGatewayPrimary(processes: number): Promise<void> {
  const port = await freePort();
  process.env.BENCH_GATEWAY_PORT = String(port); // the children inherit it
  let listening = 0;
  const all = new Promise<void>((resolve) =>
    cluster.on("listening", () => {
      if (++listening === processes) resolve();
    }),
  );
  runPrimary({
    processes,
    shutdownGraceMs: 1_000,
    log: createLogger("bench-gateway", "warn"),
    handlers: sharedStateHandlers(new MemoryRateLimiter(), new MemoryResponseStore()),
  });
  await all;
  await report(`http://127.0.0.1:${port}`);
}

async function runClient(job: Job): Promise<void> {
  const header = new HarmonyTokenizer().encodeWithSpecials(HEADER).length;
  const warm = Date.now() + (job.warmupSeconds ?? 0) * 1000;
  const end = warm + (job.seconds ?? 30) * 1000;
  let out: Samples = { ttft: [], gaps: [], streams: 0 };
  let longGaps: [number, number][] = [];
  const target = job.target;
  if (!target) throw new Error("client needs a target");
  // Lean clients on both paths (the same on each, so neither path's baseline is skewed): the load generator
  // shares this box's two cores with the gateway, so whatever CPU it spends per event is taken from the
  // measured processes. A stream's events are timestamped when its socket's bytes arrive; the gRPC client
  // is node:http2 with length-prefixed framing and the generated decoder (grpc-js's call stack costs
  // several times as much per message), the SSE client a raw keep-alive HTTP/1.1 socket scanned as bytes.
  const recordToken = (s: { n: number; last: number; t0: number }, now: number) => {
    s.n++;
    if (s.n === 1) out.ttft.push(now - s.t0);
    else {
      out.gaps.push(now - s.last);
      if (job.probe && now - s.last > 1.8 * job.intervalMs) longGaps.push([performance.timeOrigin + now, now - s.last]);
    }
    s.last = now;
  };
  // The baseline runs on GenerateStream, the worker API the gateway itself uses: one bidi stream for all
  // of this client's generations, a generation per handle.
  const waiting = new Map<number, { s: { n: number; last: number; t0: number }; seen: number; done: () => void }>();
  const mux =
    target.kind === "direct"
      ? openRawGenerateStream(target.address, (m, now) => {
          for (const e of m.events) {
            const g = waiting.get(e.handle);
            if (!g) continue;
            for (const _ of e.tokens?.tokens ?? []) {
              g.seen++;
              if (g.seen > header && g.seen < job.tokens) recordToken(g.s, now);
            }
            if (e.error) throw new Error(`generation failed: ${JSON.stringify(e.error)}`);
            if (e.finished) {
              waiting.delete(e.handle);
              g.done();
            }
          }
        })
      : null;
  const generation = directRequest(job.tokens);
  let handles = 0;
  const direct = (): Promise<void> =>
    new Promise((resolve) => {
      const handle = ++handles;
      waiting.set(handle, { s: { n: 0, last: 0, t0: performance.now() }, seen: 0, done: resolve });
      mux?.start(handle, { ...generation, requestId: `d${handle}` });
    });
  // One keep-alive socket per stream loop; a request's answer tokens are the `"content":" word"` events.
  const url = target.kind === "sse" ? new URL(target.url) : null;
  const body = JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "Hi" }], stream: true });
  const head = `POST /v1/chat/completions HTTP/1.1\r\nhost: ${url?.host}\r\ncontent-type: application/json\r\n${job.keyed ? `authorization: Bearer ${BENCH_KEY}\r\n` : ""}content-length: ${Buffer.byteLength(body)}\r\n\r\n`;
  const requestBytes = Buffer.from(head + body);
  const viaGateway = (socket: Socket): Promise<void> =>
    new Promise((resolve, reject) => {
      const s = { n: 0, last: 0, t0: performance.now() };
      let headers = true;
      let carry: Buffer = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        const now = performance.now();
        // Keep the last few bytes of the previous read: a marker may be split across two reads.
        const buf = carry.length ? Buffer.concat([carry, chunk]) : chunk;
        let from = 0;
        if (headers) {
          const at = buf.indexOf(HEADERS_END);
          if (at < 0) {
            carry = buf;
            return;
          }
          if (!buf.subarray(0, 12).equals(OK_STATUS)) {
            socket.off("data", onData);
            reject(new Error(`gateway answered ${buf.subarray(0, 40).toString("latin1")}`));
            return;
          }
          headers = false;
          from = at + HEADERS_END.length;
        }
        let at = buf.indexOf(WORD, from);
        while (at >= 0) {
          recordToken(s, now);
          from = at + WORD.length;
          at = buf.indexOf(WORD, from);
        }
        if (buf.indexOf(LAST_CHUNK, from) >= 0) {
          socket.off("data", onData);
          resolve();
          return;
        }
        carry = buf.subarray(Math.max(from, buf.length - (Math.max(WORD.length, LAST_CHUNK.length) - 1)));
      };
      socket.on("data", onData);
      socket.write(requestBytes);
    });
  const openSocket = (): Promise<Socket> =>
    new Promise((resolve, reject) => {
      const socket = connectTcp({ host: url?.hostname, port: Number(url?.port), noDelay: true }, () => resolve(socket));
      socket.once("error", reject);
    });
  // Steady state: stream i starts i/S of one stream's duration after the first, so that streams end and
  // restart spread over time as real traffic does; --herd starts them all at once (and, since every
  // scripted stream is equally long, they keep ending and restarting together: a thundering herd).
  const spacingMs = job.herd ? 0 : (job.tokens * job.intervalMs) / (job.streams ?? 64);
  const loop = async (_: unknown, i: number) => {
    const socket = target.kind === "sse" ? await openSocket() : null;
    if (spacingMs > 0) await new Promise((r) => setTimeout(r, i * spacingMs));
    while (Date.now() < end) {
      await (socket ? viaGateway(socket) : direct());
      completed++;
      if (Date.now() < warm) continue;
      if (!measuring) {
        // The warm-up is over: drop what it recorded (connections, JIT, first-request work).
        out = { ttft: [], gaps: [], streams: 0 };
        longGaps = [];
        measuring = true;
        cpuAtWarm = process.cpuUsage();
        continue;
      }
      out.streams++;
    }
  };
  let measuring = false;
  let cpuAtWarm = process.cpuUsage();
  let completed = 0; // streams, warm-up included
  await Promise.all(Array.from({ length: job.streams ?? 64 }, loop));
  mux?.close();
  // The client's own CPU over the measured part (its start-up — module loading, the tokenizer — excluded),
  // per answer token it timed.
  const cpu = process.cpuUsage(cpuAtWarm);
  const timed = out.ttft.length + out.gaps.length;
  await report({
    ...out,
    tokens: completed * job.tokens,
    clientCpuUs: cpu.user + cpu.system,
    clientTokens: timed,
    ...(job.probe ? { longGaps } : {}),
  });
  process.exit(0);
}

/** A role's one message to the parent: a JSON line on stdout (resolves once it is flushed to the pipe). */
function report(value: unknown): Promise<void> {
  return new Promise((resolve) => process.stdout.write(`${JSON.stringify(value)}\n`, () => resolve()));
}

/**
 * Runs a role in its own process (at `nice` lower priority when > 0, under SCHED_FIFO priority `rt` when
 * > 0, on the given CPUs when set); resolves with its first report.
 */
function spawn<T>(job: Job, nice: number, cpus = "", rt = 0): Promise<{ value: T; stop: () => void; pid: number }> {
  // BENCH_GATEWAY_NODE_FLAGS: Node flags for the gateway alone (e.g. --cpu-prof, --trace-gc).
  const flags = job.role === "gateway" ? (process.env.BENCH_GATEWAY_NODE_FLAGS ?? "").split(" ").filter(Boolean) : [];
  if (job.role === "gateway" && probeFile) flags.push("--import", new URL("./gateway-probe.ts", import.meta.url).pathname);
  const node = [process.execPath, ...flags, new URL(import.meta.url).pathname, "--role-job", JSON.stringify(job)];
  // nice < 0 stands for SCHED_IDLE (--idle-load): the role runs only when nothing else wants the CPU.
  const niced =
    nice < 0
      ? ["chrt", "-i", "0", ...node]
      : nice > 0
        ? ["nice", "-n", String(nice), ...node]
        : rt > 0
          ? ["chrt", "-f", String(rt), ...node]
          : node;
  const argv = cpus ? ["taskset", "-c", cpus, ...niced] : niced;
  const child = spawnProcess(argv[0] as string, argv.slice(1), { env: { ...process.env, BENCH_PROBE_FILE: probeFile } });
  child.stderr.pipe(process.stderr);
  children.add(child); // never leave a role running behind a failed run
  child.once("exit", () => children.delete(child));
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    let reported = false;
    lines.on("line", (line) => {
      // The first JSON line is the report; anything else a role prints (e.g. --trace-gc) goes to stderr.
      if (!reported && /^["{]/.test(line)) {
        reported = true;
        resolve({ value: JSON.parse(line) as T, stop: () => child.kill(), pid: child.pid ?? 0 });
      } else process.stderr.write(`[${job.role}] ${line}\n`);
    });
    child.once("exit", (code) => reject(new Error(`${job.role} exited with ${code}`)));
  });
}

const children = new Set<ReturnType<typeof spawnProcess>>();
process.once("exit", () => {
  for (const c of children) c.kill();
});

/** --probe: where the gateway's stall and GC records go (read back after the run). */
let probeFile = "";

const roleJob = process.argv.indexOf("--role-job");
if (roleJob > 0) {
  const job = JSON.parse(process.argv[roleJob + 1] ?? "{}") as Job;
  const run = { worker: runWorker, gateway: runGateway, relay: runRelay, client: runClient }[job.role];
  await run(job);
} else {
  const { values } = parseArgs({
    options: {
      nice: { type: "string", default: "10" },
      // e.g. "1:0": the gateway on CPU 1, the worker and the clients on CPU 0 (its own core, as deployed).
      pin: { type: "string", default: "" },
      // SCHED_FIFO priority for the gateway process (needs root or CAP_SYS_NICE): on a machine with fewer
      // cores than busy processes it is never descheduled behind the load, as on its own cores.
      rt: { type: "string", default: "0" },
      streams: { type: "string", default: "64" },
      tokens: { type: "string", default: "256" },
      "interval-ms": { type: "string", default: "5" },
      seconds: { type: "string", default: "30" },
      // the paths alternate in this many slices of seconds/rounds each (see below)
      rounds: { type: "string", default: "3" },
      "warmup-seconds": { type: "string", default: "3" },
      // start every stream at once (see runClient)
      herd: { type: "boolean", default: false },
      // the scripted worker steps every stream on one clock, as a batching engine does
      lockstep: { type: "boolean", default: false },
      // run the baseline and the gateway path at the same time (see below)
      paired: { type: "boolean", default: false },
      // record gateway event-loop stalls and GC pauses and relate them to the long gaps (see gateway-probe.ts)
      probe: { type: "boolean", default: false },
      // the gateway with API keys and per-key request and token limits on, as deployed
      keyed: { type: "boolean", default: false },
      // the worker and the clients under SCHED_IDLE instead of nice: the gateway never waits behind them
      "idle-load": { type: "boolean", default: false },
      // which paths run: "gateway" alone skips the others (profiling the gateway alone)
      paths: { type: "string", default: "direct,relay,gateway" },
      // gateway path once per count: "1,2" measures one process and two sharing the port (cluster/primary.ts)
      processes: { type: "string", default: "1" },
    },
  });
  const base = { tokens: Number(values.tokens), intervalMs: Number(values["interval-ms"]) };
  const streams = Number(values.streams);
  const seconds = Number(values.seconds);
  const warmupSeconds = Number(values["warmup-seconds"]);
  const rounds = Math.max(1, Number(values.rounds));
  const nice = values["idle-load"] ? -1 : Number(values.nice);
  const [gatewayCpus = "", loadCpus = ""] = (values.pin ?? "").split(":");
  if (values.probe) probeFile = join(mkdtempSync(join(tmpdir(), "bench-probe-")), "gateway.jsonl");
  const worker = await spawn<string>({ role: "worker", ...base, lockstep: values.lockstep }, nice, loadCpus);
  const rt = Number(values.rt);
  const paths = new Set((values.paths ?? "").split(","));
  // The relay stands where the gateway does: same priority, same CPUs.
  const counts = (values.processes ?? "1").split(",").map(Number);
  const gateways: { processes: number; proc: { value: string; stop: () => void; pid: number } }[] = [];
  for (const processes of counts)
    gateways.push({
      processes,
      proc: await spawn<string>({ role: "gateway", ...base, address: worker.value, keyed: values.keyed, processes }, 0, gatewayCpus, rt),
    });
  const relay = paths.has("relay") ? await spawn<string>({ role: "relay", ...base, address: worker.value }, 0, gatewayCpus, rt) : null;
  const empty: Samples = { ttft: [], gaps: [], streams: 0 };
  // One client process for `secs` seconds on one path: its samples, the CPU time of the process in the
  // middle (gateway or relay) and the machine's CPU ticks by state over that time.
  const run = async (target: Job["target"], secs: number, middle: number): Promise<Samples> => {
    const cpu0 = middle ? cpuTicks(middle) : { user: 0, system: 0 };
    const box0 = machineTicks();
    const client = await spawn<Samples>(
      {
        role: "client",
        ...base,
        streams,
        seconds: secs,
        warmupSeconds,
        herd: values.herd,
        probe: values.probe,
        keyed: values.keyed,
        target,
      },
      nice,
      loadCpus,
    );
    client.stop();
    const cpu1 = middle ? cpuTicks(middle) : { user: 0, system: 0 };
    const box1 = machineTicks();
    return {
      ...client.value,
      gatewayCpu: { user: cpu1.user - cpu0.user, system: cpu1.system - cpu0.system },
      boxTicks: box1.map((v, i) => v - (box0[i] ?? 0)),
    };
  };
  const merge = (a: Samples, b: Samples): Samples => ({
    ttft: a.ttft.concat(b.ttft),
    gaps: a.gaps.concat(b.gaps),
    streams: a.streams + b.streams,
    tokens: (a.tokens ?? 0) + (b.tokens ?? 0),
    clientCpuUs: (a.clientCpuUs ?? 0) + (b.clientCpuUs ?? 0),
    clientTokens: (a.clientTokens ?? 0) + (b.clientTokens ?? 0),
    gatewayCpu: {
      user: (a.gatewayCpu?.user ?? 0) + (b.gatewayCpu?.user ?? 0),
      system: (a.gatewayCpu?.system ?? 0) + (b.gatewayCpu?.system ?? 0),
    },
    boxTicks: (b.boxTicks ?? []).map((v, i) => v + (a.boxTicks?.[i] ?? 0)),
    ...(a.longGaps || b.longGaps ? { longGaps: (a.longGaps ?? []).concat(b.longGaps ?? []) } : {}),
  });
  let d = empty;
  let m = empty;
  const g = gateways.map((gw) => ({ processes: gw.processes, samples: empty }));
  const direct: Job["target"] = { kind: "direct", address: worker.value };
  const viaRelay: Job["target"] | null = relay ? { kind: "sse", url: relay.value } : null;
  const viaGateway = (i: number): Job["target"] => ({ kind: "sse", url: gateways[i]?.proc.value ?? "" });
  if (values.paired) {
    // Both paths at once, each from its own client process: the baseline sees the same machine (worker
    // load, the gateway's CPU use, scheduling) as the gateway path, so their difference is the path's.
    process.stderr.write(`[bench] direct and through the gateway at once: ${streams} + ${streams} streams for ${seconds} s…\n`);
    const first = g[0] as GatewayRun;
    [d, first.samples] = await Promise.all([run(direct, seconds, 0), run(viaGateway(0), seconds, gateways[0]?.proc.pid ?? 0)]);
  } else {
    // --rounds R: the paths alternate in R slices of seconds/R each (every slice after its own warm-up), so
    // that the machine's drift over minutes (this VM's speed and stolen time vary) weighs on all alike.
    const slice = seconds / rounds;
    for (let r = 1; r <= rounds; r++) {
      if (paths.has("direct")) {
        process.stderr.write(`[bench] round ${r}/${rounds}: direct, ${streams} streams for ${slice} s…\n`);
        d = merge(d, await run(direct, slice, 0));
      }
      if (relay && viaRelay) {
        process.stderr.write(`[bench] round ${r}/${rounds}: through the minimal relay, ${streams} streams for ${slice} s…\n`);
        m = merge(m, await run(viaRelay, slice, relay.pid));
      }
      for (const [i, gw] of gateways.entries()) {
        if (!paths.has("gateway")) break;
        process.stderr.write(
          `[bench] round ${r}/${rounds}: through the gateway (${gw.processes} processes), ${streams} streams for ${slice} s…\n`,
        );
        const run1 = g[i] as GatewayRun;
        run1.samples = merge(run1.samples, await run(viaGateway(i), slice, gw.proc.pid));
      }
    }
  }
  const setup =
    `${streams} concurrent streams, ${base.tokens} tokens at ${base.intervalMs} ms/token, ${seconds} s per path` +
    `${values.paired ? "" : ` in ${rounds} alternating rounds`}, each after ${warmupSeconds} s warm-up, ${values.lockstep ? "worker in lockstep, " : ""}${values.keyed ? "gateway with API keys and limits, " : ""}` +
    `worker and client at ${nice < 0 ? "SCHED_IDLE" : `nice ${nice}`}${rt > 0 ? `, gateway SCHED_FIFO ${rt}` : ""}`;
  printResults(setup, d, relay ? m : null, g, seconds);
  const probed = g[0]?.samples.longGaps;
  if (values.probe && probed) process.stdout.write(`${probeSummary(probeFile, probed)}\n`);
  for (const p of [worker, relay, ...gateways.map((gw) => gw.proc)]) p?.stop();
}
