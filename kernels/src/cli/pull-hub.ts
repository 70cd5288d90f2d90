/**
 * The Hugging Face hub as `expertmesh pull` sees it: a file listing (through @huggingface/hub, which
 * follows the tree API's Link pagination) and ranged GETs of /{repo}/resolve/{revision}/{path}.
 * Every failure becomes a PullError carrying the exit status and the one line the user is shown.
 */
import { HubApiError, listFiles } from "@huggingface/hub";

export const DEFAULT_ENDPOINT = "https://huggingface.co";

/** A failure with the line to print and the exit status (2: the hub cannot be reached or bad usage). */
export class PullError extends Error {
  readonly exitCode: 1 | 2;
  constructor(message: string, exitCode: 1 | 2) {
    super(message);
    this.exitCode = exitCode;
  }
}

export interface HubTarget {
  endpoint: string;
  repo: string;
  revision: string;
  token?: string;
}

export interface RemoteFile {
  path: string;
  size: number;
  /** The LFS object id, which is the content's sha256; absent for small files kept in git. */
  sha256?: string;
  /** The git blob id (sha1 of "blob <size>\0" + content), present for every file. */
  gitOid?: string;
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
]);

/** The code of a fetch failure that means "no connection" (undici puts it on the cause), if it is one. */
function networkCode(err: unknown): string | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; depth++) {
    if (typeof e.code === "string" && NETWORK_CODES.has(e.code)) return e.code;
    e = e.cause as typeof e;
  }
  return undefined;
}

export function offline(endpoint: string, err: unknown): PullError | undefined {
  const code = networkCode(err);
  if (!code) return undefined;
  return new PullError(`cannot reach ${endpoint}: ${code} — check the network or set HF_ENDPOINT`, 2);
}

function statusError(t: HubTarget, status: number, what: string): PullError {
  if (status === 401 || status === 403)
    return new PullError(
      `${t.repo} refused ${what} (HTTP ${status}): the repository is gated or private — ` +
        `${t.token ? "HF_TOKEN has no access to it" : "set HF_TOKEN"} (a token from ${DEFAULT_ENDPOINT}/settings/tokens, after accepting the model's terms)`,
      1,
    );
  if (status === 404) return new PullError(`unknown repository or revision: ${t.repo}@${t.revision} (HTTP 404)`, 1);
  return new PullError(`${t.endpoint} answered HTTP ${status} for ${what}`, 1);
}

/** Every file of the repository at the revision, with sizes and content hashes. */
export async function listRemoteFiles(t: HubTarget): Promise<RemoteFile[]> {
  const out: RemoteFile[] = [];
  try {
    const entries = listFiles({
      repo: { type: "model", name: t.repo },
      revision: t.revision,
      recursive: true,
      hubUrl: t.endpoint,
      ...(t.token ? { accessToken: t.token } : {}),
    });
    for await (const e of entries) {
      if (e.type !== "file") continue;
      out.push({
        path: e.path,
        size: e.lfs?.size ?? e.size,
        ...(e.lfs ? { sha256: e.lfs.oid } : {}),
        ...(e.oid ? { gitOid: e.oid } : {}),
      });
    }
  } catch (err) {
    if (err instanceof HubApiError) throw statusError(t, err.statusCode, "the file listing");
    if (err instanceof TypeError && /access token/.test(err.message)) throw new PullError(`HF_TOKEN: ${err.message}`, 2);
    throw offline(t.endpoint, err) ?? err;
  }
  return out;
}

/**
 * A GET of bytes [start, end) of one file; redirects are followed (the hub sends LFS files to a CDN, and
 * fetch drops the Authorization header when the redirect leaves the hub's origin, as the CDN expects).
 */
export async function fetchRange(t: HubTarget, path: string, start: number, end: number): Promise<ReadableStream<Uint8Array>> {
  const url = `${t.endpoint}/${t.repo}/resolve/${encodeURIComponent(t.revision)}/${path.split("/").map(encodeURIComponent).join("/")}`;
  let res: Response;
  try {
    res = await fetch(url, {
      headers: { range: `bytes=${start}-${end - 1}`, ...(t.token ? { authorization: `Bearer ${t.token}` } : {}) },
    });
  } catch (err) {
    throw offline(t.endpoint, err) ?? err;
  }
  if (res.status !== 206 && !(res.status === 200 && start === 0)) {
    await res.body?.cancel();
    if (res.status === 200) throw new PullError(`${url} ignored the Range header; cannot download in parts`, 1);
    throw statusError(t, res.status, path);
  }
  if (!res.body) throw new PullError(`${url} answered without a body`, 1);
  return res.body;
}
