/**
 * `expertmesh batch submit|status|results` over a gateway's Files and Batches API (plain fetch; any
 * OpenAI-compatible server works). Usage errors exit 2, failures 1. The core takes its environment and
 * streams as arguments so that it runs in tests; batch.ts is the process entry.
 */
import { readFile, writeFile } from "node:fs/promises";
import { basename } from "node:path";
import { parseArgs } from "node:util";

export interface CliIo {
  env: NodeJS.ProcessEnv;
  out: (s: string) => void;
  err: (s: string) => void;
  /** Whether err is a terminal (the progress bar redraws in place). */
  tty: boolean;
}

const USAGE = `usage: expertmesh batch <command> [options]
  submit FILE [--endpoint /v1/chat/completions] [--metadata key=value ...]   upload FILE and create a batch; prints the batch
  status ID [--wait] [--interval-ms 1000]                                   the batch; --wait draws a progress bar until it ends
  results ID [--errors] [--out FILE]                                         the output (or error) file's JSONL
  list                                                                       your batches
options: --base-url URL (EXPERTMESH_BASE_URL, OPENAI_BASE_URL; default http://127.0.0.1:8080/v1)
         --api-key KEY (EXPERTMESH_API_KEY, OPENAI_API_KEY)`;

class UsageError extends Error {}

const TERMINAL = new Set(["completed", "failed", "expired", "cancelled"]);

interface BatchView {
  id: string;
  status: string;
  output_file_id: string | null;
  error_file_id: string | null;
  request_counts?: { total: number; completed: number; failed: number };
}

export async function runBatchCli(argv: string[], io: CliIo): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        endpoint: { type: "string", default: "/v1/chat/completions" },
        metadata: { type: "string", multiple: true },
        wait: { type: "boolean", default: false },
        "interval-ms": { type: "string", default: "1000" },
        errors: { type: "boolean", default: false },
        out: { type: "string" },
        "base-url": { type: "string" },
        "api-key": { type: "string" },
        help: { type: "boolean", default: false },
      },
    });
    const [command, arg] = positionals;
    if (values.help || !command) throw new UsageError(values.help ? "" : "missing command");
    const base = (values["base-url"] ?? io.env.EXPERTMESH_BASE_URL ?? io.env.OPENAI_BASE_URL ?? "http://127.0.0.1:8080/v1").replace(
      /\/+$/,
      "",
    );
    const key = values["api-key"] ?? io.env.EXPERTMESH_API_KEY ?? io.env.OPENAI_API_KEY;
    const api = async (path: string, init: RequestInit = {}): Promise<Response> => {
      const res = await fetch(`${base}${path}`, {
        ...init,
        headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...init.headers },
      });
      if (!res.ok) {
        const body = await res.text();
        let message = body;
        try {
          message = (JSON.parse(body) as { error?: { message?: string } }).error?.message ?? body;
        } catch {}
        throw new Error(`${init.method ?? "GET"} ${path}: HTTP ${res.status}: ${message}`);
      }
      return res;
    };
    const need = (what: string) => {
      if (!arg) throw new UsageError(`${command} needs ${what}`);
      return arg;
    };

    if (command === "submit") {
      const path = need("a FILE");
      const metadata: Record<string, string> = {};
      for (const kv of values.metadata ?? []) {
        const i = kv.indexOf("=");
        if (i <= 0) throw new UsageError(`--metadata takes key=value; got '${kv}'`);
        metadata[kv.slice(0, i)] = kv.slice(i + 1);
      }
      const form = new FormData();
      form.set("purpose", "batch");
      form.set("file", new Blob([await readFile(path)]), basename(path));
      const file = (await (await api("/files", { method: "POST", body: form })).json()) as { id: string };
      const batch = await api("/batches", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          input_file_id: file.id,
          endpoint: values.endpoint,
          completion_window: "24h",
          ...(Object.keys(metadata).length > 0 ? { metadata } : {}),
        }),
      });
      io.out(`${JSON.stringify(await batch.json(), null, 2)}\n`);
      return 0;
    }
    if (command === "status") {
      const id = need("a batch ID");
      const interval = Number(values["interval-ms"]);
      if (!(interval > 0)) throw new UsageError("--interval-ms must be a positive number");
      for (;;) {
        const b = (await (await api(`/batches/${encodeURIComponent(id)}`)).json()) as BatchView;
        if (!values.wait) {
          io.out(`${JSON.stringify(b, null, 2)}\n`);
          return b.status === "failed" ? 1 : 0;
        }
        io.err(`${io.tty ? "\r\x1b[2K" : ""}${progressLine(b)}${io.tty ? "" : "\n"}`);
        if (TERMINAL.has(b.status)) {
          if (io.tty) io.err("\n");
          io.out(`${JSON.stringify(b, null, 2)}\n`);
          return b.status === "completed" ? 0 : 1;
        }
        await new Promise((r) => setTimeout(r, interval));
      }
    }
    if (command === "results") {
      const id = need("a batch ID");
      const b = (await (await api(`/batches/${encodeURIComponent(id)}`)).json()) as BatchView;
      const fileId = values.errors ? b.error_file_id : b.output_file_id;
      if (!fileId) {
        io.err(`batch ${id} (${b.status}) has no ${values.errors ? "error" : "output"} file\n`);
        return TERMINAL.has(b.status) ? 0 : 1;
      }
      const content = await (await api(`/files/${encodeURIComponent(fileId)}/content`)).text();
      if (values.out) await writeFile(values.out, content);
      else io.out(content);
      return 0;
    }
    if (command === "list") {
      const page = (await (await api("/batches?limit=100")).json()) as { data: BatchView[] };
      for (const b of page.data) io.out(`${b.id}\t${b.status}\t${progressCounts(b)}\n`);
      return 0;
    }
    throw new UsageError(`unknown command '${command}'`);
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      if ((err as Error).message) io.err(`${(err as Error).message}\n`);
      io.err(`${USAGE}\n`);
      return 2;
    }
    io.err(`${(err as Error).message}\n`);
    return 1;
  }
}

function progressCounts(b: BatchView): string {
  const c = b.request_counts ?? { total: 0, completed: 0, failed: 0 };
  return `${c.completed + c.failed}/${c.total}${c.failed > 0 ? ` (${c.failed} failed)` : ""}`;
}

/** `batch_… in_progress [##########----------] 512/1000 51% (3 failed)` */
export function progressLine(b: BatchView, width = 30): string {
  const c = b.request_counts ?? { total: 0, completed: 0, failed: 0 };
  const done = c.completed + c.failed;
  const frac = c.total > 0 ? done / c.total : 0;
  const filled = Math.round(frac * width);
  const bar = `[${"#".repeat(filled)}${"-".repeat(width - filled)}]`;
  return `${b.id} ${b.status} ${bar} ${done}/${c.total} ${Math.floor(frac * 100)}%${c.failed > 0 ? ` (${c.failed} failed)` : ""}`;
}
