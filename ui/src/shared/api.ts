/**
 * Calls from the pages to the gateway's API: the key the user typed (kept in this browser's localStorage
 * only, never sent anywhere but this origin's API) as a Bearer token, and errors kept exactly as the API
 * answered them (OpenAI's `{error: {message, type, param, code}}`).
 */

const KEY_STORAGE = "expertmesh.apiKey";

export function storedKey(): string {
  return localStorage.getItem(KEY_STORAGE) ?? "";
}

export function storeKey(key: string): void {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

export interface OpenAiErrorBody {
  message: string;
  type?: string;
  param?: string | null;
  code?: string | null;
}

/** An error answer of the API: its HTTP status (0: an error event inside a stream) and its error object, as sent. */
export class ApiError extends Error {
  readonly status: number;
  readonly body: OpenAiErrorBody;
  constructor(status: number, body: OpenAiErrorBody) {
    super(body.message);
    this.status = status;
    this.body = body;
  }
}

export async function errorOf(res: Response): Promise<ApiError> {
  const text = await res.text();
  try {
    const parsed = JSON.parse(text) as { error?: OpenAiErrorBody };
    if (parsed.error?.message) return new ApiError(res.status, parsed.error);
  } catch {
    // not JSON: the text itself is the message
  }
  return new ApiError(res.status, { message: text || res.statusText });
}

export async function apiFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const key = storedKey();
  if (key) headers.set("authorization", `Bearer ${key}`);
  if (init.body !== undefined) headers.set("content-type", "application/json");
  const res = await fetch(path, { ...init, headers });
  if (!res.ok) throw await errorOf(res);
  return res;
}

export async function apiJson<T>(path: string, init: RequestInit = {}): Promise<T> {
  return (await (await apiFetch(path, init)).json()) as T;
}

/** The `data:` payloads of a server-sent event stream, parsed as JSON, until `[DONE]`. */
export async function* sseEvents(res: Response): AsyncGenerator<unknown> {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end = buffer.indexOf("\n\n");
    while (end >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event
        .split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trimStart())
        .join("\n");
      if (data === "[DONE]") return;
      if (data) yield JSON.parse(data);
      end = buffer.indexOf("\n\n");
    }
  }
}
