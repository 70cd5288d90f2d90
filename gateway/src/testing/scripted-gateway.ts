/**
 * For route tests: a real gateway in front of a scripted worker (exact model outputs), with the official
 * openai SDK as the client. Each test's gateways close after it (`closeScriptedGateways` in afterEach).
 */

import type { HarmonyTokenizer } from "@expertmesh/grammar/tokenizer";
import OpenAI from "openai";
import { type ScriptedWorker, type ScriptOptions, startScriptedWorker } from "./scripted-worker.ts";
import { startTestGateway, type TestGatewayOptions } from "./test-gateway.ts";

const open: Array<() => Promise<void> | void> = [];

/**
 * `config`: raw gateway config (validated by the real schema); `worker`: the scripted worker's options;
 * `deps`: the gateway's ports to use instead of the in-process ones; `apiKey`: the client's key. `base`
 * is the gateway's root URL (the client's is `${base}/v1`).
 */
export async function scriptedGateway(
  tok: HarmonyTokenizer,
  scripts: number[][],
  o: { config?: Record<string, unknown>; worker?: ScriptOptions; deps?: TestGatewayOptions["deps"]; apiKey?: string } = {},
): Promise<{ client: OpenAI; worker: ScriptedWorker; base: string }> {
  const worker = await startScriptedWorker(scripts, o.worker);
  const gw = await startTestGateway({
    address: worker.address,
    model: "gpt-oss-20b",
    tokenizer: tok,
    ...(o.config ? { config: o.config } : {}),
    ...(o.deps ? { deps: o.deps } : {}),
  });
  open.push(
    () => worker.close(),
    () => gw.close(),
  );
  return { client: new OpenAI({ apiKey: o.apiKey ?? "unused", baseURL: `${gw.base}/v1`, maxRetries: 0 }), worker, base: gw.base };
}

export async function closeScriptedGateways(): Promise<void> {
  for (const close of open.splice(0).reverse()) await close();
}
