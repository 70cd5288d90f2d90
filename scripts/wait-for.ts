/**
 * wait-for: polls until a service answers, or fails after a timeout.
 *   node scripts/wait-for.ts http://127.0.0.1:8080/health 30                (HTTP 2xx)
 *   node scripts/wait-for.ts http://127.0.0.1:8080/ready 300 --status 200   (exactly that HTTP status)
 *   node scripts/wait-for.ts tcp://127.0.0.1:6390 30                        (TCP connect)
 * --pid PID (repeatable): stop waiting as soon as one of these processes has exited, print its pid on
 * stdout and exit 3, so a caller reports a crashed service at once instead of after the whole timeout.
 * Exit status: 0 answered, 1 timed out, 2 usage, 3 a watched process exited.
 */
import { readFileSync } from "node:fs";
import { createConnection } from "node:net";
import { parseArgs } from "node:util";

let parsed: ReturnType<typeof parse>;
function parse() {
  return parseArgs({
    allowPositionals: true,
    options: { pid: { type: "string", multiple: true, default: [] }, status: { type: "string" } },
  });
}
try {
  parsed = parse();
} catch (err) {
  console.error(String(err));
  process.exit(2);
}
const [target, timeoutS = "30"] = parsed.positionals;
const pids = (parsed.values.pid ?? []).map(Number);
const status = parsed.values.status === undefined ? undefined : Number(parsed.values.status);
if (!target || pids.some((p) => !Number.isInteger(p) || p <= 0) || (status !== undefined && !Number.isInteger(status))) {
  console.error("usage: wait-for <http(s)://...|tcp://host:port> [timeout-seconds] [--status CODE] [--pid PID ...]");
  process.exit(2);
}
const deadline = Date.now() + Number(timeoutS) * 1000;

function tcp(url: URL): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: url.hostname, port: Number(url.port) }, () => {
      s.end();
      resolve(true);
    });
    s.on("error", () => resolve(false));
  });
}

async function once(): Promise<boolean> {
  const url = new URL(target as string);
  if (url.protocol === "tcp:") return tcp(url);
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.body?.cancel();
    return status === undefined ? res.ok : res.status === status;
  } catch {
    return false;
  }
}

/** A process that has exited; a zombie (exited, not yet reaped by its parent) counts as exited. */
function exited(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ESRCH";
  }
  try {
    // /proc/PID/stat: "pid (comm) STATE ..."; comm may hold spaces or parentheses, so read after the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return false; // no procfs (not Linux): kill(0) above is all we know
  }
}

while (Date.now() < deadline) {
  if (await once()) process.exit(0);
  const dead = pids.find(exited);
  if (dead !== undefined) {
    console.log(dead);
    process.exit(3);
  }
  await new Promise((r) => setTimeout(r, 200));
}
console.error(`timed out after ${timeoutS}s waiting for ${target}${status === undefined ? "" : ` to answer ${status}`}`);
process.exit(1);
