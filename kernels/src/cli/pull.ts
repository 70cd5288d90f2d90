/**
 * expertmesh pull REPO [--dir D] [--revision R] [--include GLOB]... [--connections N] [--verify] [--endpoint URL]
 * Downloads the files ExpertMesh needs from a Hugging Face model repository: resumable, N ranged
 * connections per large file, each file checked against the hub's sha256 (git sha1 for small files).
 * A re-run trusts the completion record (.expertmesh-pull.json) and the file sizes; --verify rehashes.
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { contentId, type DownloadOptions, downloadFile, hashFile } from "./pull-download.ts";
import { DEFAULT_ENDPOINT, type HubTarget, listRemoteFiles, PullError, type RemoteFile } from "./pull-hub.ts";
import { Progress } from "./pull-progress.ts";

export interface PullIo {
  env: NodeJS.ProcessEnv;
  out: (text: string) => void;
  err: (text: string) => void;
  tty: boolean;
  /** Smallest range worth its own connection (tests lower it to exercise parallel ranges). */
  minRangeBytes?: number;
}

/** What the engine and gateway read; gpt-oss's original/ and metal/ copies of the weights are left out. */
export const DEFAULT_INCLUDE = [
  "config.json",
  "generation_config.json",
  "*.safetensors",
  "model.safetensors.index.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "chat_template.jinja",
];

export const MARKER = ".expertmesh-pull.json";

const USAGE =
  "usage: expertmesh pull OWNER/NAME [--dir D] [--revision R] [--include GLOB]... [--connections N] [--verify] [--endpoint URL]";

/** A glob over '/'-separated paths: '*' and '?' stay within a folder, '**' crosses folders. */
export function globToRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (glob.startsWith("**/", i)) {
      re += "(?:.*/)?";
      i += 2;
    } else if (glob.startsWith("**", i)) {
      re += ".*";
      i += 1;
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

interface Marker {
  repo: string;
  revision: string;
  files: Record<string, string>;
}

function readMarker(dir: string): Marker | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, MARKER), "utf8")) as Marker;
  } catch {
    return undefined;
  }
}

interface Plan {
  target: HubTarget;
  dir: string;
  include: RegExp[];
  verify: boolean;
  connections: number;
}

function parse(argv: string[], env: NodeJS.ProcessEnv): Plan {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      dir: { type: "string" },
      revision: { type: "string", default: "main" },
      include: { type: "string", multiple: true },
      connections: { type: "string", default: "8" },
      verify: { type: "boolean", default: false },
      endpoint: { type: "string" },
    },
  });
  const repo = positionals[0];
  if (positionals.length !== 1 || !repo || !/^[\w.-]+\/[\w.-]+$/.test(repo))
    throw new PullError(`expected one repository as OWNER/NAME (e.g. openai/gpt-oss-20b)\n${USAGE}`, 2);
  const connections = Number(values.connections);
  if (!Number.isInteger(connections) || connections < 1 || connections > 64)
    throw new PullError(`--connections must be an integer from 1 to 64, got '${values.connections}'`, 2);
  const endpoint = (values.endpoint ?? env.HF_ENDPOINT ?? DEFAULT_ENDPOINT).replace(/\/+$/, "");
  if (!/^https?:\/\//.test(endpoint)) throw new PullError(`the hub URL must be http(s)://…, got '${endpoint}'`, 2);
  return {
    target: { endpoint, repo, revision: values.revision, ...(env.HF_TOKEN ? { token: env.HF_TOKEN } : {}) },
    dir: values.dir ?? (basename(repo) as string),
    include: (values.include ?? DEFAULT_INCLUDE).map(globToRegExp),
    verify: values.verify,
    connections,
  };
}

/** True when dest already holds f: same size and (recorded id, or with --verify its hash) equal. */
async function alreadyHere(dest: string, f: RemoteFile, marker: Marker | undefined, verify: boolean) {
  if (!existsSync(dest) || statSync(dest).size !== f.size) return false;
  if (verify) return (await hashFile(dest, f)) === contentId(f);
  return marker?.files[f.path] === contentId(f);
}

async function pullFile(p: Plan, f: RemoteFile, o: DownloadOptions): Promise<void> {
  const dest = join(p.dir, f.path);
  mkdirSync(dirname(dest), { recursive: true });
  const first = await downloadFile(p.target, f, dest, o);
  if (first === contentId(f)) return;
  // Deleted by downloadFile; one more full try, since a corrupted transfer is rarely repeated.
  const second = await downloadFile(p.target, f, dest, o);
  if (second !== contentId(f))
    throw new PullError(`${f.path}: content check failed twice (expected ${contentId(f)}, got ${second}); the file was deleted`, 1);
}

async function pull(p: Plan, io: PullIo): Promise<void> {
  const listed = await listRemoteFiles(p.target);
  const wanted = listed.filter((f) => p.include.some((re) => re.test(f.path)));
  if (wanted.length === 0) throw new PullError(`no file of ${p.target.repo}@${p.target.revision} matches the --include globs`, 1);
  for (const f of wanted) if (f.path.split("/").some((s) => s === ".." || s === "")) throw new PullError(`unsafe path '${f.path}'`, 1);
  mkdirSync(p.dir, { recursive: true });
  const old = readMarker(p.dir);
  const marker: Marker = {
    repo: p.target.repo,
    revision: p.target.revision,
    files: old?.repo === p.target.repo ? { ...old.files } : {},
  };
  const todo: RemoteFile[] = [];
  for (const f of wanted) if (!(await alreadyHere(join(p.dir, f.path), f, marker, p.verify))) todo.push(f);
  const progress = new Progress(
    todo.reduce((s, f) => s + f.size, 0),
    io,
  );
  try {
    for (const f of todo) {
      progress.file(f.path);
      delete marker.files[f.path];
      await pullFile(p, f, {
        connections: p.connections,
        minRangeBytes: io.minRangeBytes ?? 16 << 20,
        onBytes: (n) => progress.add(n),
      });
      marker.files[f.path] = contentId(f);
      writeFileSync(join(p.dir, MARKER), JSON.stringify(marker, null, 2));
    }
  } finally {
    progress.stop();
  }
  for (const f of wanted) marker.files[f.path] = contentId(f);
  writeFileSync(join(p.dir, MARKER), JSON.stringify(marker, null, 2));
  io.out(
    `${JSON.stringify({ dir: p.dir, repo: p.target.repo, revision: p.target.revision, files: wanted.length, downloaded: todo.length, bytes: progress.done })}\n`,
  );
}

/** The `pull` subcommand; returns the exit status (0 ok, 1 failure, 2 usage or hub unreachable). */
export async function runPull(argv: string[], io: PullIo): Promise<number> {
  try {
    await pull(parse(argv, io.env), io);
    return 0;
  } catch (err) {
    const usage = (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
    io.err(`expertmesh pull: ${(err as Error).message}${usage ? `\n${USAGE}` : ""}\n`);
    return err instanceof PullError ? err.exitCode : usage ? 2 : 1;
  }
}
