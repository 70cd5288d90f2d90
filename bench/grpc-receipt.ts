#!/usr/bin/env node
/**
 * bench/grpc-receipt — what receiving the worker's GenerateStream messages costs a Node process, per event:
 * grpc-js (as the gateway's mux receives them) against node:http2 with gRPC framing and the generated codec
 * (as the bench's direct client and minimal relay do, bench/raw-generate-stream.ts). A grpc-js server in a
 * child process writes one GenerateStreamResponse of E token events every I ms on one stream — what a
 * worker sends for E streams stepped together — and the receiving process counts events and reads its own
 * CPU time; the paths alternate over R rounds.
 *
 *   node bench/grpc-receipt.ts [--events 40] [--interval-ms 2.5] [--seconds 4] [--rounds 3]
 */
import { fork } from "node:child_process";
import { parseArgs } from "node:util";
import { type GenerateStreamResponse, WorkerClient, WorkerService } from "@expertmesh/proto/worker";
import { credentials, Server, ServerCredentials, type ServerDuplexStream } from "@grpc/grpc-js";
import { openRawGenerateStream } from "./raw-generate-stream.ts";

const { values } = parseArgs({
  options: {
    events: { type: "string", default: "40" },
    "interval-ms": { type: "string", default: "2.5" },
    seconds: { type: "string", default: "4" },
    rounds: { type: "string", default: "3" },
    "serve-port-to-parent": { type: "boolean", default: false },
  },
});
const events = Number(values.events);
const intervalMs = Number(values["interval-ms"]);

if (values["serve-port-to-parent"]) {
  // The sender: every stream gets one message of `events` token events every `intervalMs`.
  const message: GenerateStreamResponse = {
    events: Array.from({ length: events }, (_, i) => ({
      handle: 1000 + i,
      tokens: { tokens: [{ tokenId: 2195, logprob: 0, topLogprobs: [], forced: false }] },
    })),
  };
  const server = new Server();
  server.addService(WorkerService, {
    generateStream: (call: ServerDuplexStream<unknown, GenerateStreamResponse>) => {
      const timer = setInterval(() => call.write(message), intervalMs);
      const stop = () => clearInterval(timer);
      call.on("cancelled", stop);
      call.on("error", stop);
      call.on("end", () => {
        stop();
        call.end();
      });
    },
  } as never);
  server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, port) => {
    if (err) throw err;
    process.send?.(port);
  });
} else {
  const sender = fork(new URL(import.meta.url).pathname, [
    "--serve-port-to-parent",
    "--events",
    String(events),
    "--interval-ms",
    String(intervalMs),
  ]);
  const port = await new Promise<number>((resolve) => sender.once("message", (p) => resolve(p as number)));
  const address = `127.0.0.1:${port}`;
  const seconds = Number(values.seconds);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  /** Receives on one stream for `seconds` after a 1 s warm-up; CPU µs per event received. */
  async function measure(path: "grpc-js" | "node:http2"): Promise<{ user: number; system: number; rate: number }> {
    let received = 0;
    let close: () => void;
    if (path === "grpc-js") {
      const client = new WorkerClient(address, credentials.createInsecure());
      const call = client.generateStream();
      call.on("data", (m: GenerateStreamResponse) => {
        received += m.events.length;
      });
      call.on("error", () => {});
      close = () => {
        call.cancel();
        client.close();
      };
    } else {
      const raw = openRawGenerateStream(address, (m) => {
        received += m.events.length;
      });
      close = () => raw.close();
    }
    await sleep(1000);
    const cpu0 = process.cpuUsage();
    const n0 = received;
    await sleep(seconds * 1000);
    const cpu = process.cpuUsage(cpu0);
    const n = received - n0;
    close();
    await sleep(200);
    return { user: cpu.user / n, system: cpu.system / n, rate: n / seconds };
  }

  const results: Record<string, { user: number[]; system: number[]; rate: number[] }> = {
    "grpc-js": { user: [], system: [], rate: [] },
    "node:http2": { user: [], system: [], rate: [] },
  };
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const path of ["node:http2", "grpc-js"] as const) {
      process.stderr.write(`[bench] round ${round + 1}: ${path}…\n`);
      const r = await measure(path);
      results[path]?.user.push(r.user);
      results[path]?.system.push(r.system);
      results[path]?.rate.push(r.rate);
    }
  }
  sender.kill();
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] as number;
  const lines = [
    `bench/grpc-receipt — one GenerateStream, ${events} token events per message every ${intervalMs} ms, ${seconds} s per path × ${values.rounds} rounds (median), ${new Date().toISOString()}`,
    "| receiver | events/s | CPU µs per event (user + system) |",
    "|---|---|---|",
    ...Object.entries(results).map(
      ([path, r]) =>
        `| ${path} | ${median(r.rate).toFixed(0)} | ${(median(r.user) + median(r.system)).toFixed(2)} (${median(r.user).toFixed(2)} + ${median(r.system).toFixed(2)}) |`,
    ),
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}
