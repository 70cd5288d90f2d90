#!/usr/bin/env node
/**
 * bench/socket-write — the floor under the gateway's per-token cost: what one small `socket.write` costs
 * a Node process on this machine, with nothing else around it. A writer sends a 220-byte payload (an SSE
 * chunk's size) to each of S loopback TCP sockets every I ms (TCP_NODELAY, as HTTP responses are); a
 * reader process drains them. Prints the writer's user and system CPU per write.
 *
 *   node bench/socket-write.ts [--sockets 64] [--interval-ms 5] [--seconds 5]
 */
import { fork } from "node:child_process";
import { connect, createServer, type Socket } from "node:net";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    sockets: { type: "string", default: "64" },
    "interval-ms": { type: "string", default: "5" },
    seconds: { type: "string", default: "5" },
    "reader-port": { type: "string", default: "" },
  },
});
const sockets = Number(values.sockets);

if (values["reader-port"]) {
  for (let i = 0; i < sockets; i++) connect(Number(values["reader-port"]), "127.0.0.1").on("data", () => {});
} else {
  const open: Socket[] = [];
  const server = createServer((s) => {
    s.setNoDelay(true);
    open.push(s);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  const reader = fork(new URL(import.meta.url).pathname, ["--reader-port", String(port), "--sockets", String(sockets)]);
  while (open.length < sockets) await new Promise((r) => setTimeout(r, 10));
  const payload = "x".repeat(220);
  let writes = 0;
  const c0 = process.cpuUsage();
  const timer = setInterval(() => {
    for (const s of open) s.write(payload);
    writes += open.length;
  }, Number(values["interval-ms"]));
  await new Promise((r) => setTimeout(r, Number(values.seconds) * 1000));
  clearInterval(timer);
  const c = process.cpuUsage(c0);
  console.log(
    `bench/socket-write — ${sockets} sockets, a 220-byte write to each every ${values["interval-ms"]} ms, ${values.seconds} s, ${new Date().toISOString()}`,
  );
  console.log("| writes | user µs per write | system µs per write |\n|---|---|---|");
  console.log(`| ${writes} | ${(c.user / writes).toFixed(1)} | ${(c.system / writes).toFixed(1)} |`);
  reader.kill();
  process.exit(0);
}
