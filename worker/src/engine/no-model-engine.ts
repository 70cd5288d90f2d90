/**
 * The engine of a worker started without a checkpoint: it reports itself not ready and rejects work
 * with a typed NOT_READY error. The native engine replaces it once a model path is configured.
 */
import type { GenerateRequest } from "@expertmesh/proto/worker";
import { workerErrors } from "../errors.ts";
import type { EngineEvent, EnginePort } from "./engine-port.ts";

export class NoModelEngine implements EnginePort {
  readonly ready: boolean = false;
  readonly notReadyReason: string;
  readonly #modelName: string;
  readonly #capacity: { blockSize: number; blocks: number; maxNumSeqs: number; maxTokensPerStep: number };
  readonly #device: string;

  /** `device`: what Info reports as the backend, the device the engine will run on once there is one. */
  constructor(
    modelName: string,
    capacity: { blockSize: number; blocks: number; maxNumSeqs: number; maxTokensPerStep: number },
    reason = "no model loaded (set WORKER_MODEL_PATH)",
    device = "cpu",
  ) {
    this.#modelName = modelName;
    this.#capacity = capacity;
    this.notReadyReason = reason;
    this.#device = device;
  }

  info() {
    return {
      model: {
        name: this.#modelName,
        numHiddenLayers: 0,
        numExperts: 0,
        expertsPerToken: 0,
        vocabSize: 0,
        hiddenSize: 0,
        contextLength: 0,
        synthetic: false,
      },
      capacity: {
        kvBlockSize: this.#capacity.blockSize,
        kvBlocksTotal: this.#capacity.blocks,
        kvBlocksFree: this.#capacity.blocks,
        maxNumSeqs: this.#capacity.maxNumSeqs,
        maxTokensPerStep: this.#capacity.maxTokensPerStep,
        kvBlocksInUse: 0,
        kvDtype: "",
        kvBytesPerToken: 0,
        kvBlocksMaxPinned: 0,
        kvSlidingBlocksTotal: 0,
      },
      load: { running: 0, waiting: 0, generationTokensTotal: 0 },
      backend: this.#device,
    };
  }

  // biome-ignore lint/correctness/useYield: this engine never produces tokens
  async *generate(_request: GenerateRequest, _signal: AbortSignal): AsyncIterable<EngineEvent> {
    throw workerErrors.create("not_ready", { reason: this.notReadyReason }, { retryAfterMs: 5_000 });
  }

  abort(_requestId: string): boolean {
    return false;
  }
}
