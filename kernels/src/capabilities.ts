/**
 * capabilities(): what this build of the engine and this machine can run. Used by the worker to pick a
 * backend and by `expertmesh info`; cheap enough to call at startup.
 */
import { addon, type RawCapabilities } from "./addon.ts";
import type { Backend } from "./engine.ts";

export interface Capabilities extends RawCapabilities {
  /** The SIMD path the CPU kernels dispatch to on this host. */
  cpu: RawCapabilities["cpu"] & { simd: "avx512" | "avx2" | "scalar" };
  nccl: RawCapabilities["nccl"] & { versionString: string };
  /**
   * The devices an engine may name as its backend here: "cpu" and "cuda-emu" always (the emulator is
   * part of every build), "cuda:i" for each CUDA device this build sees.
   */
  devices: Backend[];
}

export function capabilities(): Capabilities {
  const raw = addon().capabilities();
  const simd = raw.cpu.avx512f && raw.cpu.avx512bw ? "avx512" : raw.cpu.avx2 && raw.cpu.fma ? "avx2" : "scalar";
  const v = raw.nccl.version;
  // NCCL encodes versions as major*10000 + minor*100 + patch since 2.9.
  const versionString = v > 0 ? `${Math.floor(v / 10000)}.${Math.floor(v / 100) % 100}.${v % 100}` : "";
  const gpus = raw.cuda.compiled ? raw.cuda.deviceCount : 0;
  const devices: Backend[] = ["cpu", "cuda-emu", ...Array.from({ length: gpus }, (_, i) => `cuda:${i}` as const)];
  return { ...raw, cpu: { ...raw.cpu, simd }, nccl: { ...raw.nccl, versionString }, devices };
}
