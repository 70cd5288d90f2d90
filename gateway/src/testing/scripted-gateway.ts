/**
 * For route tests: a real gateway in front of a scripted worker (exact model outputs), with the official
 * openai SDK as the client. Each test's gateways close after it (`closeScriptedGateways` in afterEach).
 */
import OpenAI from "openai";
import type { HarmonyTokenizer } from "../domain/harmony/tokenizer.ts";
import { type ScriptedWorker, startScriptedWorker } from "./scripted-worker.ts";
import { startTestGateway } from "./test-gateway.ts";

const open: Array<() => Promise<void> | void> = [];

export async function scriptedGateway(tok: HarmonyTokenizer, scripts: number[][]): Promise<{ client: OpenAI; worker: ScriptedWorker }> {
  const worker = await startScriptedWorker(scripts);
  const gw = await startTestGateway({ address: worker.address, model: "gpt-oss-20b", tokenizer: tok });
  open.push(
    () => worker.close(),
    () => gw.close(),
  );
  return { client: new OpenAI({ apiKey: "unused", baseURL: `${gw.base}/v1`, maxRetries: 0 }), worker };
}

export async function closeScriptedGateways(): Promise<void> {
  for (const close of open.splice(0).reverse()) await close();
}
