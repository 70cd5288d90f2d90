/**
 * The communicator in real processes (Gloo over loopback, a file rendezvous per group): every collective
 * over 2 and 4 ranks, the watchdog (a hung rank → the others reject with the typed timeout error within
 * timeout + 1 s), a dead rank (→ peer_lost, at once), abort, option validation, and NCCL (skipped without
 * GPUs, saying why). The native side of the same checks is test/test_comm.cpp (native.test.ts runs it).
 */
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { capabilities } from "./capabilities.ts";
import { Communicator } from "./communicator.ts";

const rankScript = new URL("./testing/comm-rank.ts", import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), "expertmesh-comm-"));

type Mode = "collectives" | "stall" | "die" | "survive" | "abort";

interface RankResult {
  ok: boolean;
  sum?: number[];
  broadcasts?: number[];
  gathered?: number[];
  native?: boolean;
  status?: string;
  commFailure?: string;
  message?: string;
  ms?: number;
}

/** Starts `world` rank processes; resolves with each one's printed result (null for stalled or dead ranks). */
async function ranks(world: number, modeOf: (r: number) => Mode, timeoutMs = 10_000): Promise<Array<RankResult | null>> {
  const rendezvous = `file://${mkdtempSync(join(tmp, "rdzv-"))}`;
  return Promise.all(
    Array.from({ length: world }, (_, r) => {
      const mode = modeOf(r);
      const child = spawn(process.execPath, [rankScript, String(r), String(world), rendezvous, mode, String(timeoutMs)], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      let out = "";
      child.stdout.on("data", (b: Buffer) => {
        out += b.toString();
      });
      return new Promise<RankResult | null>((resolve) => {
        if (mode === "stall") {
          // A hung peer: kept alive until the others gave up, then removed.
          setTimeout(() => {
            child.kill("SIGKILL");
            resolve(null);
          }, timeoutMs + 3_000);
          return;
        }
        child.on("exit", () =>
          resolve(mode === "die" ? null : out ? (JSON.parse(out) as RankResult) : { ok: false, message: "no output" }),
        );
      });
    }),
  );
}

describe("communicator (Gloo, one process per rank)", () => {
  it.each([2, 4])("all-reduce, broadcast from every root, all-gather and barrier over %i ranks", async (world) => {
    const results = await ranks(world, () => "collectives");
    const n = (world * (world + 1)) / 2;
    const broadcasts = Array.from({ length: world }, (_, root) => 100 + root);
    const gathered = Array.from({ length: world }, (_, r) => [r, 10 * r]).flat();
    for (const r of results) expect(r).toEqual({ ok: true, sum: [n, 10 * n], broadcasts, gathered });
  });

  it("watchdog: a rank that never joins the collective makes the others reject with the typed timeout error within timeout + 1 s", async () => {
    const timeoutMs = 1_500;
    const results = await ranks(3, (r) => (r === 2 ? "stall" : "collectives"), timeoutMs);
    expect(results[2]).toBeNull();
    for (const [rank, r] of results.slice(0, 2).entries()) {
      expect(r).toMatchObject({ ok: false, native: true, status: "communicator_error", commFailure: "timeout" });
      expect(r?.message).toMatch(new RegExp(`all-reduce failed on rank ${rank} of 3: a peer did not answer within the 1500 ms timeout`));
      expect(r?.ms).toBeGreaterThanOrEqual(timeoutMs - 50);
      expect(r?.ms).toBeLessThan(timeoutMs + 1_000);
    }
  }, 20_000);

  it("a rank that dies makes the others reject with peer_lost at once, long before the timeout", async () => {
    const [leader] = await ranks(2, (r) => (r === 1 ? "die" : "survive"), 30_000);
    expect(leader).toMatchObject({ ok: false, native: true, status: "communicator_error", commFailure: "peer_lost" });
    expect(leader?.ms).toBeLessThan(5_000);
  }, 20_000);

  it("after abort() every collective rejects at once with aborted", async () => {
    const results = await ranks(2, () => "abort");
    for (const r of results) {
      expect(r).toMatchObject({ ok: false, status: "communicator_error", commFailure: "aborted" });
      expect(r?.message).toMatch(/test: the group is re-formed/);
    }
  });

  it("a join nobody else attends rejects with rendezvous after the timeout", async () => {
    const started = performance.now();
    const err = await Communicator.connect({
      rank: 0,
      world: 2,
      rendezvous: `file://${mkdtempSync(join(tmp, "alone-"))}`,
      timeoutMs: 800,
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: "NativeError", statusName: "communicator_error", commFailure: "rendezvous" });
    expect(performance.now() - started).toBeLessThan(800 + 1_000);
  });

  it("validates its options before joining", async () => {
    await expect(Communicator.connect({ rank: 2, world: 2, rendezvous: "file:///x" })).rejects.toThrow(
      /rank must be an integer in \[0, 2\)/,
    );
    await expect(Communicator.connect({ rank: 0, world: 1, rendezvous: "tcp://x" })).rejects.toThrow(/rendezvous must be file:/);
    await expect(Communicator.connect({ rank: 0, world: 1, rendezvous: "file:///x", timeoutMs: 0 })).rejects.toThrow(/timeoutMs/);
    await expect(Communicator.connect({ transport: "nccl", rank: 0, world: 1, ncclUniqueId: new Uint8Array(3) })).rejects.toThrow(
      /128-byte/,
    );
    await expect(Communicator.connect({ transport: "nccl", rank: 0, world: 1, rendezvous: "tcp://x" })).rejects.toThrow(
      /rendezvous must be file:/,
    );
    const solo = await Communicator.connect({ rank: 0, world: 1, rendezvous: `file://${mkdtempSync(join(tmp, "solo-"))}` });
    expect([solo.transport, solo.rank, solo.world, solo.timeoutMs]).toEqual(["gloo", 0, 1, 30_000]);
    const x = new Float32Array([3]);
    await solo.allReduceSum(x);
    expect(x[0]).toBe(3);
    await expect(solo.broadcast(new Int32Array(1), 1)).rejects.toThrow(/root must be a rank in \[0, 1\)/);
    expect(() => solo.broadcast(new DataView(new ArrayBuffer(4)) as never, 0)).toThrow(/typed array/);
  });
});

describe("communicator (NCCL)", () => {
  it("connectOn: ranks on cpu or cuda-emu meet over Gloo", async () => {
    for (const backend of ["cpu", "cuda-emu"]) {
      const rendezvous = `file://${mkdtempSync(join(tmp, "on-"))}`;
      const c = await Communicator.connectOn(backend, { rank: 0, world: 1, rendezvous });
      expect(c.transport).toBe("gloo");
    }
  });

  it("without NCCL every rank of a GPU group fails at once with transport, none waits for the id", async (ctx) => {
    if (capabilities().nccl.loadable) ctx.skip("libnccl.so.2 is loadable here: the failure path needs a host without it");
    const rendezvous = `file://${mkdtempSync(join(tmp, "no-nccl-"))}`;
    for (const rank of [0, 1]) {
      const started = performance.now();
      // A follower alone: with NCCL present it would wait the whole timeout for rank 0's id.
      const err = await Communicator.connectOn("cuda:0", { rank, world: 2, rendezvous, timeoutMs: 20_000 }).catch((e: unknown) => e);
      expect(err).toMatchObject({ name: "NativeError", statusName: "communicator_error", commFailure: "transport" });
      expect((err as Error).message).toMatch(/libnccl\.so\.2 cannot be loaded/);
      expect(performance.now() - started).toBeLessThan(10_000);
    }
  });

  it("joins GPU ranks through the rendezvous (rank 0 publishes the unique id)", async (ctx) => {
    const caps = capabilities();
    if (!caps.nccl.loadable || caps.cuda.deviceCount < 1)
      ctx.skip(`needs libnccl.so.2 and a CUDA device (nccl loadable: ${caps.nccl.loadable}, CUDA devices: ${caps.cuda.deviceCount})`);
    const comm = await Communicator.connectOn("cuda:0", { rank: 0, world: 1, rendezvous: `file://${mkdtempSync(join(tmp, "nccl-"))}` });
    expect(comm.transport).toBe("nccl");
    const x = new Float32Array([4, 5]);
    await comm.allReduceSum(x);
    expect(Array.from(x)).toEqual([4, 5]);
  });

  it("joins GPU ranks through the unique id and runs the collectives", async (ctx) => {
    const caps = capabilities();
    if (!caps.nccl.loadable || caps.cuda.deviceCount < 1)
      ctx.skip(`needs libnccl.so.2 and a CUDA device (nccl loadable: ${caps.nccl.loadable}, CUDA devices: ${caps.cuda.deviceCount})`);
    const comm = await Communicator.connect({
      transport: "nccl",
      rank: 0,
      world: 1,
      ncclUniqueId: await Communicator.ncclUniqueId(),
      device: 0,
    });
    const x = new Float32Array([1, 2, 3]);
    await comm.allReduceSum(x);
    expect(Array.from(x)).toEqual([1, 2, 3]);
    expect(Array.from(await comm.allGather(new Uint8Array([7, 8])))).toEqual([7, 8]);
    await comm.barrier();
  });
});
