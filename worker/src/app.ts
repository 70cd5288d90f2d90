/**
 * Wires a worker: engine (port) → gRPC service + grpc.health.v1 → metrics → membership.
 * main.ts reads config and calls startWorker(); tests call it directly with their own config.
 */
import type { Server as HttpServer } from "node:http";
import { createMetricsRegistry, Gauge, type Logger, startMetricsServer } from "@expertmesh/common";
import { Model } from "@expertmesh/kernels";
import { Accelerator, MemberState } from "@expertmesh/proto/cluster";
import { WorkerService } from "@expertmesh/proto/worker";
import { Server } from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { MembershipAgent } from "./adapters/membership-client.ts";
import type { WorkerConfig } from "./config.ts";
import { resolveDevice } from "./engine/device.ts";
import type { EnginePort } from "./engine/engine-port.ts";
import { loadNativeEngine, prepareConstraints } from "./engine/load-native-engine.ts";
import { NoModelEngine } from "./engine/no-model-engine.ts";
import { GroupAgent, type GroupEngineFactory } from "./group/group-agent.ts";
import { NativeGroupFactory } from "./group/native-group-factory.ts";
import { SwitchableEngine } from "./group/switchable-engine.ts";
import { serverCredentials } from "./transport/credentials.ts";
import { stepTracer } from "./transport/tracing.ts";
import { createWorkerService } from "./transport/worker-service.ts";

export const WORKER_SERVICE_NAME = "expertmesh.worker.v1.Worker";

export interface RunningWorker {
  address: string;
  metricsAddress: string;
  engine: EnginePort;
  health: HealthImplementation;
  close(): Promise<void>;
}

export async function startWorker(
  config: WorkerConfig,
  log: Logger,
  engine?: EnginePort,
  groupFactory?: GroupEngineFactory,
): Promise<RunningWorker> {
  const registry = createMetricsRegistry("worker", { rank: String(config.rank) });
  const capacity = {
    blockSize: config.kv.block_size,
    blocks: config.kv.num_blocks,
    maxNumSeqs: config.scheduler.max_num_seqs,
    maxTokensPerStep: config.scheduler.max_tokens_per_step,
  };
  const grouped = config.group.mode === "orchestrated";
  // What the engine runs on (loadWorkerConfig resolved WORKER_DEVICE; a config built otherwise is resolved here).
  const device = resolveDevice(config.device, config.rank);
  // A grouped worker loads its shard only once placed: check config.json now (it throws naming the
  // key and the value), so a broken checkpoint fails startup instead of every group it is put in.
  const checkpoint = grouped && config.model.path ? Model.readConfig(config.model.path) : undefined;
  // Before the engine serves or the worker takes a lease: these tables hold the event loop a while.
  if (!engine && config.model.path) await prepareConstraints(config, (checkpoint ?? Model.readConfig(config.model.path)).vocab, log);
  const waiting = (reason: string) => new NoModelEngine(config.model.name, capacity, reason, device);
  const eng: EnginePort = grouped
    ? new SwitchableEngine(waiting("waiting for the orchestrator to place this worker in a group"))
    : (engine ??
      (config.model.path ? await loadNativeEngine(config, log, registry, stepTracer) : undefined) ??
      new NoModelEngine(config.model.name, capacity, undefined, device));

  new Gauge({
    name: "expertmesh_worker_ready",
    help: "1 when the worker has a model loaded and serves Generate",
    registers: [registry],
    collect() {
      this.set(eng.ready ? 1 : 0);
    },
  });

  const server = new Server({ "grpc.max_receive_message_length": 64 * 1024 * 1024 });
  server.addService(
    WorkerService,
    createWorkerService(eng, { workerId: config.worker_id, rank: config.rank, worldSize: config.world_size }, log, config.model.name),
  );
  const health = new HealthImplementation({ "": "SERVING", [WORKER_SERVICE_NAME]: eng.ready ? "SERVING" : "NOT_SERVING" });
  health.addToServer(server);

  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${config.grpc.host}:${config.grpc.port}`, serverCredentials(config.tls), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  const address = `${config.grpc.host}:${port}`;
  const metrics: HttpServer = await startMetricsServer(registry, config.metrics.host, config.metrics.port);
  const maddr = metrics.address();
  const metricsAddress = typeof maddr === "object" && maddr ? `${config.metrics.host}:${maddr.port}` : "";

  let membership: MembershipAgent | undefined;
  let agent: GroupAgent | undefined;
  if (grouped) {
    agent = new GroupAgent(
      eng as SwitchableEngine,
      groupFactory ?? new NativeGroupFactory(config, log, registry, stepTracer),
      {
        setState: (state) => {
          membership?.setState(state);
          health.setStatus(WORKER_SERVICE_NAME, state === MemberState.MEMBER_STATE_READY ? "SERVING" : "NOT_SERVING");
        },
        rejoin: () => membership?.rejoin(),
      },
      waiting,
      log,
    );
  }
  if (config.orchestrator.address) {
    membership = new MembershipAgent(
      config.orchestrator.address,
      {
        workerId: config.worker_id,
        address: config.grpc.advertise_address || address,
        model: config.model.name,
        // cuda-emu runs on the CPU: only a GPU device makes this a CUDA member.
        accelerator: device.startsWith("cuda:") ? Accelerator.ACCELERATOR_CUDA : Accelerator.ACCELERATOR_CPU,
        device,
        precision: config.model.precision,
        groupId: "",
        rank: config.rank,
        worldSize: config.world_size,
        numExperts: checkpoint?.numExperts ?? 0,
        wantsGroup: grouped,
      },
      config.orchestrator.heartbeat_ms,
      log,
      (assignment) => agent?.onAssignment(assignment),
      () => {
        const info = eng.info();
        const total = info.capacity?.kvBlocksTotal ?? 0;
        return {
          requestsRunning: info.load?.running ?? 0,
          requestsWaiting: info.load?.waiting ?? 0,
          kvCacheUsage: total > 0 ? (info.capacity?.kvBlocksInUse ?? 0) / total : 0,
          generationTokensTotal: info.load?.generationTokensTotal ?? 0,
          ...(eng.ready && eng.prefixSummary ? { prefix: eng.prefixSummary() } : {}),
        };
      },
    );
    membership.start(eng.ready ? MemberState.MEMBER_STATE_READY : MemberState.MEMBER_STATE_STARTING);
  }
  log.info({ address, metricsAddress, device, ready: eng.ready, reason: eng.ready ? undefined : eng.notReadyReason }, "worker listening");

  return {
    address,
    metricsAddress,
    engine: eng,
    health,
    async close() {
      // Drain: routers see NOT_SERVING / DRAINING and stop sending; admitted work finishes and the notice
      // runs out (both bounded by the grace period), then the server closes.
      health.setStatus("", "NOT_SERVING");
      health.setStatus(WORKER_SERVICE_NAME, "NOT_SERVING");
      membership?.setState(MemberState.MEMBER_STATE_DRAINING);
      const timers: NodeJS.Timeout[] = [];
      const after = (ms: number) => new Promise<void>((resolve) => timers.push(setTimeout(resolve, ms)));
      await Promise.race([Promise.all([eng.drain?.(), after(config.shutdown_notice_ms)]), after(config.shutdown_grace_ms)]);
      for (const t of timers) clearTimeout(t);
      await agent?.close();
      await membership?.leave();
      // Admitted work is done; what is still open is long-lived (routers' health Watch streams): give
      // it a moment to close, then force the server down so a drain never waits on a watcher.
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 1_000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      await new Promise<void>((resolve) => metrics.close(() => resolve()));
    },
  };
}
