/** Test and benchmark helpers of the gateway (not used by the service itself). */

export { HarmonyTokenizer } from "@expertmesh/grammar/tokenizer";
export { OrchestratorDirectory } from "../adapters/orchestrator-directory.ts";
export { PrimaryRateLimiter } from "../adapters/primary-rate-limiter.ts";
export { WorkerPool } from "../adapters/worker-pool.ts";
export { runPrimary } from "../cluster/primary.ts";
export { type Port, PrimaryChannel } from "../cluster/primary-channel.ts";
export { sharedStateHandlers } from "../cluster/shared-state.ts";
export { relay } from "../domain/generation-backend.ts";
export { MemoryRateLimiter } from "../domain/rate-limiter.ts";
export { MemoryResponseStore } from "../domain/responses/store.ts";
export { StaticWorkerDirectory } from "../domain/worker-directory.ts";
export { type ScriptedWorker, type ScriptOptions, startScriptedWorker } from "./scripted-worker.ts";
export { startStubMembership } from "./stub-membership.ts";
export { readyMember, startTestGateway, type TestGateway } from "./test-gateway.ts";
