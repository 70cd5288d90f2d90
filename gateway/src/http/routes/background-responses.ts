/**
 * Responses `background: true`, as OpenAI has them: POST /v1/responses answers at once with the
 * response `queued` (stored, with its input items); a BackgroundQueue job generates it, moving it to
 * `in_progress` and then `completed` / `incomplete` / `failed` in the store, where GET /v1/responses/{id}
 * polls it; POST /v1/responses/{id}/cancel makes it `cancelled` and stops its generation wherever it runs.
 * Every transition is ResponseStore.putIf from the unfinished statuses, so a cancel and a completion never
 * both win. A run that dies with its gateway is run again from the start (the queue's contract), its
 * response going back through `in_progress`. Not supported: `stream` with `background` (OpenAI's
 * resumable streams), and `store: false` (a background response exists only in the store).
 */
import { AppError } from "@expertmesh/common";
import { propagation, ROOT_CONTEXT } from "@opentelemetry/api";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { ApiKeyRecord } from "../../domain/api-keys.ts";
import { withCaller } from "../../domain/caller.ts";
import { type BackgroundJob, type BackgroundQueue, UNFINISHED } from "../../domain/responses/background.ts";
import { inputItemObjects } from "../../domain/responses/input-items.ts";
import type { StoredResponse } from "../../domain/responses/store.ts";
import { gatewayErrors } from "../../errors.ts";
import { tenantOf } from "../tenant.ts";
import { beginGeneration, callerTrace } from "./generation.ts";
import {
  generationOf,
  newId,
  type PreparedResponse,
  prepareResponse,
  ResponseRun,
  type ResponsesBody,
  type ResponsesRouteDeps,
  responseObject,
} from "./response-run.ts";

type Deps = ResponsesRouteDeps & { background: BackgroundQueue };

function refuse(detail: string, param: string): never {
  throw gatewayErrors.create("invalid_request_error", { detail }, { param });
}

/** Stores the checked request's response as `queued` and hands it to the queue; the answer is that response. */
export async function enqueueBackground(deps: Deps, p: PreparedResponse, request: FastifyRequest) {
  if (p.body.stream) refuse("Streaming is not supported with background: true; poll GET /v1/responses/{id} instead.", "stream");
  if (p.body.store === false) refuse("A background response must be stored: store must not be false with background: true.", "store");
  const tenant = tenantOf(request);
  const queued = {
    owner: tenant,
    response: responseObject(p, "queued"),
    input_items: inputItemObjects(p.body.input, newId),
    history: [],
    calls: {},
  };
  await deps.store.put(queued);
  const trace: Record<string, string> = {};
  propagation.inject(callerTrace(request), trace);
  const job: BackgroundJob = { id: p.id, tenant, body: { ...p.body }, trace, ...jobCaller(request.apiKey) };
  try {
    await deps.background.enqueue(job);
  } catch (err) {
    await failed(deps, job, queued, err);
    throw err;
  }
  return queued.response;
}

/** The key a run acts as (token limits), without its digest: jobs sit in Redis, readable by operators. */
function jobCaller(key: ApiKeyRecord | undefined): Pick<BackgroundJob, "caller"> {
  if (!key) return {};
  const { sha256: _digest, ...caller } = key;
  return { caller };
}

export function registerBackgroundResponses(app: FastifyInstance, deps: Deps): void {
  deps.background.start({
    run: (job, signal) => runBackground(deps, job, signal),
    lost: async (job, reason) => {
      const stored = await deps.store.get(job.id, job.tenant);
      if (stored) await failed(deps, job, stored, new Error(reason));
    },
  });

  app.post<{ Params: { id: string } }>("/v1/responses/:id/cancel", async (request) => {
    const { id } = request.params;
    const tenant = tenantOf(request);
    const stored = await deps.store.get(id, tenant);
    if (!stored) throw gatewayErrors.create("response_not_found", { id });
    if (stored.response.background !== true)
      throw gatewayErrors.create("invalid_request_error", {
        detail: `Response '${id}' was not created with background: true; only background responses can be cancelled.`,
      });
    // An ended response is answered as it is: cancelling is idempotent.
    if (!UNFINISHED.includes(String(stored.response.status))) return stored.response;
    const cancelled = { ...stored, owner: stored.owner ?? tenant, response: { ...stored.response, status: "cancelled" } };
    if (await deps.store.putIf(cancelled, UNFINISHED)) {
      await deps.background.cancel(id);
      return cancelled.response;
    }
    // It ended between the read and the write: answer what it ended as.
    return (await deps.store.get(id, tenant))?.response ?? stored.response;
  });
}

/** One run of a background response: nothing if it was cancelled or has ended (a job delivered again). */
async function runBackground(deps: Deps, job: BackgroundJob, signal: AbortSignal): Promise<void> {
  const stored = await deps.store.get(job.id, job.tenant);
  if (!stored || !UNFINISHED.includes(String(stored.response.status))) return;
  const body = job.body as unknown as ResponsesBody;
  const ids = { id: job.id, createdAt: Number(stored.response.created_at) };
  const trace = propagation.extract(ROOT_CONTEXT, job.trace);
  const ctx = job.caller ? withCaller(trace, { key: { ...job.caller, sha256: "" } }) : trace;
  try {
    const p = await prepareResponse(deps, body, job.tenant, signal, ids);
    const started = { ...stored, owner: job.tenant, response: responseObject(p, "in_progress") };
    if (!(await deps.store.putIf(started, UNFINISHED))) return;
    const controller = new AbortController();
    signal.addEventListener("abort", () => controller.abort(signal.reason), { once: true });
    const run = new ResponseRun(deps.tokenizer, p);
    await run.drain(await beginGeneration(deps.backend, generationOf(deps, p), controller, ctx));
    await deps.store.putIf(run.record(job.tenant, stored.input_items), ["in_progress"]);
  } catch (err) {
    // Cancelled: the cancel has written the status.
    if (!signal.aborted) await failed(deps, job, stored, err);
  }
}

/** Ends an unfinished response as `failed` with the error OpenAI-shaped (the error's own, or server_error). */
async function failed(deps: Deps, job: BackgroundJob, stored: StoredResponse, err: unknown): Promise<void> {
  const e = (err instanceof AppError ? err : gatewayErrors.create("server_error", { requestId: job.id })).toOpenAi().error;
  const response = { ...stored.response, status: "failed", error: { code: e.code ?? e.type, message: e.message } };
  await deps.store.putIf({ ...stored, owner: job.tenant, response }, UNFINISHED).catch(() => false);
}
