/**
 * wait-for: polls until a service answers, or fails after a timeout.
 *   node scripts/wait-for.ts http://127.0.0.1:8080/health 30   (HTTP 2xx)
 *   node scripts/wait-for.ts tcp://127.0.0.1:6390 30            (TCP connect)
 */
import { createConnection } from "node:net";

const [target, timeoutS = "30"] = process.argv.slice(2);
if (!target) {
  console.error("usage: wait-for <http(s)://...|tcp://host:port> [timeout-seconds]");
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
    return res.ok;
  } catch {
    return false;
  }
}

while (Date.now() < deadline) {
  if (await once()) process.exit(0);
  await new Promise((r) => setTimeout(r, 200));
}
console.error(`timed out after ${timeoutS}s waiting for ${target}`);
process.exit(1);
