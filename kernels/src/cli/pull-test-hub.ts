/**
 * A local stand-in for the Hugging Face hub in tests: the tree API (paginated through Link headers, LFS
 * entries with sha256 oids), /resolve/ with Range, LFS files redirected to a "CDN" path as the hub does.
 * Knobs: a token to require, bytes to corrupt, a byte budget after which responses stall.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join, relative } from "node:path";

interface HubFile {
  path: string;
  data: Buffer;
  lfs: boolean;
  sha256: string;
  gitOid: string;
}

export interface TestHub {
  url: string;
  repo: string;
  /** Bytes of file content sent since the last reset. */
  served: number;
  /** Require `Authorization: Bearer <token>` everywhere. */
  token?: string;
  /** path → how many more downloads get one flipped byte. */
  corrupt: Map<string, number>;
  /** Once this many bytes were served, responses stop sending (and stay open). */
  stallAfter: number;
  files: HubFile[];
  close(): Promise<void>;
}

const PAGE = 4;

export function repoFiles(dir: string, extra: Record<string, Buffer> = {}): HubFile[] {
  const walk = (d: string): string[] =>
    readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : [join(d, n)]));
  const entries: [string, Buffer][] = [
    ...walk(dir).map((p) => [relative(dir, p), readFileSync(p)] as [string, Buffer]),
    ...Object.entries(extra),
  ];
  return entries.map(([path, data]) => ({
    path,
    data,
    lfs: path.endsWith(".safetensors") || path.endsWith(".bin"),
    sha256: createHash("sha256").update(data).digest("hex"),
    gitOid: createHash("sha1").update(`blob ${data.length}\0`).update(data).digest("hex"),
  }));
}

function tree(hub: TestHub, url: URL, res: ServerResponse): void {
  const cursor = Number(url.searchParams.get("cursor") ?? 0);
  const page = hub.files.slice(cursor, cursor + PAGE).map((f) => ({
    type: "file",
    oid: f.gitOid,
    size: f.data.length,
    path: f.path,
    ...(f.lfs ? { lfs: { oid: f.sha256, size: f.data.length, pointerSize: 134 } } : {}),
  }));
  if (cursor + PAGE < hub.files.length) {
    const next = new URL(url);
    next.searchParams.set("cursor", String(cursor + PAGE));
    res.setHeader("link", `<${next.href}>; rel="next"`);
  }
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify(page));
}

function sendRange(hub: TestHub, f: HubFile, req: IncomingMessage, res: ServerResponse): void {
  let data = f.data;
  const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
  const start = m ? Number(m[1]) : 0;
  const end = m?.[2] ? Number(m[2]) + 1 : data.length;
  // The middle byte is flipped in the next `left` responses that carry it.
  const left = hub.corrupt.get(f.path) ?? 0;
  const middle = data.length >> 1;
  if (left > 0 && start <= middle && middle < end) {
    hub.corrupt.set(f.path, left - 1);
    data = Buffer.from(f.data);
    data[middle] = (data[middle] as number) ^ 0xff;
  }
  res.writeHead(m ? 206 : 200, {
    "content-length": end - start,
    ...(m ? { "content-range": `bytes ${start}-${end - 1}/${data.length}` } : {}),
  });
  let at = start;
  const pump = () => {
    while (at < end) {
      if (hub.served >= hub.stallAfter) return; // stalled: the connection stays open, silent
      const n = Math.min(64 * 1024, end - at);
      hub.served += n;
      const more = res.write(data.subarray(at, at + n));
      at += n;
      if (!more) {
        res.once("drain", pump);
        return;
      }
    }
    res.end();
  };
  pump();
}

function json(res: ServerResponse, status: number, error: string): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify({ error }));
}

/** The file a /resolve/ or /cdn/ path names, or the reason it names none. */
function route(hub: TestHub, url: URL): { f?: HubFile; redirect?: string; tree?: true; error?: [number, string] } {
  const resolvePrefix = `/${hub.repo}/resolve/main/`;
  if (url.pathname === `/api/models/${hub.repo}/tree/main`) return { tree: true };
  if (url.pathname.startsWith("/cdn/")) {
    const f = hub.files.find((x) => x.sha256 === url.pathname.slice(5));
    return f ? { f } : { error: [404, "Entry not found"] };
  }
  if (!url.pathname.startsWith(resolvePrefix)) return { error: [404, "Repository not found"] };
  const f = hub.files.find((x) => x.path === decodeURIComponent(url.pathname.slice(resolvePrefix.length)));
  if (!f) return { error: [404, "Entry not found"] };
  return f.lfs ? { redirect: `${hub.url}/cdn/${f.sha256}?x-signed=1` } : { f };
}

function handle(hub: TestHub, req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? "/", hub.url);
  const r =
    hub.token && req.headers.authorization !== `Bearer ${hub.token}` && !url.pathname.startsWith("/cdn/")
      ? { error: [401, "Access to model is restricted. You must be authenticated."] as [number, string] }
      : route(hub, url);
  if (r.error) json(res, ...r.error);
  else if (r.tree) tree(hub, url, res);
  else if (r.redirect) {
    res.writeHead(302, { location: r.redirect });
    res.end();
  } else if (r.f) sendRange(hub, r.f, req, res);
}

export async function startTestHub(repo: string, files: HubFile[]): Promise<TestHub> {
  let server: Server | undefined;
  const hub: TestHub = {
    url: "",
    repo,
    served: 0,
    corrupt: new Map(),
    stallAfter: Number.POSITIVE_INFINITY,
    files,
    close: () =>
      new Promise((resolve) => {
        server?.closeAllConnections();
        server?.close(() => resolve());
      }),
  };
  server = createServer((req, res) => handle(hub, req, res));
  await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
  hub.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return hub;
}
