/**
 * Uploads are streamed, not held (#20 item 4): a real gateway process (gateway/src/main.ts, spawned so
 * that only its memory is measured) takes 200 MB multipart uploads over real HTTP, and its resident set
 * (/proc/PID/status VmRSS, sampled every 20 ms) must grow by less than 64 MB for one upload and less
 * than 256 MB for four at once; creating a batch on the file and downloading it do not hold it either.
 * An upload that breaks a limit is refused at its first bad line: the
 * client has sent only a few MB when the answer comes, and nothing is left in the files directory.
 * The bodies are generated as streams here too; no 200 MB buffer exists on either side.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { freePort, type RedisServer, startRedisServer } from "@expertmesh/common/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const MB = 1024 * 1024;
const UPLOAD_BYTES = 200_000_000;
const BOUNDARY = "----expertmesh-upload-memory";

let redis: RedisServer;
let gateway: ChildProcess;
let base: string;
let filesDir: string;

/** A valid batch line of exactly `bytes` bytes (newline included). */
function line(id: string, bytes: number): string {
  const head = JSON.stringify({ custom_id: id, method: "POST", url: "/v1/chat/completions", body: { model: "m", messages: [] } });
  const pad = bytes - head.length - 1 - ',"pad":""'.length;
  return `${head.slice(0, -1)},"pad":"${"x".repeat(pad)}"}\n`;
}

interface Upload {
  status: number;
  body: { id?: string; bytes?: number; error?: { message: string; param: string | null } };
  /** Bytes of the body the client had handed to fetch when the answer was complete. */
  sent: number;
}

/**
 * POSTs a multipart upload whose file is `lines(i)` for i = 0, 1, … until `total` bytes (the file
 * part first, as the openai SDK sends it; purpose after it), generated chunk by chunk as fetch pulls.
 */
async function upload(total: number, lines: (i: number) => string): Promise<Upload> {
  const enc = new TextEncoder();
  const head = `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\nContent-Type: application/jsonl\r\n\r\n`;
  const tail = `\r\n--${BOUNDARY}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n--${BOUNDARY}--\r\n`;
  let i = 0;
  let produced = 0;
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(enc.encode(head));
    },
    pull(c) {
      if (produced >= total) {
        c.enqueue(enc.encode(tail));
        c.close();
        return;
      }
      let chunk = "";
      while (chunk.length < 256 * 1024 && produced + chunk.length < total) chunk += lines(i++);
      produced += chunk.length;
      const bytes = enc.encode(chunk);
      sent += bytes.length;
      c.enqueue(bytes);
    },
  });
  const res = await fetch(`${base}/v1/files`, {
    method: "POST",
    headers: { "content-type": `multipart/form-data; boundary=${BOUNDARY}` },
    body,
    duplex: "half",
  } as RequestInit);
  const answer = (await res.json()) as Upload["body"];
  return { status: res.status, body: answer, sent };
}

function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1]) * 1024;
}

/** Runs `work` while sampling the gateway's RSS; the growth over the RSS just before it. */
async function rssGrowth<T>(work: () => Promise<T>): Promise<{ result: T; growth: number }> {
  const pid = gateway.pid as number;
  const before = rss(pid);
  let peak = before;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rss(pid));
  }, 20);
  try {
    const result = await work();
    peak = Math.max(peak, rss(pid));
    console.log(`gateway RSS ${(before / MB).toFixed(0)} MB → peak ${(peak / MB).toFixed(0)} MB`);
    return { result, growth: peak - before };
  } finally {
    clearInterval(sampler);
  }
}

const stored = () => readdirSync(filesDir).sort();

async function remove(id: string | undefined): Promise<void> {
  const res = await fetch(`${base}/v1/files/${id}`, { method: "DELETE" });
  expect(res.status).toBe(200);
}

