/** Test and benchmark helpers of the gateway (not used by the service itself). */

export { WorkerPool } from "../adapters/worker-pool.ts";
export { relay } from "../domain/generation-backend.ts";
export { HarmonyTokenizer } from "../domain/harmony/tokenizer.ts";
export { StaticWorkerDirectory } from "../domain/worker-directory.ts";
export { type ScriptedWorker, type ScriptOptions, startScriptedWorker } from "./scripted-worker.ts";
export { readyMember, startTestGateway, type TestGateway } from "./test-gateway.ts";