beforeAll(async () => {
  redis = await startRedisServer();
  filesDir = mkdtempSync(join(tmpdir(), "upload-memory-"));
  gateway = spawn(process.execPath, [MAIN], {
    env: {
      ...process.env,
      LOG_LEVEL: "info",
      REDIS_URL: redis.url,
      GATEWAY_PORT: "0",
      // Nothing listens there: discovery fails quietly, the Files API needs only Redis.
      GATEWAY_ORCHESTRATOR_ADDRESS: `127.0.0.1:${await freePort()}`,
      EXPERTMESH_FILES_DIR: filesDir,
      GATEWAY_MAX_FILE_BYTES: String(256 * MB),
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  base = await new Promise<string>((resolve, reject) => {
    gateway.once("exit", (code) => reject(new Error(`gateway exited with ${code}`)));
    createInterface({ input: gateway.stdout as NodeJS.ReadableStream }).on("line", (l) => {
      const address = (JSON.parse(l) as { address?: string }).address;
      if (address) resolve(address);
    });
  });
  // Warm up before anything is measured: code compiled, and V8's young generation grown to the size any
  // busy gateway has (it grows ~30 MB under the first heavy allocation, whatever allocates).
  const warm = await upload(32 * MB, (i) => line(`warm-${i}`, 4_100));
  expect(warm.status).toBe(200);
  await remove(warm.body.id);
}, 60_000);

afterAll(async () => {
  gateway?.kill("SIGKILL");
  await redis?.stop();
  if (filesDir) rmSync(filesDir, { recursive: true, force: true });
});

describe("uploads are streamed with bounded memory (#20 item 4)", () => {
  it("a valid 200 MB upload (~48,800 lines of 4,100 bytes) is stored whole while the gateway grows < 64 MB; a batch on it does not read it again", async () => {
    const { result, growth } = await rssGrowth(() => upload(UPLOAD_BYTES, (i) => line(`l-${i}`, 4_100)));
    expect(result.status).toBe(200);
    expect(result.body.bytes).toBe(result.sent);
    expect(result.sent).toBeGreaterThanOrEqual(UPLOAD_BYTES);
    expect(growth).toBeLessThan(64 * MB);
    // A batch on it is checked from what the upload recorded: the file is not read again.
    const batch = await rssGrowth(async () => {
      const res = await fetch(`${base}/v1/batches`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ input_file_id: result.body.id, endpoint: "/v1/chat/completions", completion_window: "24h" }),
      });
      return (await res.json()) as { status: string; request_counts: { total: number } };
    });
    expect(batch.result).toMatchObject({ status: "validating", request_counts: { total: (result.body.bytes as number) / 4_100 } });
    expect(batch.growth).toBeLessThan(16 * MB);
    // Downloading it streams it back: read through, never held whole.
    const download = await rssGrowth(async () => {
      const res = await fetch(`${base}/v1/files/${result.body.id}/content`);
      let bytes = 0;
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) bytes += chunk.length;
      return bytes;
    });
    expect(download.result).toBe(result.body.bytes);
    expect(download.growth).toBeLessThan(64 * MB);
    await remove(result.body.id);
  }, 60_000);

  it("a 200 MB upload over the line-count cap is refused at line 50,001, having read a few MB, leaving nothing stored", async () => {
    const { result, growth } = await rssGrowth(() => upload(UPLOAD_BYTES, (i) => line(`n-${i}`, 200)));
    expect(result.status).toBe(400);
    expect(result.body.error?.message).toContain("more than 50000 requests");
    // Line 50,001 ends at 10 MB; what the client got out before the answer is what the sockets buffer.
    expect(result.sent).toBeLessThan(48 * MB);
    expect(growth).toBeLessThan(64 * MB);
    expect(stored()).toEqual([]);
  }, 60_000);

  it("a bad line stops the upload there: 400 naming the line, not the end of the file", async () => {
    const result = await upload(UPLOAD_BYTES, (i) => (i === 999 ? "{oops\n" : line(`b-${i}`, 4_100)));
    expect(result.status).toBe(400);
    expect(result.body.error?.message).toContain("Line 1000: not valid JSON");
    expect(result.sent).toBeLessThan(48 * MB);
    expect(stored()).toEqual([]);
  }, 60_000);

  it("four concurrent valid 200 MB uploads: the gateway grows < 256 MB", async () => {
    const { result, growth } = await rssGrowth(() =>
      Promise.all([0, 1, 2, 3].map((u) => upload(UPLOAD_BYTES, (i) => line(`c${u}-${i}`, 4_100)))),
    );
    for (const r of result) {
      expect(r.status).toBe(200);
      expect(r.body.bytes).toBe(r.sent);
    }
    expect(growth).toBeLessThan(256 * MB);
    for (const r of result) await remove(r.body.id);
  }, 120_000);
});
